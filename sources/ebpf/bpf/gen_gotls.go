package bpf

// gotls.c includes trace.c: the GoTLS objects carry the tracer's programs
// too, but only the Go ones are loaded from them (sources/ebpf/gotls.go).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type go_kind -type go_key GoTLS gotls.c -- -I.
