package scripts_test

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The message-bus and gRPC scripts run over rows that the protocols'
// own parsers make from traffic recorded by their real-client tests
// (sources/ebpf/protocols/*/testdata): the recordings are replayed here,
// as the tracer would hand their bytes over, into an engine's store.

// recChunk is one read or write of a recorded connection.
type recChunk struct {
	conn     int
	toServer bool
	data     []byte
}

// readRecording reads a recording. Kafka's (test/kafka) give each chunk
// its connection's number after the direction byte; the others
// (internal/dbtest) are of one connection.
func readRecording(t *testing.T, path string, withConn bool) []recChunk {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head := 5
	if withConn {
		head = 6
	}
	var out []recChunk
	for len(b) > 0 {
		if len(b) < head || (b[0] != 'C' && b[0] != 'S') {
			t.Fatalf("%s: malformed at %d bytes from the end", path, len(b))
		}
		c := recChunk{toServer: b[0] == 'C'}
		if withConn {
			c.conn = int(b[1])
		}
		n := int(binary.BigEndian.Uint32(b[head-4 : head]))
		if len(b) < head+n {
			t.Fatalf("%s: chunk of %d bytes cut short", path, n)
		}
		c.data = b[head : head+n]
		out = append(out, c)
		b = b[head+n:]
	}
	return out
}

// replayer feeds recordings to a protocol's parsers, traced on the
// server's side, with their rows going to an engine's store.
type replayer struct {
	t       *testing.T
	eng     *engine.Engine
	writers map[string]*table.Writer
	cfg     protocols.Config
	port    uint16 // the server's
	next    int    // connections made so far, for their client ports
}

func newReplayer(t *testing.T, eng *engine.Engine) *replayer {
	return &replayer{t: t, eng: eng, writers: map[string]*table.Writer{},
		cfg: protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 256, RequestTimeout: time.Hour}}
}

// replay parses chunks as one session of p's clients with a server on
// port, the chunks step apart from start on. It returns the time after
// the last chunk.
func (r *replayer) replay(p protocols.Protocol, chunks []recChunk, port uint16, start time.Time, step time.Duration) time.Time {
	r.t.Helper()
	for _, d := range p.Tables() {
		if r.writers[d.Name()] != nil {
			continue
		}
		w, err := d.Writer(r.eng.Store().Table(d.Name()))
		if err != nil {
			r.t.Fatalf("%s: %v", d.Name(), err)
		}
		r.writers[d.Name()] = w
	}
	parsers := map[int]protocols.Parser{}
	ts := start.UnixNano()
	for _, c := range chunks {
		ts += int64(step)
		ps := parsers[c.conn]
		if ps == nil {
			r.next++
			conn := &protocols.Conn{
				UPID:   types.UPID(0, 4343, 1),
				Local:  netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
				Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+r.next)),
				Role:   protocols.RoleServer, Stream: true, Protocol: p.ID(),
			}
			ps = p.NewParser(protocols.Env{
				Conn: conn, Cfg: r.cfg,
				Row: func(d *table.Decl) *table.Row { return r.writers[d.Name()].Row() },
				Count: func(name string, n int64) {
					// API keys not parsed and requests the recording ends
					// before the answer of are the recordings' own.
					if name != "unparsed_requests" && name != "closed_before_response" {
						r.t.Errorf("%s: counter %s +%d", p.Name(), name, n)
					}
				},
			})
			parsers[c.conn] = ps
		}
		dir := protocols.Egress
		if c.toServer {
			dir = protocols.Ingress
		}
		ps.Data(protocols.Segment{Dir: dir, TS: ts, Data: c.data})
	}
	for _, ps := range parsers {
		ps.Close(ts)
	}
	return time.Unix(0, ts)
}

// flush writes the rows replayed so far to the store.
func (r *replayer) flush() {
	r.t.Helper()
	for name, w := range r.writers {
		if err := w.Flush(); err != nil {
			r.t.Fatal(err)
		}
		if _, refused := w.Counts(); refused > 0 {
			r.t.Fatalf("%s: %d rows refused", name, refused)
		}
	}
}

// newBusEngine is an engine with no metadata (processes are named by
// their command lines, here empty).
func newBusEngine(t *testing.T) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{Meta: metadata.None{}})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// storeRows returns every row of a table of the engine's store, as Go
// values.
func storeRows(t *testing.T, eng *engine.Engine, name string) []map[string]any {
	t.Helper()
	tb := eng.Store().Table(name)
	if tb == nil {
		t.Fatalf("no table %s", name)
	}
	return tableRows(t, tb)
}

func tableRows(t *testing.T, tb *table.Table) []map[string]any {
	t.Helper()
	all, err := tb.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	rel := tb.Relation()
	for _, b := range all {
		for i := 0; i < int(b.Record.NumRows()); i++ {
			row := map[string]any{}
			for c, col := range rel {
				row[col.Name] = format.Value(b.Record.Column(c), i)
			}
			out = append(out, row)
		}
	}
	return out
}
