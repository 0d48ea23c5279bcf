package otel

import (
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pxq-dev/pxq/plan"
)

// spanMap is a plan.OTelSpan resolved against its input's columns.
type spanMap struct {
	s                                               plan.OTelSpan
	name, start, end, traceID, spanID, parent, role int
	conn                                            [4]int // local addr, local port, remote addr, remote port
	attrs                                           []attr
}

func newSpanMap(c cols, s plan.OTelSpan) (*spanMap, error) {
	sm := &spanMap{s: s, conn: [4]int{-1, -1, -1, -1}}
	var err error
	for _, f := range []struct {
		dst  *int
		name string
	}{{&sm.name, s.NameColumn}, {&sm.start, s.Start}, {&sm.end, s.End}, {&sm.traceID, s.TraceID}, {&sm.spanID, s.SpanID},
		{&sm.parent, s.ParentSpanID}, {&sm.role, s.Role}} {
		if *f.dst, err = c.index(f.name); err != nil {
			return nil, err
		}
	}
	if cn := s.Conn; cn != nil {
		for i, name := range []string{cn.LocalAddr, cn.LocalPort, cn.RemoteAddr, cn.RemotePort} {
			if sm.conn[i], err = c.index(name); err != nil {
				return nil, err
			}
		}
	}
	if sm.attrs, err = c.attrs(s.Attributes); err != nil {
		return nil, err
	}
	return sm, nil
}

// pairs reports whether the spans pair client and server rows, which
// needs all of a query's rows before any is sent.
func (m *spanMap) pairs() bool { return m.conn[0] >= 0 && m.role >= 0 }

// Trace roles of request rows (the trace_role column).
const (
	roleClient = 1
	roleServer = 2
)

// span is one exported span: the SDK's ReadOnlySpan, made from a row.
type span struct {
	sdktrace.ReadOnlySpan // unset: the methods below are all there are

	name       string
	ctx        trace.SpanContext
	parent     trace.SpanContext
	kind       trace.SpanKind
	start, end time.Time
	attrs      []attribute.KeyValue
	res        *resource.Resource
	scope      instrumentation.Scope

	// For pairing: the connection as client address:port, server
	// address:port, and the role of the row.
	conn connKey
	role int64
}

func (s *span) Name() string                                    { return s.name }
func (s *span) SpanContext() trace.SpanContext                  { return s.ctx }
func (s *span) Parent() trace.SpanContext                       { return s.parent }
func (s *span) SpanKind() trace.SpanKind                        { return s.kind }
func (s *span) StartTime() time.Time                            { return s.start }
func (s *span) EndTime() time.Time                              { return s.end }
func (s *span) Attributes() []attribute.KeyValue                { return s.attrs }
func (s *span) Links() []sdktrace.Link                          { return nil }
func (s *span) Events() []sdktrace.Event                        { return nil }
func (s *span) Status() sdktrace.Status                         { return sdktrace.Status{} }
func (s *span) InstrumentationScope() instrumentation.Scope     { return s.scope }
func (s *span) InstrumentationLibrary() instrumentation.Library { return s.scope } //nolint:staticcheck // the interface has it
func (s *span) Resource() *resource.Resource                    { return s.res }
func (s *span) DroppedAttributes() int                          { return 0 }
func (s *span) DroppedLinks() int                               { return 0 }
func (s *span) DroppedEvents() int                              { return 0 }
func (s *span) ChildSpanCount() int                             { return 0 }

// connKey names a connection the same way from both of its ends.
type connKey struct {
	clientAddr, serverAddr string
	clientPort, serverPort int64
}

// ids makes trace and span IDs.
type ids struct{ r *rand.Rand }

func newIDs() *ids { return &ids{r: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))} }

func (g *ids) trace() (t trace.TraceID) {
	for !t.IsValid() {
		putUint64(t[:8], g.r.Uint64())
		putUint64(t[8:], g.r.Uint64())
	}
	return t
}

func (g *ids) span() (s trace.SpanID) {
	for !s.IsValid() {
		putUint64(s[:], g.r.Uint64())
	}
	return s
}

func putUint64(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

// parseID reads a lower-case hex ID of len(dst) bytes; false for anything
// else (wrong length, upper case, all zeros).
func parseID(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return false
	}
	for _, b := range dst {
		if b != 0 {
			return true
		}
	}
	return false
}

// row makes row r's span for resource res.
func (m *spanMap) row(rec arrow.Record, r int, res *resource.Resource, scope instrumentation.Scope, g *ids) *span {
	s := &span{name: m.s.Name, kind: trace.SpanKind(m.s.Kind), res: res, scope: scope}
	if m.name >= 0 {
		s.name = text(rec, m.name, r)
	}
	s.start = timeAt(rec, m.start, r, time.Time{})
	s.end = timeAt(rec, m.end, r, time.Time{})
	var tid trace.TraceID
	var sid, pid trace.SpanID
	if m.traceID < 0 || !parseID(tid[:], text(rec, m.traceID, r)) {
		tid = g.trace()
	}
	if m.spanID < 0 || !parseID(sid[:], text(rec, m.spanID, r)) {
		sid = g.span()
	}
	s.ctx = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if m.parent >= 0 && parseID(pid[:], text(rec, m.parent, r)) {
		s.parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: pid, TraceFlags: trace.FlagsSampled, Remote: true})
	}
	if m.role >= 0 {
		s.role = integer(rec, m.role, r)
		if m.s.KindFromRole {
			switch s.role {
			case roleClient:
				s.kind = trace.SpanKindClient
			case roleServer:
				s.kind = trace.SpanKindServer
			}
		}
	}
	if m.pairs() {
		la, lp := text(rec, m.conn[0], r), integer(rec, m.conn[1], r)
		ra, rp := text(rec, m.conn[2], r), integer(rec, m.conn[3], r)
		if s.role == roleServer {
			s.conn = connKey{clientAddr: ra, clientPort: rp, serverAddr: la, serverPort: lp}
		} else {
			s.conn = connKey{clientAddr: la, clientPort: lp, serverAddr: ra, serverPort: rp}
		}
	}
	if len(m.attrs) > 0 {
		s.attrs = make([]attribute.KeyValue, len(m.attrs))
		for i, a := range m.attrs {
			s.attrs[i] = a.read(rec, r)
		}
	}
	return s
}

// pairSlack is how far a server's span may reach outside its client's
// and still be the same request: the two ends' clocks are one clock on a
// host, but may differ a little between nodes.
const pairSlack = time.Millisecond

// pairSpans makes the server span of each request whose client span is
// also there the client span's child, in the client span's trace. The
// request is the one on the same connection whose client span holds the
// server span (within pairSlack), overlapping it the most; each client
// span is the parent of at most one server span. It returns the number
// of pairs made.
func pairSpans(spans []*span) int {
	type side struct{ client, server []*span }
	byConn := map[connKey]*side{}
	for _, s := range spans {
		if s.role != roleClient && s.role != roleServer {
			continue
		}
		sd := byConn[s.conn]
		if sd == nil {
			sd = &side{}
			byConn[s.conn] = sd
		}
		if s.role == roleClient {
			sd.client = append(sd.client, s)
		} else {
			sd.server = append(sd.server, s)
		}
	}
	pairs := 0
	for _, sd := range byConn {
		if len(sd.client) == 0 || len(sd.server) == 0 {
			continue
		}
		byStart := func(ss []*span) {
			sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
		}
		byStart(sd.client)
		byStart(sd.server)
		used := make([]bool, len(sd.client))
		for _, srv := range sd.server {
			best, bestOverlap := -1, time.Duration(-1)
			for i, cl := range sd.client {
				if cl.start.After(srv.start.Add(pairSlack)) {
					break // later clients started after this request arrived
				}
				if used[i] || srv.end.After(cl.end.Add(pairSlack)) {
					continue
				}
				overlap := minTime(cl.end, srv.end).Sub(maxTime(cl.start, srv.start))
				if overlap > bestOverlap {
					best, bestOverlap = i, overlap
				}
			}
			if best < 0 {
				continue
			}
			used[best] = true
			cl := sd.client[best]
			srv.ctx = srv.ctx.WithTraceID(cl.ctx.TraceID())
			srv.parent = cl.ctx.WithRemote(false)
			pairs++
		}
	}
	return pairs
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
