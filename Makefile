# pxq's everyday commands. `make help` lists them.

GO       ?= go
BIN      ?= bin/pxq
PKGS     ?= ./...
FUZZTIME ?= 15s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Fuzz targets, as PACKAGE:FUZZER.
FUZZERS := \
	./lang:FuzzCompile \
	./lang:FuzzScriptBudget \
	./planner:FuzzUnmarshal \
	./sources/ebpf/protocols/http:FuzzHTTPParser \
	./sources/ebpf/protocols/http2:FuzzHTTP2Parser \
	./sources/ebpf/protocols/dns:FuzzDNSParser \
	./sources/ebpf/protocols/pgsql:FuzzPgsqlParser \
	./sources/ebpf/protocols/mysql:FuzzMySQLParser \
	./sources/ebpf/protocols/redis:FuzzRedisParser \
	./sources/ebpf/protocols/nats:FuzzNATSParser \
	./sources/ebpf/protocols/amqp:FuzzAMQPParser \
	./sources/ebpf/protocols/kafka:FuzzKafkaParser \
	./sources/ebpf/protocols/cql:FuzzCQLParser \
	./sources/ebpf/protocols/mongodb:FuzzMongoDBParser \
	./sources/ebpf/protocols/mongodb:FuzzBSON \
	./sources/jvm:FuzzParse \
	./demo:FuzzDNSAnswer

include sources/ebpf/Makefile.inc

.PHONY: help build test k8s-bins test-ui bench-ui ui demo demo-capture generate fuzz bench vet clean

help:
	@echo "make build     build $(BIN)"
	@echo "make test      run every test (go test ./..., the browser and DuckDB tests; eBPF tests need root)"
	@echo "make ui        rebuild the web UI bundle from ui/web (npm ci)"
	@echo "make demo      run the demo: a small shop traced with eBPF, two scripts over its traffic"
	@echo "make demo-capture  record again the capture shipped in pxq (demo/testdata/capture; as root)"
	@echo "make generate  rebuild the BPF objects and the protobuf code"
	@echo "make fuzz      run each fuzzer for FUZZTIME ($(FUZZTIME))"
	@echo "make bench     run the benchmarks"

build:
	$(GO) build -ldflags "-X github.com/pxq-dev/pxq/engine.Version=$(VERSION)" -o $(BIN) ./cmd/pxq

# test runs every test: the main module, the real-browser UI tests, the
# DuckDB differential tests, the message buses' real-client tests and
# the OpenTelemetry Collector's and the Helm chart's (each its own
# module, to keep chromedp, cgo, the clients, the Collector and Helm out
# of pxq; the real-client, Collector and Helm modules run with
# -mod=mod, so that they take pxq's requirements as its go.mod has
# them). It first builds the kube-apiserver and etcd that the Kubernetes
# tests run against (cached; about 6 min the first time); test/helm
# builds the Helm CLI with its build.sh (cached; about 3 min).
test: k8s-bins
	$(GO) test $(PKGS)
	cd ui/browsertest && $(GO) test -count=1 ./...
	cd bench && $(GO) test ./...
	cd sources/ebpf/protocols/nats/realclient && $(GO) test -mod=mod -count=1 ./...
	cd sources/ebpf/protocols/amqp/realclient && $(GO) test -mod=mod -count=1 ./...
	cd sources/ebpf/protocols/cql/realclient && $(GO) test -mod=mod -count=1 ./...
	cd sources/ebpf/protocols/mongodb/realclient && $(GO) test -mod=mod -count=1 ./...
	cd sources/ebpf/protocols/drivers && $(GO) test -mod=mod -count=1 ./...
	cd test/kafka && $(GO) test -count=1 ./...
	cd test/otel && $(GO) test -mod=mod -count=1 ./...
	cd test/helm && $(GO) test -mod=mod -count=1 ./...

k8s-bins:
	./test/k8s/build.sh >/dev/null

test-ui:
	cd ui/browsertest && $(GO) test -count=1 ./...

bench-ui:
	cd ui/browsertest && PXQ_UI_BENCH=1 $(GO) test -count=1 -run TestBenchUI -v .

# ui rebuilds ui/dist from ui/web (commit the result).
ui:
	cd ui/web && npm ci && node build.js

demo:
	$(GO) run ./cmd/pxq demo

# demo-capture records the capture embedded in pxq (demo/shipped.go) from
# a real, traced demo run, replacing it only when the run traced. Commit
# the result; then run go test ./demo ./scripts ./metrics ./capture.
DEMO_CAPTURE := demo/testdata/capture
demo-capture: build
	@test "$$(id -u)" = 0 || { echo "make demo-capture: run it as root: the demo traces with eBPF"; exit 1; }
	rm -rf $(DEMO_CAPTURE).new
	$(BIN) demo --duration 6s --save-capture $(DEMO_CAPTURE).new >/dev/null
	test -f $(DEMO_CAPTURE).new/manifest.json
	rm -rf $(DEMO_CAPTURE) && mv $(DEMO_CAPTURE).new $(DEMO_CAPTURE)
	du -sh $(DEMO_CAPTURE)

generate: generate-ebpf
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
	protoc -I. --go_out=. --go_opt=paths=source_relative api/planpb/plan.proto
	protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative \
		api/vizierpb/vizierapi.proto api/agentpb/agent.proto api/pxqpb/pxq.proto
	protoc -I. --descriptor_set_out=server/testdata/vizierapi.protoset api/vizierpb/vizierapi.proto

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
