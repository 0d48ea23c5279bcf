# pxq's everyday commands. `make help` lists them.

GO       ?= go
BIN      ?= bin/pxq
PKGS     ?= ./...
FUZZTIME ?= 15s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Fuzz targets, as PACKAGE:FUZZER.
FUZZERS := \
	./lang:FuzzCompile \
	./planner:FuzzUnmarshal \
	./sources/ebpf/protocols/http:FuzzHTTPParser \
	./demo:FuzzDNSAnswer

include sources/ebpf/Makefile.inc

.PHONY: help build test demo generate fuzz bench vet clean

help:
	@echo "make build     build $(BIN)"
	@echo "make test      run every test (go test ./...; the eBPF tests need root)"
	@echo "make demo      run the demo: a small shop traced with eBPF, two scripts over its traffic"
	@echo "make generate  rebuild the BPF objects and the protobuf code"
	@echo "make fuzz      run each fuzzer for FUZZTIME ($(FUZZTIME))"
	@echo "make bench     run the benchmarks"

build:
	$(GO) build -ldflags "-X github.com/pxq-dev/pxq/engine.Version=$(VERSION)" -o $(BIN) ./cmd/pxq

test:
	$(GO) test $(PKGS)

demo:
	$(GO) run ./cmd/pxq demo

generate: generate-ebpf
	protoc --go_out=. --go_opt=paths=source_relative api/planpb/plan.proto

fuzz:
	@set -e; for f in $(FUZZERS); do \
		pkg=$${f%%:*}; fn=$${f##*:}; \
		echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
