//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// CPU profiler: on every tick of a software CPU-clock perf event (one per
// CPU), record the interrupted task's user and kernel stack ids and count
// the sample under (process, start time, user stack, kernel stack).
//
// The maps are double-buffered: cfg[0] says which half (0 or 1) samples
// go to, and user space flips it before draining the other half, so a
// drain never races with the program over stack ids it is deleting.

#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// MAX_DEPTH is the deepest stack kept (the kernel's default
// perf_event_max_stack); deeper stacks lose their root-most frames.
#define MAX_DEPTH 127

struct key {
	__u32 pid;         // tgid
	__s32 user_stack;  // stack id, or a negative error (no user stack)
	__s32 kernel_stack;
	__u32 pad;
	__u64 start_ns;    // the process's start, ns since boot
};

// Counters, in a per-CPU array; the Go side sums them.
enum counter {
	CNT_SAMPLES = 0,   // samples counted
	CNT_STACK_LOST,    // stacks not stored (a full stack map, or a collision)
	CNT_KEY_LOST,      // samples lost because the counts map was full
	CNT_MAX,
};

// Sizes are set by the Go side before loading (Config).
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks_0 SEC(".maps"), stacks_1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key);
	__type(value, __u64);
} counts_0 SEC(".maps"), counts_1 SEC(".maps");

// cfg[0]: the half samples go to.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += 1;
}

static __always_inline int record(void *ctx, void *stacks, void *counts, __u32 pid)
{
	struct key k = {.pid = pid};
	k.user_stack = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
	k.kernel_stack = bpf_get_stackid(ctx, stacks, 0);
	// -EFAULT is "no such stack" (a kernel thread has no user stack, a
	// sample in user mode no kernel one); others mean a stack was lost.
	if ((k.user_stack < 0 && k.user_stack != -EFAULT) ||
	    (k.kernel_stack < 0 && k.kernel_stack != -EFAULT))
		count(CNT_STACK_LOST);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	k.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);

	__u64 *n = bpf_map_lookup_elem(counts, &k);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;
		if (bpf_map_update_elem(counts, &k, &one, BPF_NOEXIST)) {
			// Another CPU may have added it meanwhile.
			n = bpf_map_lookup_elem(counts, &k);
			if (!n) {
				count(CNT_KEY_LOST);
				return 0;
			}
			__sync_fetch_and_add(n, 1);
		}
	}
	count(CNT_SAMPLES);
	return 0;
}

SEC("perf_event")
int sample(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (pid == 0)
		return 0; // the idle task
	__u32 zero = 0;
	__u32 *half = bpf_map_lookup_elem(&cfg, &zero);
	if (half && *half)
		return record(ctx, &stacks_1, &counts_1, pid);
	return record(ctx, &stacks_0, &counts_0, pid);
}
