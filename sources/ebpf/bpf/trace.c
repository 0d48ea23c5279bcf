//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Socket syscall tracer: tracks inet sockets per (tgid, fd), and copies the
// bytes of every read/write-like syscall on them into a ring buffer for the
// Go side to reassemble and parse. Uprobes on OpenSSL's SSL_write/SSL_read
// add the plaintext of TLS connections (see "TLS plaintext" below).
//
// Cost notes (see docs/sources.md): events are written with BPF_RB_NO_WAKEUP
// and the reader polls on a timer; each event carries only the bytes the
// syscall moved, built in a per-CPU scratch buffer.

#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define PROT_EXEC 4
#define MAP_ANONYMOUS 0x20

// CHUNK is the most bytes one event carries. SCRATCH is twice that so that
// masking a length with (SCRATCH-1) bounds it for the verifier without
// clipping a full chunk.
#define CHUNK 16384
#define SCRATCH (2 * CHUNK)
#define MAX_CHUNKS 4   // per buffer: bytes past 64 KiB are counted, not copied
#define MAX_IOV 8      // iovecs looked at per readv/writev/sendmsg/recvmsg

enum event_type {
	EV_DATA = 1,
	EV_OPEN = 2,
	EV_CLOSE = 3,
	EV_EXIT = 4,
};

enum direction {
	DIR_EGRESS = 0,
	DIR_INGRESS = 1,
};

enum role {
	ROLE_UNKNOWN = 0,
	ROLE_CLIENT = 1,
	ROLE_SERVER = 2,
};

// Counters, in a per-CPU array; the Go side sums them.
enum counter {
	CNT_EVENTS = 0,      // events written
	CNT_RB_DROPS,        // events lost because the ring buffer was full
	CNT_RB_DROP_BYTES,   // data bytes in those events
	CNT_TRUNC_BYTES,     // bytes not copied (past MAX_CHUNKS or MAX_IOV)
	CNT_CONN_CREATE_FAIL,// conn map updates that failed
	CNT_READ_FAIL,       // bpf_probe_read_user failures
	CNT_TLS_NO_FD,       // SSL calls whose socket was never seen (memory BIOs)
	CNT_TLS_NO_CONN,     // SSL calls on an fd that is not an inet socket
	CNT_FILE_DROPS,      // exec/mmap events lost (file_events full)
	CNT_SKIP_BYTES,      // HTTP body bytes past the body limit, counted, not copied
	CNT_TLS_BIO_FD,      // SSL calls of memory-BIO processes tied to the socket the thread last read
	CNT_MAX,
};

struct addr {
	__u8 addr[16];
	__u16 port; // host order
	__u16 family;
};

struct conn {
	__u64 id;
	__u64 file;     // the struct file the fd referred to at creation
	__u64 start_ns; // process start, ns since boot
	__u64 wr;       // bytes written so far
	__u64 rd;       // bytes read so far
	struct addr local;
	struct addr remote;
	__u8 role;
	__u8 sock_type;
	__u8 tls;       // an SSL call ran over this socket: its bytes are ciphertext
	__u8 saw_head;  // a HEAD request went over it: response bodies are not skipped
	__u8 pad[4];
	__u64 tls_wr;   // plaintext bytes written through SSL calls so far
	__u64 tls_rd;   // plaintext bytes read
	// Per direction (egress, ingress), in the direction's stream offsets:
	// the bytes in [skip_lo, skip_hi) are an HTTP body past the body
	// limit, sent as a span without copying (see "Body skipping").
	__u64 skip_lo[2];
	__u64 skip_hi[2];
	// Skipped bytes of calls that sent no event: the event of the call
	// that reaches skip_hi covers them too.
	__u64 skip_pend[2];
};

struct event {
	__u64 ts;       // ktime (CLOCK_MONOTONIC) ns at syscall exit
	__u64 conn_id;
	__u64 pos;      // stream offset of this event's first byte in its direction
	__u64 start_ns; // process start, ns since boot
	__u64 wr;       // EV_OPEN/EV_CLOSE: totals
	__u64 rd;
	struct addr local;
	struct addr remote;
	__u32 tgid;
	__s32 fd;
	__u32 len;      // bytes copied after this header
	__u32 span;     // bytes of the stream covered (len plus bytes not copied)
	__u8 type;
	__u8 dir;
	__u8 role;
	__u8 sock_type;
	__u8 peer_set;  // remote came from the syscall's sockaddr (unconnected UDP)
	__u8 tls;       // EV_DATA: TLS_PLAIN or TLS_CIPHER
	__u8 pad[2];
};

// What the bytes of a data event are on a TLS connection.
enum tls_kind {
	TLS_NONE = 0,
	TLS_PLAIN = 1,  // plaintext of an SSL call; pos counts plaintext bytes
	TLS_CIPHER = 2, // ciphertext of a TLS socket: not copied, span only
};

struct head {
	__u64 clen;     // body length
	__u32 end;      // offset past the head; 0: do not skip
	__u8 head_req;  // the message is a HEAD request
	__u8 pad[3];
};

// What emit_data is to send: a buffer of a call and its connection's side.
struct emit_args {
	__u64 ubuf;
	__u64 n;
	__u64 total;
	struct addr peer; // family 0: none
	__u32 tgid;
	__s32 fd;
	__u8 dir;
	__u8 tls;
	__u8 pad[2];
};

struct scratch {
	struct event ev;
	__u8 data[SCRATCH];
	// A new connection's entry, emit_data's arguments, a datagram's
	// peer and a parsed head are built here, not on the stack: the
	// verifier limits the stack of a program and the functions it calls
	// to 512 bytes together, and sys_exit calls emit_data, which calls
	// scan_head (bpf/stack_test.go checks the sum).
	struct conn conn;
	struct emit_args args;
	struct addr peer; // a datagram's source or destination
	struct head head; // scan_head's result
};

enum call_kind {
	CALL_BUF = 1,   // read/write/recvfrom/sendto
	CALL_IOV = 2,   // readv/writev
	CALL_MSG = 3,   // recvmsg/sendmsg
	CALL_CONNECT = 4,
	CALL_ACCEPT = 5,
	CALL_CLOSE = 6,
};


// tls_enabled is set at load when the TLS uprobes are in use: the
// syscall exit program then looks for an SSL call in progress on the
// thread, and follows mmap for new executable files.
const volatile __u32 tls_enabled = 0;

// body_limit is the HTTP body bytes copied per message, the parser's
// MaxBodyBytes; 0 turns body skipping off (every byte is copied).
const volatile __u32 body_limit = 0;

// ssl_calls_active counts the entries of ssl_calls: while no thread is in
// an SSL call, a socket syscall needs no lookup. (An entry the LRU evicts
// leaves the count high, which costs lookups, not correctness; Pause
// resets it.)
__u64 ssl_calls_active = 0;

struct config {
	__u32 self_tgid;  // skip this process (0 = trace it)
	__u32 only_pids;  // 1 = trace only the pids in the allow map
	__u32 skip_pids;  // 1 = the skip map is not empty
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); // the Go side sets Config.RingBufferBytes
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // tgid << 32 | fd
	__type(value, struct conn);
} conns SEC(".maps");

// One scratch buffer per CPU. Not a PERCPU_ARRAY: per-CPU values are capped
// at 32 KiB. Tracepoint programs run with migration disabled, so indexing by
// CPU is safe; the Go side sizes the map to the possible CPUs.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} skip_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} allow_pids SEC(".maps");

// TLS plaintext. An uprobe at the entry of SSL_write, SSL_read, their _ex
// forms and SSL_do_handshake records the call in ssl_calls, per thread;
// the syscall exit program, seeing a read or write on a socket while the
// thread is in an SSL call, records the socket's fd in it (and in ssl_fds,
// for calls that read buffered records without a syscall), marks the
// connection TLS and copies no more of its ciphertext; the uretprobe
// emits the plaintext on that connection. Reading the fd out of the SSL
// struct instead would depend on the library's version and build.
enum ssl_kind {
	SSL_WRITE = 1,
	SSL_WRITE_EX = 2,
	SSL_READ = 3,
	SSL_READ_EX = 4,
	SSL_HANDSHAKE = 5,
};

struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out; // _ex: the size_t * the byte count is written to
	__u64 sp;  // stack pointer at entry: tells a nested call from this one
	__s32 fd;  // the socket the call used, -1 until known
	__u8 kind;
	__u8 pad[3];
};

struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); // pid_tgid
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

// ssl_fd is the socket an SSL object runs over: its fd and the id of
// the connection the fd was then, so that a mapping left by a closed
// socket (the SSL object's address reused by another, or the fd by
// another connection) is not taken for the new one's.
struct ssl_fd {
	__s32 fd;
	__u32 pad;
	__u64 conn;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, struct ssl_fd);
} ssl_fds SEC(".maps");

// Memory BIOs. Node.js (OpenSSL linked statically) reads a socket's
// records itself and hands them to OpenSSL through a memory BIO, so its
// SSL calls make no socket syscall. A process seen making such a call is
// put in bio_tgids; from then on each read of a thread of it that returns
// the start of a TLS record (content type 20-23) is noted in last_reads,
// and the next SSL_read, SSL_read_ex or SSL_do_handshake of that thread
// takes that socket as its SSL's (and consumes the note): Node's event
// loop hands a socket's records to OpenSSL right after reading them. An
// SSL_write of an SSL with no socket yet (a client's first request,
// written as the handshake's last records are read) takes it too, without
// consuming it. The writes of the SSL then go to the socket its reads
// came from.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); // tgid
	__type(value, __u8);
} bio_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); // pid_tgid
	__type(value, struct ssl_fd);
} last_reads SEC(".maps");

// bio_active says that bio_tgids has an entry: until then no read needs
// a lookup.
__u32 bio_active = 0;

// New executable files: exec and mmap(PROT_EXEC) of a file not in
// files_seen emit a file_event, which the Go side answers by looking for
// SSL functions in what the process maps. Its own small ring, read with
// wakeups: the sooner the uprobes are attached, the fewer of a new
// program's first calls are missed.
struct file_key {
	__u64 dev;
	__u64 ino;
};

struct file_event {
	__u32 tgid;
	__u32 pad;
	__u64 dev;
	__u64 ino;
	__u64 ts; // ktime of the exec or mmap
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct file_key);
	__type(value, __u8);
} files_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} file_events SEC(".maps");

// Force BTF for the types the Go side decodes.
const struct event *unused_event __attribute__((unused));
const struct conn *unused_conn __attribute__((unused));
const struct file_event *unused_file_event __attribute__((unused));
const struct file_key *unused_file_key __attribute__((unused));
const enum ssl_kind *unused_ssl_kind __attribute__((unused));

static __always_inline void count(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += n;
}

static __always_inline bool traced(__u32 tgid)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!cfg)
		return false;
	if (cfg->self_tgid && cfg->self_tgid == tgid)
		return false;
	if (cfg->only_pids)
		return bpf_map_lookup_elem(&allow_pids, &tgid) != 0;
	return !cfg->skip_pids || bpf_map_lookup_elem(&skip_pids, &tgid) == 0;
}

// file_at returns the struct file behind fd of the current task, or NULL.
static __always_inline struct file *file_at(__s32 fd)
{
	if (fd < 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	if ((unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

// sock_of returns the struct socket of file f, or NULL if f is not a
// socket.
static __always_inline struct socket *sock_of(struct file *f)
{
	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	return (struct socket *)BPF_CORE_READ(f, private_data);
}

// fill_conn reads family, type and both addresses from the socket. It
// returns false for sockets that are not AF_INET/AF_INET6.
static __always_inline bool fill_conn(struct conn *c, struct socket *s)
{
	struct sock *sk = BPF_CORE_READ(s, sk);
	if (!sk)
		return false;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	c->sock_type = (__u8)BPF_CORE_READ(s, type);
	c->local.family = family;
	c->remote.family = family;
	c->local.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->remote.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->local.addr, &l, 4);
		__builtin_memcpy(c->remote.addr, &r, 4);
	} else {
		BPF_CORE_READ_INTO(&c->local.addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&c->remote.addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	return true;
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch_buf, &cpu);
}

static __always_inline void emit_ctrl(__u8 type, __u32 tgid, __s32 fd, struct conn *c)
{
	struct scratch *s = get_scratch();
	if (!s)
		return;
	struct event *ev = &s->ev;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts = bpf_ktime_get_ns();
	ev->type = type;
	ev->tgid = tgid;
	ev->fd = fd;
	if (c) {
		ev->conn_id = c->id;
		ev->start_ns = c->start_ns;
		ev->wr = c->wr;
		ev->rd = c->rd;
		ev->local = c->local;
		ev->remote = c->remote;
		ev->role = c->role;
		ev->sock_type = c->sock_type;
	}
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), BPF_RB_NO_WAKEUP))
		count(CNT_RB_DROPS, 1);
	else
		count(CNT_EVENTS, 1);
}

// new_conn creates the map entry for (tgid, fd) from the socket, or returns
// NULL if fd is not an inet socket.
static __always_inline struct conn *new_conn(__u32 tgid, __s32 fd, __u8 role)
{
	struct file *f = file_at(fd);
	struct socket *s = sock_of(f);
	if (!s)
		return 0;
	struct scratch *sc = get_scratch();
	if (!sc)
		return 0;
	struct conn *c = &sc->conn;
	__builtin_memset(c, 0, sizeof(*c));
	if (!fill_conn(c, s))
		return 0;
	c->role = role;
	c->file = (__u64)f;
	// The id only has to differ between successive connections on one
	// (tgid, fd): the creation time does.
	c->id = bpf_ktime_get_ns();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	c->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	__u64 key = (__u64)tgid << 32 | (__u32)fd;
	if (bpf_map_update_elem(&conns, &key, c, BPF_ANY)) {
		count(CNT_CONN_CREATE_FAIL, 1);
		return 0;
	}
	struct conn *cp = bpf_map_lookup_elem(&conns, &key);
	if (cp)
		emit_ctrl(EV_OPEN, tgid, fd, cp);
	return cp;
}

static __always_inline struct conn *lookup_conn(__u32 tgid, __s32 fd)
{
	__u64 key = (__u64)tgid << 32 | (__u32)fd;
	return bpf_map_lookup_elem(&conns, &key);
}

static __always_inline void read_sockaddr(struct addr *a, __u64 uaddr)
{
	__u16 family = 0;
	if (!uaddr || bpf_probe_read_user(&family, sizeof(family), (void *)uaddr))
		return;
	if (family == AF_INET) {
		struct sockaddr_in sa = {};
		if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr))
			return;
		__builtin_memset(a->addr, 0, sizeof(a->addr));
		__builtin_memcpy(a->addr, &sa.sin_addr, 4);
		a->port = bpf_ntohs(sa.sin_port);
		a->family = AF_INET;
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sa = {};
		if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr))
			return;
		__builtin_memcpy(a->addr, sa.sin6_addr, 16);
		a->port = bpf_ntohs(sa.sin6_port);
		a->family = AF_INET6;
	}
}

// Body skipping. An HTTP/1.x message costs the parser its head and
// body_limit bytes of body; the rest of the body is only counted. So when
// a buffer starts with a message head that ends within the first chunk
// and gives a Content-Length, the body past the limit is sent as a span
// without its bytes: the parser sees a gap inside a body of known length,
// which it counts as body, as it does for bytes lost or past MAX_CHUNKS.
// The skip is kept per direction as a range of stream offsets, so the
// reads and writes that follow (a 1 MB body is many) are spans too.
//
// The kernel side only ever copies less where the parser would throw the
// bytes away; the parser does not rely on it (with skipping off, or where
// the scan gives up, every byte is copied as before). It gives up on
// anything it is not sure of: a head longer than HEAD_SCAN or split over
// calls, Transfer-Encoding (chunked bodies are copied), two
// Content-Lengths, 1xx/204/304 responses, and every response on a
// connection that carried a HEAD request (its responses' Content-Length
// describes no body). Calls that move less than body_limit + SCAN_SLACK
// bytes are not scanned: whatever body they start is small or follows in
// calls that are scanned no more (so it is copied whole).
#define HEAD_SCAN 2048
#define SCAN_SLACK 512
#define SCRATCH_MASK (SCRATCH - 1)

struct hscan {
	__u8 *d;        // the chunk, at the message's first byte
	__u32 len;      // bytes to look at
	__u32 head_end; // offset past the blank line; 0 until found
	__u64 clen;
	__u8 has_clen;
	__u8 bad;       // not a head this skips bodies of
	__u8 started;   // the start line was checked
	__u8 head_req;  // a HEAD request
	__u8 resp;      // a response
	__u8 num;       // reading the Content-Length value, from num_from
	__u8 digits;
	__u32 num_from;
};

#define LOWER(c) ((c) | 0x20)

// hscan_line looks at the line that starts at j of a head.
static __always_inline long hscan_line(struct hscan *h, __u32 j)
{
	__u8 *d = h->d;
	if (j + 1 < h->len && d[j & SCRATCH_MASK] == '\r' && d[(j + 1) & SCRATCH_MASK] == '\n') {
		h->head_end = j + 2;
		return 1;
	}
	// LOWER leaves '-' and ':' as they are.
	__u8 c0 = LOWER(d[j & SCRATCH_MASK]);
	if (c0 == 't') {
		const char te[] = "transfer-encoding:";
#pragma unroll
		for (int k = 1; k < sizeof(te) - 1; k++)
			if (LOWER(d[(j + k) & SCRATCH_MASK]) != te[k])
				return 0;
		h->bad = 1;
		return 1;
	}
	if (c0 != 'c')
		return 0;
	const char cl[] = "content-length:";
#pragma unroll
	for (int k = 1; k < sizeof(cl) - 1; k++)
		if (LOWER(d[(j + k) & SCRATCH_MASK]) != cl[k])
			return 0;
	if (h->has_clen) {
		h->bad = 1;
		return 1;
	}
	h->has_clen = 1;
	h->num = 1; // hscan_cb reads the value
	h->num_from = j + sizeof(cl) - 1;
	return 0;
}

// hscan_start checks the start line, which ends at i ('\n'): a response
// with a status that has a body, or a request line ending in HTTP/1.x.
static __always_inline long hscan_start(struct hscan *h, __u32 i)
{
	__u8 *d = h->d;
	if (d[0] == 'H' && d[1] == 'T' && d[2] == 'T' && d[3] == 'P' && d[4] == '/' && d[5] == '1' && d[6] == '.') {
		__u8 s0 = d[9], s1 = d[10], s2 = d[11];
		if (s0 < '2' || s0 > '5' || (s1 == '0' && s2 == '4' && (s0 == '2' || s0 == '3')))
			h->bad = 1;
		h->resp = 1;
		return h->bad ? 1 : 0;
	}
	// "... HTTP/1.x\r\n", the '\n' at i.
	if (i < 12 || d[(i - 1) & SCRATCH_MASK] != '\r' || d[(i - 10) & SCRATCH_MASK] != ' ' ||
	    d[(i - 9) & SCRATCH_MASK] != 'H' || d[(i - 8) & SCRATCH_MASK] != 'T' || d[(i - 7) & SCRATCH_MASK] != 'T' ||
	    d[(i - 6) & SCRATCH_MASK] != 'P' || d[(i - 5) & SCRATCH_MASK] != '/' || d[(i - 4) & SCRATCH_MASK] != '1' ||
	    d[(i - 3) & SCRATCH_MASK] != '.') {
		h->bad = 1;
		return 1;
	}
	h->head_req = d[0] == 'H' && d[1] == 'E' && d[2] == 'A' && d[3] == 'D' && d[4] == ' ';
	return 0;
}

static long hscan_cb(__u64 i, void *ctx)
{
	struct hscan *h = ctx;
	if (i >= h->len)
		return 1;
	__u8 c = h->d[i & SCRATCH_MASK];
	if (h->num && i >= h->num_from) {
		if (c >= '0' && c <= '9') {
			if (++h->digits > 15) {
				h->bad = 1;
				return 1;
			}
			h->clen = h->clen * 10 + (c - '0');
			return 0;
		}
		if ((c == ' ' || c == '\t') && !h->digits)
			return 0;
		h->num = 0;
		if (!h->digits || (c != '\r' && c != ' ' && c != '\t')) {
			h->bad = 1;
			return 1;
		}
		return 0;
	}
	if (c != '\n')
		return 0;
	if (!h->started) {
		h->started = 1;
		if (hscan_start(h, i))
			return 1;
	}
	return hscan_line(h, i + 1);
}

// scan_head looks at the first n bytes of s->data, the start of a
// message, and fills r with its head's end and body length, or leaves
// r->end 0 when the body is not to be skipped. saw_head says that the
// connection carried a HEAD request. A global function, so that the
// verifier checks it once rather than at each of emit_buf's inlined
// copies.
__noinline int scan_head(struct scratch *s, __u32 n, __u8 saw_head, struct head *r)
{
	if (!s || !r)
		return 0;
	struct hscan h = {.d = s->data, .len = n < HEAD_SCAN ? n : HEAD_SCAN};
	if (h.len < 16)
		return 0;
	// A start line begins with "HTTP/" or a method, in capitals: the
	// middle of a body seldom does, and is not scanned.
	__u8 c0 = s->data[0], c1 = s->data[1];
	if (c0 < 'A' || c0 > 'Z' || c1 < 'A' || c1 > 'Z')
		return 0;
	bpf_loop(HEAD_SCAN, hscan_cb, &h, 0);
	r->head_req = h.head_req;
	if (h.bad || !h.head_end || !h.has_clen || h.num)
		return 0;
	if (h.resp && saw_head)
		return 0; // a response, perhaps to the HEAD request
	r->clen = h.clen;
	r->end = h.head_end;
	return 0;
}

// emit_data writes up to MAX_CHUNKS events for the a->n bytes at a->ubuf,
// at the stream offset of the direction (the connection's plaintext
// offset for TLS_PLAIN), which it advances. The last event's span covers
// whatever was not copied, so the Go side knows the stream's exact
// length. a->total is the syscall's byte count (the buffer may be one of
// its iovecs): only large calls are scanned for a body to skip. A global
// function: the verifier checks it once, not at every call site.
__noinline int emit_data(struct conn *c, struct emit_args *a)
{
	if (!c || !a)
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	__u8 d = a->dir & 1;
	__u8 dir = d, tls = a->tls;
	__u64 *pos = tls == TLS_PLAIN ? (d ? &c->tls_rd : &c->tls_wr) : (d ? &c->rd : &c->wr);
	__u64 n = a->n, ubuf = a->ubuf, total = a->total;
	struct addr *peer = &a->peer;
	for (int i = 0; i < MAX_CHUNKS && n > 0; i++) {
		struct event *ev = &s->ev;
		__u64 p = *pos;
		__u64 lo = c->skip_lo[d], hi = c->skip_hi[d];
		__u32 len;
		__u64 span;
		bool copy = true, scan = false;
		__u64 back = 0; // bytes before p the event covers
		if (p >= lo && p < hi) {
			// Inside a body past the limit: the span only, and no
			// event at all while the body goes on past this call (a
			// body read in 8 KiB calls would be an event per call).
			span = hi - p < n ? hi - p : n;
			len = 0;
			copy = false;
			count(CNT_SKIP_BYTES, span);
			// (The event's span is 32 bits: a body of GiBs sends one
			// per 1 GiB.)
			if (span == n && p + span < hi && c->skip_pend[d] + span < (1U << 30)) {
				c->skip_pend[d] += span;
				*pos += span;
				break;
			}
			back = c->skip_pend[d];
			c->skip_pend[d] = 0;
		} else {
			len = n > CHUNK ? CHUNK : n;
			if (p < lo && lo - p < len)
				len = lo - p; // the kept part of a body ends here
			else if (p >= hi && body_limit && total >= body_limit + SCAN_SLACK)
				scan = true; // past any body: a message may start here
			span = len;
		}
		__builtin_memset(ev, 0, sizeof(*ev));
		ev->ts = ts;
		ev->type = EV_DATA;
		ev->conn_id = c->id;
		ev->start_ns = c->start_ns;
		ev->tgid = a->tgid;
		ev->fd = a->fd;
		ev->dir = dir;
		ev->role = c->role;
		ev->sock_type = c->sock_type;
		ev->local = c->local;
		ev->remote = c->remote;
		if (peer->family) {
			ev->remote = *peer;
			ev->peer_set = 1;
		}
		ev->tls = tls;
		ev->pos = p - back;
		len &= (SCRATCH - 1);
		if (copy && bpf_probe_read_user(s->data, len, (void *)ubuf)) {
			count(CNT_READ_FAIL, 1);
			len = 0;
			scan = false;
		}
		if (scan) {
			struct head *hd = &s->head;
			__builtin_memset(hd, 0, sizeof(*hd));
			scan_head(s, len, c->saw_head, hd);
			if (hd->head_req)
				c->saw_head = 1;
			__u64 clen = hd->clen, h = hd->end;
			__u64 keep = clen < body_limit ? clen : body_limit;
			if (h && keep < clen) {
				// Copy the head and the kept body; the rest of the
				// body, in this buffer and the calls that follow,
				// is a span.
				c->skip_lo[d] = p + h + keep;
				c->skip_hi[d] = p + h + clen;
				if (h + keep < len) {
					len = h + keep;
					span = h + clen < n ? h + clen : n;
					count(CNT_SKIP_BYTES, span - len);
				}
			}
		}
		if (i == MAX_CHUNKS - 1 && n > span) {
			count(CNT_TRUNC_BYTES, n - span);
			span = n;
		}
		len &= (SCRATCH - 1);
		ev->len = len;
		ev->span = span + back;
		if (bpf_ringbuf_output(&events, s, sizeof(struct event) + len, BPF_RB_NO_WAKEUP)) {
			count(CNT_RB_DROPS, 1);
			count(CNT_RB_DROP_BYTES, span + back);
		} else {
			count(CNT_EVENTS, 1);
		}
		*pos += span;
		ubuf += span;
		n -= span;
	}
	return 0;
}

static __always_inline void emit_buf(struct conn *c, __u32 tgid, __s32 fd, __u8 dir,
				     __u64 ubuf, __u64 n, struct addr *peer, __u8 tls, __u64 total)
{
	struct scratch *s = get_scratch();
	if (!s)
		return;
	struct emit_args *a = &s->args;
	__builtin_memset(a, 0, sizeof(*a));
	a->ubuf = ubuf;
	a->n = n;
	a->total = total;
	a->tgid = tgid;
	a->fd = fd;
	a->dir = dir;
	a->tls = tls;
	if (peer)
		a->peer = *peer;
	emit_data(c, a);
}

// Syscall numbers and argument registers. The tracer hooks only the exit
// of syscalls: the user registers the kernel saved at entry still hold the
// arguments there (x86-64 and arm64 handlers only read them; arm64 keeps
// the first in orig_x0 because x0 receives the return value), so no entry
// program has to save them in a map, and the data is in the buffer.
#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_CLOSE 3
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_ACCEPT4 288
#define NR_MMAP 9
#define SC_NR(r) ((r)->orig_ax)
#define SC_ARG0(r) ((r)->di)
#define SC_ARG1(r) ((r)->si)
#define SC_ARG2(r) ((r)->dx)
#define SC_ARG3(r) ((r)->r10)
#define SC_ARG4(r) ((r)->r8)
#define TS_COMPAT 0x0002
#elif defined(__TARGET_ARCH_arm64)
#define NR_READ 63
#define NR_CLOSE 57
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_CONNECT 203
#define NR_ACCEPT 202
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#define NR_ACCEPT4 242
#define NR_MMAP 222
#define SC_NR(r) ((r)->syscallno)
#define SC_ARG0(r) ((r)->orig_x0)
#define SC_ARG1(r) ((r)->regs[1])
#define SC_ARG2(r) ((r)->regs[2])
#define SC_ARG3(r) ((r)->regs[3])
#define SC_ARG4(r) ((r)->regs[4])
#else
#error "unsupported architecture"
#endif

// close_conn ends fd's connection at the exit of close(2), whatever it
// returned (Linux releases the fd even when close fails, and EBADF means
// there was none). Between the release and this exit another thread may
// have been given the same fd by accept or connect and made its own entry:
// that entry's file is the one the fd now refers to, and it is kept.
// Closing at exit rather than entry means no program on sys_enter, which
// every syscall of every process would pass through.
static __always_inline void close_conn(__s32 fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = (__u64)tgid << 32 | (__u32)fd;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return;
	if (c->file && c->file == (__u64)file_at(fd))
		return;
	emit_ctrl(EV_CLOSE, tgid, fd, c);
	bpf_map_delete_elem(&conns, &key);
}

// emit_cipher reports n bytes of ciphertext moved on a TLS connection
// without copying them: the stream offsets (and conn_stats' byte counts)
// stay exact, and the Go side parses the connection's plaintext instead.
static __always_inline void emit_cipher(struct conn *c, __u32 tgid, __s32 fd, __u8 dir,
					__u64 n, __u64 *pos)
{
	struct scratch *s = get_scratch();
	if (!s)
		return;
	struct event *ev = &s->ev;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts = bpf_ktime_get_ns();
	ev->type = EV_DATA;
	ev->conn_id = c->id;
	ev->start_ns = c->start_ns;
	ev->tgid = tgid;
	ev->fd = fd;
	ev->dir = dir;
	ev->role = c->role;
	ev->sock_type = c->sock_type;
	ev->local = c->local;
	ev->remote = c->remote;
	ev->tls = TLS_CIPHER;
	ev->pos = *pos;
	ev->span = n;
	*pos += n;
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), BPF_RB_NO_WAKEUP))
		count(CNT_RB_DROPS, 1);
	else
		count(CNT_EVENTS, 1);
}

// in_ssl_call reports whether a socket syscall of this thread runs inside
// an SSL call: it then records the socket as the call's (and the SSL's)
// and marks the connection TLS.
static __always_inline bool in_ssl_call(struct conn *c, __u32 tgid, __s32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *m = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!m)
		return false;
	c->tls = 1;
	if (m->fd == fd)
		return true;
	m->fd = fd;
	struct ssl_key k = {.ssl = m->ssl, .tgid = tgid};
	struct ssl_fd v = {.fd = fd, .conn = c->id};
	bpf_map_update_elem(&ssl_fds, &k, &v, BPF_ANY);
	return true;
}

// peer_at reads the sockaddr at uaddr into the scratch entry's peer (its
// family 0 if it cannot be read), or returns 0 without a scratch entry.
static __always_inline struct addr *peer_at(__u64 uaddr)
{
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	__builtin_memset(&s->peer, 0, sizeof(s->peer));
	read_sockaddr(&s->peer, uaddr);
	return &s->peer;
}

// bio_read notes a read of fd by this thread that returned the start of a
// TLS record, in a process that uses memory BIOs.
static __always_inline void bio_read(struct conn *c, __u32 tgid, __s32 fd, __u64 buf)
{
	if (!bpf_map_lookup_elem(&bio_tgids, &tgid))
		return;
	__u8 b = 0;
	if (bpf_probe_read_user(&b, 1, (void *)buf) || b < 20 || b > 23)
		return;
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_fd v = {.fd = fd, .conn = c->id};
	bpf_map_update_elem(&last_reads, &id, &v, BPF_ANY);
}

// file_seen emits a file_event for f, mapped executable by tgid, unless
// its inode was seen before.
static __always_inline void file_seen(__u32 tgid, struct file *f)
{
	if (!f)
		return;
	struct inode *in = BPF_CORE_READ(f, f_inode);
	if (!in)
		return;
	struct file_key k = {.dev = BPF_CORE_READ(in, i_sb, s_dev), .ino = BPF_CORE_READ(in, i_ino)};
	if (bpf_map_lookup_elem(&files_seen, &k))
		return;
	__u8 one = 1;
	bpf_map_update_elem(&files_seen, &k, &one, BPF_ANY);
	struct file_event ev = {.tgid = tgid, .dev = k.dev, .ino = k.ino, .ts = bpf_ktime_get_ns()};
	// Default flags: wake the reader, which blocks on this ring.
	if (bpf_ringbuf_output(&file_events, &ev, sizeof(ev), 0)) {
		count(CNT_FILE_DROPS, 1);
		bpf_map_delete_elem(&files_seen, &k); // the next mapping retries
	}
}

// compat_task reports a 32-bit process on a 64-bit x86 kernel: its syscall
// numbers and registers differ, and it is not traced.
static __always_inline bool compat_task(void)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	if (bpf_core_field_exists(task->thread_info.status))
		return task->thread_info.status & TS_COMPAT;
#endif
	return false;
}

// One program on the raw sys_exit tracepoint serves every syscall: it
// returns after one load for the syscalls it does not trace. A raw
// tracepoint costs less per call than the per-syscall tracepoints (no perf
// record is built), with no entry program nothing is written to a map per
// syscall, and as a BTF tracepoint (tp_btf) it reads the registers and the
// task with plain loads instead of probe-read helper calls.
SEC("tp_btf/sys_exit")
int sys_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long ret = (long)ctx[1];
	long nr = SC_NR(regs);
	__u8 kind, dir = DIR_INGRESS;
	switch (nr) {
	case NR_READ:
	case NR_RECVFROM:
		kind = CALL_BUF;
		break;
	case NR_WRITE:
	case NR_SENDTO:
		kind = CALL_BUF;
		dir = DIR_EGRESS;
		break;
	case NR_READV:
		kind = CALL_IOV;
		break;
	case NR_WRITEV:
		kind = CALL_IOV;
		dir = DIR_EGRESS;
		break;
	case NR_RECVMSG:
		kind = CALL_MSG;
		break;
	case NR_SENDMSG:
		kind = CALL_MSG;
		dir = DIR_EGRESS;
		break;
	case NR_CONNECT:
		kind = CALL_CONNECT;
		break;
	case NR_ACCEPT:
	case NR_ACCEPT4:
		kind = CALL_ACCEPT;
		break;
	case NR_CLOSE:
		close_conn((__s32)SC_ARG0(regs));
		return 0;
	case NR_MMAP:
		// A library loaded (ld.so, dlopen) may hold SSL functions.
		if (tls_enabled && ret > 0 && (SC_ARG2(regs) & PROT_EXEC) && !(SC_ARG3(regs) & MAP_ANONYMOUS) &&
		    (__s32)SC_ARG4(regs) >= 0) {
			__u32 tgid = bpf_get_current_pid_tgid() >> 32;
			if (!compat_task() && traced(tgid))
				file_seen(tgid, file_at((__s32)SC_ARG4(regs)));
		}
		return 0;
	default:
		return 0;
	}
	// Failed calls (EAGAIN reads are half of a server's) carry nothing,
	// except a non-blocking connect in progress.
	if (ret < 0 && !(kind == CALL_CONNECT && ret == -EINPROGRESS))
		return 0;
	if (compat_task())
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (kind == CALL_ACCEPT) {
		if (traced(tgid))
			new_conn(tgid, (__s32)ret, ROLE_SERVER);
		return 0;
	}
	__s32 fd = (__s32)SC_ARG0(regs);
	if (kind == CALL_CONNECT) {
		if (traced(tgid))
			new_conn(tgid, fd, ROLE_CLIENT);
		return 0;
	}
	if (ret == 0)
		return 0;
	// Entries are made only for traced processes, so a known connection
	// needs no filter lookup. A socket opened before tracing began gets
	// its entry here, with an unknown role; non-inet fds return here.
	struct conn *c = lookup_conn(tgid, fd);
	if (!c && (!traced(tgid) || !(c = new_conn(tgid, fd, ROLE_UNKNOWN))))
		return 0;
	__u64 *pos = dir == DIR_EGRESS ? &c->wr : &c->rd;
	__u64 n = ret;
	__u64 ptr = SC_ARG1(regs);
	if (tls_enabled) {
		bool in_call = ssl_calls_active && in_ssl_call(c, tgid, fd);
		// Only a read outside SSL calls feeds a memory BIO: one inside
		// is the call's own, already tied to its socket.
		if (bio_active && !in_call && kind == CALL_BUF && dir == DIR_INGRESS)
			bio_read(c, tgid, fd, ptr);
		if (c->tls) {
			emit_cipher(c, tgid, fd, dir, n, pos);
			return 0;
		}
	}

	struct addr *pp = 0;
	if (kind == CALL_BUF) {
		// Only recvfrom and sendto have a sockaddr (read and write
		// leave the register to whatever the caller had in it).
		__u64 uaddr = (nr == NR_RECVFROM || nr == NR_SENDTO) ? SC_ARG4(regs) : 0;
		if (uaddr)
			pp = peer_at(uaddr);
		emit_buf(c, tgid, fd, dir, ptr, n, pp, TLS_NONE, ret);
		return 0;
	}

	__u64 iov = ptr;
	__u64 iovcnt = SC_ARG2(regs);
	if (kind == CALL_MSG) {
		// The head of struct user_msghdr: name, namelen, iov, iovlen.
		__u64 msg[4] = {};
		if (bpf_probe_read_user(msg, sizeof(msg), (void *)ptr)) {
			count(CNT_READ_FAIL, 1);
			*pos += n;
			return 0;
		}
		if (msg[0])
			pp = peer_at(msg[0]);
		iov = msg[2];
		iovcnt = msg[3];
	}
	for (int i = 0; i < MAX_IOV && n > 0; i++) {
		struct iovec v = {};
		if (i >= iovcnt)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(struct iovec)))) {
			count(CNT_READ_FAIL, 1);
			break;
		}
		__u64 m = v.iov_len < n ? v.iov_len : n;
		emit_buf(c, tgid, fd, dir, (__u64)v.iov_base, m, pp, TLS_NONE, ret);
		n -= m;
	}
	if (n > 0) {
		// More iovecs than MAX_IOV: account for the bytes so that the
		// stream positions stay exact.
		count(CNT_TRUNC_BYTES, n);
		*pos += n;
	}
	return 0;
}

// A process's sockets are closed by the kernel when it exits, without a
// close syscall: tell the Go side so that it drops the process's state.
SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (tls_enabled && ssl_calls_active && !bpf_map_delete_elem(&ssl_calls, &id))
		__sync_fetch_and_add(&ssl_calls_active, -1); // a thread that ended in an SSL call
	if ((__u32)id != tgid || !traced(tgid))
		return 0;
	emit_ctrl(EV_EXIT, tgid, -1, 0);
	return 0;
}

// A new program: its executable may hold SSL functions (statically linked
// OpenSSL or BoringSSL).
SEC("tp_btf/sched_process_exec")
int process_exec(__u64 *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!traced(tgid))
		return 0;
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	file_seen(tgid, BPF_CORE_READ(bprm, file));
	return 0;
}

// Function arguments, return value and stack pointer in a uprobe.
#if defined(__TARGET_ARCH_x86)
#define FN_ARG0(r) ((r)->di)
#define FN_ARG1(r) ((r)->si)
#define FN_ARG3(r) ((r)->cx)
#define FN_RET(r) ((r)->ax)
#define FN_SP(r) ((r)->sp)
// At a return probe the call's return address has been popped.
#define RET_SP_ADJ 8
#elif defined(__TARGET_ARCH_arm64)
#define FN_ARG0(r) ((r)->regs[0])
#define FN_ARG1(r) ((r)->regs[1])
#define FN_ARG3(r) ((r)->regs[3])
#define FN_RET(r) ((r)->regs[0])
#define FN_SP(r) ((r)->sp)
#define RET_SP_ADJ 0
#endif

// ssl_enter records an SSL call of kind at its entry. A call made inside
// another of the same thread (SSL_connect's SSL_do_handshake, a library
// whose SSL_write calls SSL_write_ex) runs on a lower stack and leaves the
// outer one in place; an entry left by a call whose return was never seen
// (the probes were detached meanwhile) is replaced.
static __always_inline int ssl_enter(struct pt_regs *ctx, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(tgid))
		return 0;
	__u64 sp = FN_SP(ctx);
	struct ssl_call *m = bpf_map_lookup_elem(&ssl_calls, &id);
	if (m && sp < m->sp)
		return 0;
	struct ssl_call call = {
		.ssl = FN_ARG0(ctx),
		.buf = FN_ARG1(ctx),
		.out = FN_ARG3(ctx),
		.sp = sp,
		.fd = -1,
		.kind = kind,
	};
	struct ssl_key k = {.ssl = call.ssl, .tgid = tgid};
	struct ssl_fd *v = bpf_map_lookup_elem(&ssl_fds, &k);
	if (v) {
		// Still the connection it was: else the socket closed since.
		struct conn *c = lookup_conn(tgid, v->fd);
		if (c && c->id == v->conn)
			call.fd = v->fd;
	}
	if (bio_active) {
		struct ssl_fd *lr = bpf_map_lookup_elem(&last_reads, &id);
		bool read = kind != SSL_WRITE && kind != SSL_WRITE_EX;
		if (lr && (read || call.fd < 0)) {
			// A read takes the records just read, whatever it was
			// tied to; a write only when it has no socket.
			struct ssl_fd nv = *lr;
			call.fd = nv.fd;
			bpf_map_update_elem(&ssl_fds, &k, &nv, BPF_ANY);
			if (read)
				bpf_map_delete_elem(&last_reads, &id);
			count(CNT_TLS_BIO_FD, 1);
		}
	}
	if (m)
		*m = call; // one left by a call whose return was not seen
	else if (!bpf_map_update_elem(&ssl_calls, &id, &call, BPF_NOEXIST))
		__sync_fetch_and_add(&ssl_calls_active, 1);
	return 0;
}

SEC("uprobe")
int ssl_write(struct pt_regs *ctx) { return ssl_enter(ctx, SSL_WRITE); }

SEC("uprobe")
int ssl_write_ex(struct pt_regs *ctx) { return ssl_enter(ctx, SSL_WRITE_EX); }

SEC("uprobe")
int ssl_read(struct pt_regs *ctx) { return ssl_enter(ctx, SSL_READ); }

SEC("uprobe")
int ssl_read_ex(struct pt_regs *ctx) { return ssl_enter(ctx, SSL_READ_EX); }

SEC("uprobe")
int ssl_handshake(struct pt_regs *ctx) { return ssl_enter(ctx, SSL_HANDSHAKE); }

// ssl_exit, at the return of every function above, ends the outermost SSL
// call of the thread and emits the bytes it moved as plaintext data of the
// connection it ran over, at that connection's plaintext offset.
static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct ssl_call *m = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!m)
		return 0;
	if (FN_SP(ctx) - RET_SP_ADJ < m->sp)
		return 0; // a nested call returned
	struct ssl_call call = *m;
	if (!bpf_map_delete_elem(&ssl_calls, &id))
		__sync_fetch_and_add(&ssl_calls_active, -1);
	if (call.fd < 0 && !bpf_map_lookup_elem(&bio_tgids, &tgid)) {
		// A call, the handshake's too, that made no socket syscall and
		// has no socket yet: a memory BIO. The process's reads are
		// watched from now on.
		__u8 one = 1;
		if (!bpf_map_update_elem(&bio_tgids, &tgid, &one, BPF_ANY))
			bio_active = 1;
	}
	int ret = (int)FN_RET(ctx); // every probed function returns an int
	__u64 n = 0;
	__u8 dir = DIR_EGRESS;
	switch (call.kind) {
	case SSL_READ:
		dir = DIR_INGRESS;
		/* fall through */
	case SSL_WRITE:
		if (ret <= 0)
			return 0;
		n = ret;
		break;
	case SSL_READ_EX:
		dir = DIR_INGRESS;
		/* fall through */
	case SSL_WRITE_EX:
		// SSL_write_ex returns 1 on success; the internal function
		// probed in its place (tls/placement.go) > 0.
		if (ret <= 0 || bpf_probe_read_user(&n, sizeof(n), (void *)call.out))
			return 0;
		break;
	default:
		return 0; // a handshake: its bytes are not data
	}
	if (n == 0)
		return 0;
	if (call.fd < 0) {
		count(CNT_TLS_NO_FD, 1);
		return 0;
	}
	struct conn *c = lookup_conn(tgid, call.fd);
	if (!c && !(c = new_conn(tgid, call.fd, ROLE_UNKNOWN))) {
		count(CNT_TLS_NO_CONN, 1);
		return 0;
	}
	c->tls = 1;
	emit_buf(c, tgid, call.fd, dir, call.buf, n, 0, TLS_PLAIN, n);
	return 0;
}

SEC("uretprobe")
int ssl_return(struct pt_regs *ctx) { return ssl_exit(ctx); }

// The same for a uprobe_multi link: the functions of one file are two
// links (entries, returns) instead of two perf events each, and removing a
// link waits for one grace period, not one per probe. The cookie of each
// address is its function's enum ssl_kind.
SEC("uprobe.multi")
int ssl_enter_multi(struct pt_regs *ctx) { return ssl_enter(ctx, (__u8)bpf_get_attach_cookie(ctx)); }

SEC("uretprobe.multi")
int ssl_return_multi(struct pt_regs *ctx) { return ssl_exit(ctx); }
