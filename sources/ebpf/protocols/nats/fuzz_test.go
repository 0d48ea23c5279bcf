package nats

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzNATSParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queue bounded, and every row must be complete, its
// body within the bounds and JSON.
func FuzzNATSParser(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, file := range files {
		var client, server []byte
		for _, c := range dbtest.Replay(f, file) {
			if c.ToServer {
				client = append(client, c.Data...)
			} else {
				server = append(server, c.Data...)
			}
		}
		f.Add(client, server, uint8(3))
		f.Add(client, server, uint8(205))
	}
	f.Add([]byte("CONNECT {\"verbose\":true}\r\nPUB a 1\r\nx\r\nHPUB b 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
		[]byte("+OK\r\n-ERR 'x'\r\nHMSG b 1 r 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes, cfg.MaxPending = 64, 128, 8
		for _, role := range roles {
			h := newHarness(t, role, cfg)
			step := int(split%32) + 1
			for i := 0; i < len(client) || i < len(server); i += step {
				if i < len(client) {
					h.send(true, string(client[i:min(i+step, len(client))]), 0)
				}
				if i < len(server) {
					h.send(false, string(server[i:min(i+step, len(server))]), 0)
				}
				if split > 200 && i%5 == 2 {
					h.c.Gap(protocols.Ingress, int(split-200))
				}
			}
			for _, r := range []*reader{&h.c.client, &h.c.server} {
				if cap(r.line) > 2*cfg.MaxHeaderBytes || len(r.hdrBuf) > cfg.MaxHeaderBytes || len(r.bodyBuf) > cfg.MaxBodyBytes {
					t.Fatalf("reader not bounded: line %d headers %d body %d", cap(r.line), len(r.hdrBuf), len(r.bodyBuf))
				}
			}
			if h.c.Pending() > cfg.MaxPending {
				t.Fatalf("%d commands waiting", h.c.Pending())
			}
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if h.c.Pending() != 0 {
				t.Fatalf("pending %d after close", h.c.Pending())
			}
			for _, r := range h.rows() {
				body := r["body"].(string)
				// Escaping can make a kept byte six.
				if len(body) > 6*(cfg.MaxHeaderBytes+cfg.MaxBodyBytes)+256 {
					t.Fatalf("body of %d bytes", len(body))
				}
				if body != "" && !json.Valid([]byte(body)) {
					t.Fatalf("body %q is not JSON", body)
				}
				if r["cmd"] == "" {
					t.Fatalf("row without a command: %v", r)
				}
			}
		}
	})
}
