package kafkatest

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// chunk is the bytes of one read or write of the broker on a connection.
type chunk struct {
	conn     int
	toServer bool // read by the broker (written by the client)
	ts       int64
	data     []byte
}

// broker is a kfake cluster of one broker on 127.0.0.1 whose connections
// are recorded, and which counts the requests it handles by API key and
// version.
type broker struct {
	*kfake.Cluster
	Addr   string
	mu     sync.Mutex
	conns  int
	chunks []chunk
	// handled counts the requests the broker decoded (with its own
	// decoder, kmsg), by key and version.
	handled map[[2]int16]int
}

// startBroker starts a broker with the topics given (3 partitions each).
func startBroker(t testing.TB, topics ...string) *broker {
	t.Helper()
	b := &broker{handled: map[[2]int16]int{}}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return &recListener{Listener: l, b: b}, nil
		}),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(3, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	c.Control(func(r kmsg.Request) (kmsg.Response, error, bool) {
		b.mu.Lock()
		b.handled[[2]int16{r.Key(), r.GetVersion()}]++
		b.mu.Unlock()
		return nil, nil, false
	})
	b.Cluster, b.Addr = c, c.ListenAddrs()[0]
	return b
}

// Handled returns the requests the broker handled, by key and version.
func (b *broker) Handled() map[[2]int16]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[[2]int16]int, len(b.handled))
	for k, v := range b.handled {
		m[k] = v
	}
	return m
}

// Chunks returns what was recorded so far.
func (b *broker) Chunks() []chunk {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chunk(nil), b.chunks...)
}

func (b *broker) add(c chunk) {
	b.mu.Lock()
	b.chunks = append(b.chunks, c)
	b.mu.Unlock()
}

type recListener struct {
	net.Listener
	b *broker
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.b.mu.Lock()
	id := l.b.conns
	l.b.conns++
	l.b.mu.Unlock()
	return &recConn{Conn: c, b: l.b, id: id}, nil
}

// recConn records a connection's bytes: a write before it is made, so
// that a response is recorded before the request it lets the client send.
type recConn struct {
	net.Conn
	b  *broker
	id int
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.b.add(chunk{conn: c.id, toServer: true, ts: time.Now().UnixNano(), data: append([]byte(nil), p[:n]...)})
	}
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	c.b.add(chunk{conn: c.id, ts: time.Now().UnixNano(), data: append([]byte(nil), p...)})
	return c.Conn.Write(p)
}

// testdata is the parser package's folder of recordings.
const testdata = "../../sources/ebpf/protocols/kafka/testdata"

// record writes chunks to the parser's testdata as name.bin when
// PXQ_RECORD=1, in the format its tests read: per chunk, 'C' (written by
// the client) or 'S', the connection's number (one byte), the length
// (4 bytes, big-endian) and the bytes.
func record(t testing.TB, name string, chunks []chunk) {
	t.Helper()
	if os.Getenv("PXQ_RECORD") != "1" {
		return
	}
	var out []byte
	for _, c := range chunks {
		d := byte('S')
		if c.toServer {
			d = 'C'
		}
		if c.conn > 255 {
			t.Fatalf("%s: more than 256 connections", name)
		}
		out = append(out, d, byte(c.conn))
		out = binary.BigEndian.AppendUint32(out, uint32(len(c.data)))
		out = append(out, c.data...)
	}
	path := filepath.Join(testdata, name+".bin")
	if err := os.MkdirAll(testdata, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d bytes)", path, len(out))
}
