/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel types the profiler needs, declared by hand instead of a
 * full vmlinux.h; task_struct is relocated against the running kernel's
 * BTF at load time (CO-RE).
 */
#ifndef PXQ_PROFILER_TYPES_H
#define PXQ_PROFILER_TYPES_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_STACK_TRACE = 7,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

#define BPF_F_USER_STACK (1ULL << 8)
#define EFAULT 14

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct task_struct {
	struct task_struct *group_leader;
	__u64 start_boottime;
};

#pragma clang attribute pop

#endif
