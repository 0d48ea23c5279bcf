package dbtest

import (
	"bytes"
	"strconv"
	"testing"
)

// TestProxyRecordsBothWays runs a real redis-cli through the proxy and
// checks that the command and the reply are recorded in order.
func TestProxyRecordsBothWays(t *testing.T) {
	s := StartRedis(t)
	var chunks []Chunk
	p := NewProxy(t, s.Addr(), func(c Chunk) { chunks = append(chunks, c) })
	cli := Need(t, "redis-cli")
	out := Run(t, nil, cli, "-p", strconv.Itoa(p.Port), "SET", "k", "v")
	if out != "OK\n" {
		t.Fatalf("redis-cli printed %q", out)
	}
	p.Close()
	var sent, got []byte
	for _, c := range chunks {
		if c.ToServer {
			sent = append(sent, c.Data...)
		} else {
			got = append(got, c.Data...)
		}
	}
	if !bytes.Contains(sent, []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")) {
		t.Errorf("client bytes %q lack the SET command", sent)
	}
	if !bytes.HasSuffix(got, []byte("+OK\r\n")) {
		t.Errorf("server bytes %q do not end with +OK", got)
	}
}
