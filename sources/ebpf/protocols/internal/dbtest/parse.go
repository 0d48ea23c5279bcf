package dbtest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/table"
)

// Roles are the two sides a connection is traced on, the client's first.
var Roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

// Config is the parser configuration of the database protocols' tests.
var Config = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// Target is a protocol under test and the port of its server: the
// connections its parsers see are of a client at 127.0.0.1:40000 to that
// port of 127.0.0.1.
type Target struct {
	Protocol protocols.Protocol
	Port     uint16
}

// Side is one connection's parser, traced on one side and fed as the
// tracer would feed it, with its rows in real tables
// (protocoltest.Harness).
type Side struct {
	Conn   *protocols.Conn
	Parser protocols.Parser
	Counts map[string]int64 // the parser's counters
	Role   protocols.Role
	TS     int64 // when the last segment was seen

	h     *protocoltest.Harness
	table string // the protocol's (first) table
}

// Side returns the parser of a new connection traced on the side role.
func (tg Target) Side(t testing.TB, role protocols.Role, cfg protocols.Config) *Side {
	t.Helper()
	h := protocoltest.New(t, tg.Protocol, protocols.Conn{
		Role: role, Stream: true,
		Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), tg.Port),
		Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
	}, cfg)
	return &Side{Conn: h.Conn, Parser: h.Parser, Counts: h.Counts, Role: role, TS: 1_000_000,
		h: h, table: tg.Protocol.Tables()[0].Name()}
}

// Send feeds b as written by the client (toServer) or the server, in
// pieces of split bytes (all at once when split is 0), 1 µs apart.
func (s *Side) Send(toServer bool, b []byte, split int) {
	for len(b) > 0 {
		n := len(b)
		if split > 0 {
			n = min(split, n)
		}
		s.TS += 1000
		s.Parser.Data(Segment(Chunk{ToServer: toServer, TS: s.TS, Data: b[:n]}, s.Role))
		b = b[n:]
	}
}

// Replay sends the chunks of a recording, each in pieces of split bytes.
func (s *Side) Replay(chunks []Chunk, split int) {
	for _, c := range chunks {
		s.Send(c.ToServer, c.Data, split)
	}
}

// Rows returns the rows written to the protocol's table so far.
func (s *Side) Rows() []map[string]any { return s.h.Rows(s.table) }

// Fuzz feeds what a fuzz target made of a connection: the client's and
// the server's bytes in turns, in pieces of split%32+1 bytes, with a gap
// of split-200 ingress bytes at every fifth turn when split is over 200.
// Then it polls past every request's timeout and closes the connection.
func (s *Side) Fuzz(client, server []byte, split uint8) {
	step := int(split%32) + 1
	for i := 0; i < len(client) || i < len(server); i += step {
		if i < len(client) {
			s.Send(true, client[i:min(i+step, len(client))], 0)
		}
		if i < len(server) {
			s.Send(false, server[i:min(i+step, len(server))], 0)
		}
		if split > 200 && i%5 == 2 {
			s.Parser.Gap(protocols.Ingress, int(split-200))
		}
	}
	s.Parser.Poll(s.TS + 1<<40)
	s.Parser.Close(s.TS + 1<<40)
}

// FuzzConfig is Config with the small bounds of fuzz targets, so that
// inputs reach them.
var FuzzConfig = protocols.Config{MaxBodyBytes: 64, MaxHeaderBytes: 128, MaxPending: Config.MaxPending, RequestTimeout: Config.RequestTimeout}

// Fuzz runs a fuzz target whose inputs are a connection's client bytes,
// server bytes and a split (see Side.Fuzz): it feeds each to a parser
// on each side, with FuzzConfig, and check checks the side after.
func (tg Target) Fuzz(f *testing.F, check func(t *testing.T, s *Side)) {
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		for _, role := range Roles {
			s := tg.Side(t, role, FuzzConfig)
			s.Fuzz(client, server, split)
			check(t, s)
		}
	})
}

// AddRecordings adds to a fuzz target's corpus, for each recording
// testdata/FILE.bin, what its client sent, what its server sent, and
// split (see Side.Fuzz).
func AddRecordings(f *testing.F, split uint8, files ...string) {
	f.Helper()
	for _, file := range files {
		var client, server []byte
		for _, c := range Replay(f, "testdata/"+file+".bin") {
			if c.ToServer {
				client = append(client, c.Data...)
			} else {
				server = append(server, c.Data...)
			}
		}
		f.Add(client, server, split)
	}
}

// CheckReplay replays a recording on each side, in the pieces it was
// read in (split 0) and cut in pieces of each of splits: check checks
// the rows of each, and no counter may move.
func (tg Target) CheckReplay(t *testing.T, name string, chunks []Chunk, splits []int, check func(rows []map[string]any)) {
	t.Helper()
	for _, role := range Roles {
		for _, split := range splits {
			s := tg.Side(t, role, Config)
			s.Replay(chunks, split)
			check(s.Rows())
			if len(s.Counts) != 0 {
				t.Errorf("%s role %d split %d: counters %v", name, role, split, s.Counts)
			}
		}
	}
}

// Live parses the connections through a Proxy as the tracer would on
// each side: one parser as the client, one as the server.
type Live struct {
	Chunks []Chunk // every chunk fed, in order (for Record)

	t     testing.TB
	tg    Target
	conns map[int]*[2]*Side
}

// Live returns a Live whose Feed a Proxy calls.
func (tg Target) Live(t testing.TB) *Live {
	return &Live{t: t, tg: tg, conns: map[int]*[2]*Side{}}
}

// Feed hands a chunk to both parsers of its connection.
func (l *Live) Feed(c Chunk) {
	l.Chunks = append(l.Chunks, c)
	sides := l.conns[c.Conn]
	if sides == nil {
		sides = &[2]*Side{}
		for i, role := range Roles {
			sides[i] = l.tg.Side(l.t, role, Config)
		}
		l.conns[c.Conn] = sides
	}
	for _, s := range sides {
		s.TS = c.TS
		s.Parser.Data(Segment(c, s.Role))
	}
}

// ConnRows closes every connection's parsers and returns the rows of
// each side, by connection in accept order.
func (l *Live) ConnRows() (client, server [][]map[string]any) {
	for _, id := range slices.Sorted(maps.Keys(l.conns)) {
		sides := l.conns[id]
		for _, s := range sides {
			s.Parser.Close(time.Now().UnixNano())
		}
		client = append(client, sides[0].Rows())
		server = append(server, sides[1].Rows())
	}
	return client, server
}

// Rows is ConnRows with the rows of a side's connections one after the
// other.
func (l *Live) Rows() (client, server []map[string]any) {
	cc, sc := l.ConnRows()
	return slices.Concat(cc...), slices.Concat(sc...)
}

// Count sums a counter over the parsers of one side (0 the client's).
func (l *Live) Count(side int, name string) int64 {
	var n int64
	for _, sides := range l.conns {
		n += sides[side].Counts[name]
	}
	return n
}

// Zero fails the test for each of the named counters that moved on
// either side.
func (l *Live) Zero(t testing.TB, names ...string) {
	t.Helper()
	for side := range Roles {
		counts := map[string]int64{}
		for _, c := range names {
			counts[c] = l.Count(side, c)
		}
		Zero(t, fmt.Sprintf("side %d", side+1), counts, names...)
	}
}

// Zero fails the test for each of the named counters of counts that is
// not 0; name says whose counters they are.
func Zero(t testing.TB, name string, counts map[string]int64, names ...string) {
	t.Helper()
	for _, c := range names {
		if n := counts[c]; n != 0 {
			t.Errorf("%s: %s = %d", name, c, n)
		}
	}
}

// CheckSides closes the parsers and checks the rows of each side: with
// check, and that each row has its side's trace_role and a latency of at
// most 10 s (see CheckLatency for instant).
func (l *Live) CheckSides(t testing.TB, check func(rows []map[string]any), instant func(map[string]any) bool) {
	t.Helper()
	client, server := l.Rows()
	for side, rows := range [2][]map[string]any{client, server} {
		check(rows)
		name := fmt.Sprintf("side %d", side+1)
		for i, r := range rows {
			if r["trace_role"] != int64(Roles[side]) {
				t.Errorf("%s row %d: trace_role %v", name, i, r["trace_role"])
			}
		}
		CheckLatency(t, name, rows, 10*time.Second, instant)
	}
}

// CheckRows checks rows against wants, in order: as(r, w) is the row r
// in the form of its want w (as may take a part of w where the row's
// value changes from run to run: see Wild).
func CheckRows[W comparable](t testing.TB, rows []map[string]any, wants []W, as func(r map[string]any, w W) W) {
	t.Helper()
	if len(rows) != len(wants) {
		var zero W
		for i, r := range rows {
			t.Logf("row %d: %#v", i, as(r, zero))
		}
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		if got := as(rows[i], w); got != w {
			t.Errorf("row %d:\n got %#v\nwant %#v", i, got, w)
		}
	}
}

// Wild returns want when it ends in "*" and got begins with what comes
// before, and got otherwise: a want's text that ends in "*" stands for
// any text that begins so.
func Wild(got any, want string) string {
	s, _ := got.(string)
	if prefix, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(s, prefix) {
		return want
	}
	return s
}

// ExpectRows checks that got has one row per want, in order, each with
// the values of the columns its want names. When the number of rows
// differs it logs the columns show of each row; name says whose rows.
func ExpectRows(t testing.TB, name string, got, wants []map[string]any, show ...string) {
	t.Helper()
	if len(got) != len(wants) {
		for i, r := range got {
			var cells []any
			for _, c := range show {
				cells = append(cells, r[c])
			}
			t.Logf("%s row %d: %#v", name, i, cells)
		}
		t.Fatalf("%s: %d rows, want %d", name, len(got), len(wants))
	}
	for i, w := range wants {
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if got[i][k] != w[k] {
				t.Errorf("%s row %d: %s = %#v, want %#v", name, i, k, got[i][k], w[k])
			}
		}
	}
}

// ExpectTraced checks rows a tracer wrote on one side (name): ExpectRows
// with the columns show, and CheckLatency within 5 s.
func ExpectTraced(t testing.TB, name string, got, wants []map[string]any, instant func(map[string]any) bool, show ...string) {
	t.Helper()
	ExpectRows(t, name, got, wants, show...)
	CheckLatency(t, name, got, 5*time.Second, instant)
}

// CheckEveryColumn checks the one row of rows against want, which names
// every column of the table d.
func CheckEveryColumn(t testing.TB, rows []map[string]any, d *table.Decl, want map[string]any) {
	t.Helper()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	if len(rows[0]) != len(d.Relation()) || len(want) != len(rows[0]) {
		t.Fatalf("%d columns, declared %d, checked %d", len(rows[0]), len(d.Relation()), len(want))
	}
	ExpectRows(t, d.Name(), rows, []map[string]any{want})
}

// CheckLatency checks that each row's latency is positive and at most
// max; instant, when not nil, selects the rows of requests that have no
// response, whose latency may be 0.
func CheckLatency(t testing.TB, name string, rows []map[string]any, max time.Duration, instant func(map[string]any) bool) {
	t.Helper()
	for i, r := range rows {
		lat, _ := r["latency"].(int64)
		if lat < 0 || lat > int64(max) || (lat == 0 && (instant == nil || !instant(r))) {
			t.Errorf("%s row %d: latency %d", name, i, lat)
		}
	}
}

// Inference is what a protocol's inference rule must tell of the
// samples of FirstBytes and more.
type Inference struct {
	Protocol protocols.Protocol
	// Prefix begins the names of the protocol's own samples ("pgsql-"):
	// they must match, and no other.
	Prefix string
	// Request says whether the protocol's samples start a request (a
	// client's) or a response (a server's greeting).
	Request bool
	// Whole says whether only a whole sample matches: a rule that reads
	// a whole message (a MySQL server's handshake) takes no cut one.
	Whole bool
	// Match and NoMatch are more bytes that must, and must not, match.
	Match, NoMatch [][]byte
}

// Check checks the rule on every sample of FirstBytes, whole and cut
// anywhere, as a stream and as a datagram (which never matches), and on
// Match and NoMatch.
func (in Inference) Check(t *testing.T) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(FirstBytes)) {
		b := FirstBytes[name]
		mine := strings.HasPrefix(name, in.Prefix)
		match, request := in.Protocol.Infer(b, true)
		if match != mine || (match && request != in.Request) {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := in.Protocol.Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for i := range b {
			if m, _ := in.Protocol.Infer(b[:i], true); m && (!mine || in.Whole) {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
	}
	for _, b := range in.Match {
		if m, _ := in.Protocol.Infer(b, true); !m {
			t.Errorf("%q not matched", b)
		}
	}
	for _, b := range in.NoMatch {
		if m, _ := in.Protocol.Infer(b, true); m {
			t.Errorf("%q matched", b)
		}
	}
}
