//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Go crypto/tls plaintext: uprobes on crypto/tls.(*Conn).Write and .Read
// (and handshakeContext) in Go binaries. It builds on trace.c, included
// whole so that the event and connection layouts and the emit path are
// the tracer's own: the Go side loads only the programs below, with the
// tracer's maps put in place of this object's copies
// (CollectionOptions.MapReplacements), so the plaintext lands in the same
// ring, on the same connection entries, as OpenSSL's.
//
// Go code is not probed with uretprobes: a goroutine's stack is moved
// when it grows, and the return address a uretprobe plants on it would
// be copied with it. The Go side instead sets a uprobe on every RET
// instruction of the function. Calls are keyed by the goroutine (its g
// pointer, which Go's register ABI keeps in a register), not the thread:
// a goroutine blocked in Read resumes on any thread.

#include "trace.c"

// The Go register ABI (Go 1.17 on): the receiver and arguments in
// RAX, RBX, RCX, ... (amd64) or R0, R1, ... (arm64), results likewise, the
// current g in R14 (amd64) or R28 (arm64). types.h's pt_regs declares
// only what trace.c reads: this flavor of it adds the rest, relocated
// against the kernel's pt_regs by CO-RE.
#if defined(__TARGET_ARCH_x86)
struct pt_regs___go {
	unsigned long ax;
	unsigned long bx;
	unsigned long r14;
} __attribute__((preserve_access_index));
#define GO_ARG0(r) ((r)->ax)
#define GO_ARG1(r) ((r)->bx)
#define GO_RET0(r) ((r)->ax)
#define GO_G(r) ((r)->r14)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs___go {
	__u64 regs[31];
} __attribute__((preserve_access_index));
#define GO_ARG0(r) ((r)->regs[0])
#define GO_ARG1(r) ((r)->regs[1])
#define GO_RET0(r) ((r)->regs[0])
#define GO_G(r) ((r)->regs[28])
#endif

// What a probe's cookie says: the function (low byte) and, for the fd,
// the offsets of the chain *tls.Conn -> conn net.Conn (an interface: its
// data word follows the itab) -> *net.TCPConn's fd *netFD -> pfd.Sysfd,
// 16 bits each, which the Go side takes from the binary's DWARF or its
// table of Go versions.
enum go_kind {
	GO_WRITE = 1,
	GO_READ = 2,
	GO_HANDSHAKE = 3,
};

#define COOKIE_KIND(c) ((__u8)((c) & 0xff))
#define COOKIE_CONN(c) (((c) >> 8) & 0xffff)  // tls.Conn.conn
#define COOKIE_FD(c) (((c) >> 24) & 0xffff)   // net.conn.fd in the TCPConn
#define COOKIE_SYSFD(c) (((c) >> 40) & 0xffff) // netFD.pfd + poll.FD.Sysfd

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct go_call {
	__u64 buf;
	__s32 fd;
	__u8 kind;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

// Counters of this object's own, read by the Go side.
enum go_counter {
	GO_CNT_NO_FD = 0, // calls whose fd could not be read from the tls.Conn
	GO_CNT_NO_CONN,   // calls on an fd that is not an inet socket
	GO_CNT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GO_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} go_counters SEC(".maps");

const enum go_kind *unused_go_kind __attribute__((unused));
const struct go_key *unused_go_key __attribute__((unused));

static __always_inline void go_count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&go_counters, &c);
	if (v)
		*v += 1;
}

// go_fd reads the socket fd of the *tls.Conn tc, or returns -1.
static __always_inline __s32 go_fd(__u64 tc, __u64 cookie)
{
	__u64 data = 0, nfd = 0;
	__s64 fd = -1;
	if (!tc || bpf_probe_read_user(&data, sizeof(data), (void *)(tc + COOKIE_CONN(cookie) + 8)) || !data)
		return -1;
	if (bpf_probe_read_user(&nfd, sizeof(nfd), (void *)(data + COOKIE_FD(cookie))) || !nfd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(nfd + COOKIE_SYSFD(cookie))))
		return -1;
	if (fd < 0 || fd > 0x7fffffff)
		return -1;
	return (__s32)fd;
}

// go_conn returns fd's connection, marked TLS so that the tracer's
// syscall program copies none of its ciphertext.
static __always_inline struct conn *go_conn(__u32 tgid, __s32 fd)
{
	struct conn *c = lookup_conn(tgid, fd);
	if (!c && !(c = new_conn(tgid, fd, ROLE_UNKNOWN))) {
		go_count(GO_CNT_NO_CONN);
		return 0;
	}
	c->tls = 1;
	return c;
}

// go_tls_enter, at the entry of Write, Read and handshakeContext, marks
// the connection TLS (the handshake comes before any data, and its
// records must not reach the parsers) and records a Write or Read for its
// returns. An entry left by a call whose return was not seen (probes
// detached, a stack-growth restart of the function) is replaced.
static __always_inline int go_enter(struct pt_regs *ctx)
{
	struct pt_regs___go *r = (void *)ctx;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(tgid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__s32 fd = go_fd(GO_ARG0(r), cookie);
	if (fd < 0) {
		go_count(GO_CNT_NO_FD);
		return 0;
	}
	if (!go_conn(tgid, fd))
		return 0;
	__u8 kind = COOKIE_KIND(cookie);
	if (kind != GO_WRITE && kind != GO_READ)
		return 0;
	struct go_key k = {.g = GO_G(r), .tgid = tgid};
	struct go_call call = {.buf = GO_ARG1(r), .fd = fd, .kind = kind};
	bpf_map_update_elem(&go_calls, &k, &call, BPF_ANY);
	return 0;
}

// go_tls_return, at each RET of Write and Read, emits the bytes the call
// moved (its int result) as plaintext of its connection.
static __always_inline int go_return(struct pt_regs *ctx)
{
	struct pt_regs___go *r = (void *)ctx;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct go_key k = {.g = GO_G(r), .tgid = tgid};
	struct go_call *m = bpf_map_lookup_elem(&go_calls, &k);
	if (!m)
		return 0;
	struct go_call call = *m;
	bpf_map_delete_elem(&go_calls, &k);
	__s64 n = (__s64)GO_RET0(r);
	if (n <= 0)
		return 0;
	struct conn *c = go_conn(tgid, call.fd);
	if (!c)
		return 0;
	__u8 dir = call.kind == GO_READ ? DIR_INGRESS : DIR_EGRESS;
	emit_buf(c, tgid, call.fd, dir, call.buf, (__u64)n, 0, TLS_PLAIN, (__u64)n);
	return 0;
}

// Each as a perf-event uprobe (one per address), and as a uprobe_multi
// program: a file's entries are one link and its returns another, and
// removing a link waits for one grace period, not one per address (a Go
// binary has some 18 probes: closing them one by one took seconds).
SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx) { return go_enter(ctx); }

SEC("uprobe")
int go_tls_return(struct pt_regs *ctx) { return go_return(ctx); }

SEC("uprobe.multi")
int go_tls_enter_multi(struct pt_regs *ctx) { return go_enter(ctx); }

SEC("uprobe.multi")
int go_tls_return_multi(struct pt_regs *ctx) { return go_return(ctx); }
