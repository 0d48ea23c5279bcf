// Package bpf holds the profiler's BPF program (profile.c) and the Go
// bindings that bpf2go generates from it. The compiled objects are
// committed, so building pxq needs no clang; `make generate` rebuilds them.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type key Profile profile.c -- -I.
