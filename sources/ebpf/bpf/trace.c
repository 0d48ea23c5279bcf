//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Socket syscall tracer: tracks inet sockets per (tgid, fd), and copies the
// bytes of every read/write-like syscall on them into a ring buffer for the
// Go side to reassemble and parse.
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
	CNT_MAX,
};

struct addr {
	__u8 addr[16];
	__u16 port; // host order
	__u16 family;
};

struct conn {
	__u64 id;
	__u64 start_ns; // process start, ns since boot
	__u64 wr;       // bytes written so far
	__u64 rd;       // bytes read so far
	struct addr local;
	struct addr remote;
	__u8 role;
	__u8 sock_type;
	__u8 pad[6];
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
	__u8 pad[3];
};

struct scratch {
	struct event ev;
	__u8 data[SCRATCH];
};

enum call_kind {
	CALL_BUF = 1,   // read/write/recvfrom/sendto
	CALL_IOV = 2,   // readv/writev
	CALL_MSG = 3,   // recvmsg/sendmsg
	CALL_CONNECT = 4,
	CALL_ACCEPT = 5,
};

struct args {
	__u64 ptr;      // buffer, iovec array or msghdr
	__u64 cnt;      // length or iovec count
	__u64 addr;     // sockaddr of recvfrom (read at exit)
	__s32 fd;
	__u8 kind;
	__u8 dir;
	__u8 pad[2];
};

struct config {
	__u32 self_tgid;  // skip this process (0 = trace it)
	__u32 only_pids;  // 1 = trace only the pids in the allow map
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // tgid << 32 | fd
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); // pid_tgid
	__type(value, struct args);
} active SEC(".maps");

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

// Force BTF for the types the Go side decodes.
const struct event *unused_event __attribute__((unused));
const struct conn *unused_conn __attribute__((unused));

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
	return bpf_map_lookup_elem(&skip_pids, &tgid) == 0;
}

// sock_of returns the struct socket behind fd of the current task, or NULL
// if fd is not a socket.
static __always_inline struct socket *sock_of(__s32 fd)
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
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
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
	struct socket *s = sock_of(fd);
	if (!s)
		return 0;
	struct conn c = {};
	if (!fill_conn(&c, s))
		return 0;
	c.role = role;
	// The id only has to differ between successive connections on one
	// (tgid, fd): the creation time does.
	c.id = bpf_ktime_get_ns();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	c.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	__u64 key = (__u64)tgid << 32 | (__u32)fd;
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
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

// emit_buf writes up to MAX_CHUNKS events for the n bytes at ubuf. The last
// event's span covers whatever was not copied, so the Go side knows the
// stream's exact length.
static __always_inline void emit_buf(struct conn *c, __u32 tgid, __s32 fd, __u8 dir,
				     __u64 ubuf, __u64 n, __u64 *pos, struct addr *peer)
{
	struct scratch *s = get_scratch();
	if (!s)
		return;
	__u64 ts = bpf_ktime_get_ns();
	for (int i = 0; i < MAX_CHUNKS && n > 0; i++) {
		struct event *ev = &s->ev;
		__u32 len = n > CHUNK ? CHUNK : n;
		__u64 span = len;
		if (i == MAX_CHUNKS - 1 && n > len) {
			span = n;
			count(CNT_TRUNC_BYTES, n - len);
		}
		__builtin_memset(ev, 0, sizeof(*ev));
		ev->ts = ts;
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
		if (peer && peer->family) {
			ev->remote = *peer;
			ev->peer_set = 1;
		}
		ev->pos = *pos;
		ev->span = span;
		len &= (SCRATCH - 1);
		if (bpf_probe_read_user(s->data, len, (void *)ubuf)) {
			count(CNT_READ_FAIL, 1);
			len = 0;
		}
		ev->len = len;
		if (bpf_ringbuf_output(&events, s, sizeof(struct event) + len, BPF_RB_NO_WAKEUP)) {
			count(CNT_RB_DROPS, 1);
			count(CNT_RB_DROP_BYTES, span);
		} else {
			count(CNT_EVENTS, 1);
		}
		*pos += span;
		ubuf += span;
		n -= span;
	}
}

static __always_inline void save_args(__s32 fd, __u8 kind, __u8 dir, __u64 ptr, __u64 cnt, __u64 addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(tgid))
		return;
	if (kind != CALL_CONNECT && kind != CALL_ACCEPT) {
		// Data calls: only on inet sockets. A socket opened before
		// tracing began gets its entry here, with an unknown role.
		if (!lookup_conn(tgid, fd) && !new_conn(tgid, fd, ROLE_UNKNOWN))
			return;
	}
	struct args a = {};
	a.fd = fd;
	a.kind = kind;
	a.dir = dir;
	a.ptr = ptr;
	a.cnt = cnt;
	a.addr = addr;
	bpf_map_update_elem(&active, &id, &a, BPF_ANY);
}

static __always_inline int handle_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct args *a = bpf_map_lookup_elem(&active, &id);
	if (!a)
		return 0;
	struct args args = *a;
	bpf_map_delete_elem(&active, &id);
	__u32 tgid = id >> 32;

	if (args.kind == CALL_CONNECT) {
		if (ret == 0 || ret == -EINPROGRESS)
			new_conn(tgid, args.fd, ROLE_CLIENT);
		return 0;
	}
	if (args.kind == CALL_ACCEPT) {
		if (ret >= 0)
			new_conn(tgid, (__s32)ret, ROLE_SERVER);
		return 0;
	}
	if (ret <= 0)
		return 0;
	struct conn *c = lookup_conn(tgid, args.fd);
	if (!c)
		return 0;
	__u64 *pos = args.dir == DIR_EGRESS ? &c->wr : &c->rd;
	__u64 n = ret;

	struct addr peer = {};
	struct addr *pp = 0;
	if (args.kind == CALL_BUF) {
		if (args.addr) {
			read_sockaddr(&peer, args.addr);
			pp = &peer;
		}
		emit_buf(c, tgid, args.fd, args.dir, args.ptr, n, pos, pp);
		return 0;
	}

	__u64 iov = args.ptr;
	__u64 iovcnt = args.cnt;
	if (args.kind == CALL_MSG) {
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)args.ptr)) {
			count(CNT_READ_FAIL, 1);
			*pos += n;
			return 0;
		}
		if (msg.msg_name) {
			read_sockaddr(&peer, (__u64)msg.msg_name);
			pp = &peer;
		}
		iov = (__u64)msg.msg_iov;
		iovcnt = msg.msg_iovlen;
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
		emit_buf(c, tgid, args.fd, args.dir, (__u64)v.iov_base, m, pos, pp);
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

#define ARG(ctx, i) ((ctx)->args[i])

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_BUF, DIR_INGRESS, ARG(ctx, 1), ARG(ctx, 2), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_BUF, DIR_EGRESS, ARG(ctx, 1), ARG(ctx, 2), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_IOV, DIR_INGRESS, ARG(ctx, 1), ARG(ctx, 2), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_IOV, DIR_EGRESS, ARG(ctx, 1), ARG(ctx, 2), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_BUF, DIR_INGRESS, ARG(ctx, 1), ARG(ctx, 2), ARG(ctx, 4));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_BUF, DIR_EGRESS, ARG(ctx, 1), ARG(ctx, 2), ARG(ctx, 4));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_MSG, DIR_INGRESS, ARG(ctx, 1), 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_MSG, DIR_EGRESS, ARG(ctx, 1), 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_CONNECT, 0, 0, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_ACCEPT, 0, 0, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	save_args(ARG(ctx, 0), CALL_ACCEPT, 0, 0, 0, 0);
	return 0;
}

// One exit program serves every call above (the Go side attaches it to each
// sys_exit_* tracepoint): the saved args say what the call was. One copy
// instead of eleven keeps verification, the slow part of loading, short.
SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	return handle_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__s32 fd = ARG(ctx, 0);
	__u64 key = (__u64)tgid << 32 | (__u32)fd;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	emit_ctrl(EV_CLOSE, tgid, fd, c);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

// A process's sockets are closed by the kernel when it exits, without a
// close syscall: tell the Go side so that it drops the process's state.
SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if ((__u32)id != tgid || !traced(tgid))
		return 0;
	emit_ctrl(EV_EXIT, tgid, -1, 0);
	return 0;
}
