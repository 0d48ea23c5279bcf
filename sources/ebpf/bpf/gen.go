// Package bpf holds the tracer's BPF programs (trace.c) and the Go bindings
// that bpf2go generates from them. The compiled objects are committed, so
// building pxq needs no clang; `make generate` rebuilds them.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event -type conn -type config -type file_event -type ssl_kind Trace trace.c -- -I.
