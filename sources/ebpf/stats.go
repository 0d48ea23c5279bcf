package ebpf

import (
	"encoding/json"
	"maps"
	"time"

	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/types"
)

// Stats are the tracer's counters since New. Every fault the tracer
// survives is counted here; the same numbers go to stirling_error as JSON.
type Stats struct {
	// Kernel side (summed over CPUs).
	BPFEvents            uint64 `json:"bpf_events"`             // events written to the ring buffer
	LostEvents           uint64 `json:"lost_events"`            // events dropped: ring buffer full
	LostEventBytes       uint64 `json:"lost_event_bytes"`       // stream bytes in those events
	TruncatedBytes       uint64 `json:"truncated_bytes"`        // bytes not copied (over 64 KiB a call, or 8 iovecs)
	ConnMapFailures      uint64 `json:"conn_map_failures"`      // connections the BPF map could not hold
	UserReadFailures     uint64 `json:"user_read_failures"`     // bpf_probe_read_user failures
	Events               uint64 `json:"events"`                 // records read
	BadEvents            uint64 `json:"bad_events"`             // records that did not decode
	DataBytes            uint64 `json:"data_bytes"`             // payload bytes read
	GapBytes             uint64 `json:"gap_bytes"`              // stream bytes missing (lost + truncated)
	ConnsOpened          uint64 `json:"conns_opened"`           // connections seen
	ConnsClosed          uint64 `json:"conns_closed"`           // connections ended (close, exit, eviction)
	ConnsEvicted         uint64 `json:"conns_evicted"`          // ended for idleness or a full table
	ConnsActive          uint64 `json:"conns_active"`           // tracked now
	UnknownProtocolConns uint64 `json:"unknown_protocol_conns"` // no parser recognised them
	Rows                 uint64 `json:"rows"`                   // rows written to protocol tables

	// Counters holds the named counters of the parsers ("http.parse_errors",
	// "http.closed_before_response", "dns.unmatched_responses", …) and of
	// rarer faults.
	Counters map[string]int64 `json:"counters"`
}

// Stats returns the tracer's counters.
func (t *Tracer) Stats() Stats {
	t.mu.Lock()
	s := t.stats
	s.ConnsActive = uint64(t.tracker.Len())
	s.Counters = maps.Clone(t.counters)
	t.mu.Unlock()
	var per []uint64
	for i := uint32(0); i < 6; i++ {
		if err := t.objs.Counters.Lookup(i, &per); err != nil {
			continue
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		switch i {
		case 0:
			s.BPFEvents = sum
		case 1:
			s.LostEvents = sum
		case 2:
			s.LostEventBytes = sum
		case 3:
			s.TruncatedBytes = sum
		case 4:
			s.ConnMapFailures = sum
		case 5:
			s.UserReadFailures = sum
		}
	}
	return s
}

// report writes the counters to stirling_error and each probe's state to
// probe_status.
func (t *Tracer) report(now int64) {
	st := t.Stats()
	ctx, _ := json.Marshal(st)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emit(schema.StirlingError.Name, now, t.self, SourceName, int64(0), "", string(ctx))
	for _, p := range t.probes {
		status, msg := int64(0), ""
		if p.err != nil {
			status, msg = 1, p.err.Error()
		}
		t.emit(schema.ProbeStatus.Name, now, t.self, SourceName, p.name, status, msg, `{"kind":"tracepoint"}`)
	}
	t.stats.Rows -= uint64(1 + len(t.probes)) // Rows counts protocol rows only
}

// groupKey is what conn_stats aggregates connections by.
type groupKey struct {
	upid   types.UInt128Value
	raddr  string
	rport  int64
	role   int64
	family int64
	proto  int64
	ssl    bool
}

type group struct {
	open, close, sent, recv int64
	changed                 bool
	quiet                   int // reports with no change and no active connection
}

// connReport adds c's bytes since its last report to its group. The group
// is fixed at the first report, by when the protocol is usually known.
func (t *Tracer) connReport(c *conntrack.Conn) *group {
	k, ok := c.Group.(groupKey)
	if !ok {
		var proto int64
		if c.Protocol != nil {
			proto = c.Protocol.ID()
		}
		k = groupKey{
			upid:   c.Info.UPID,
			raddr:  protocols.AddrString(c.Info.Remote),
			rport:  int64(c.Info.Remote.Port()),
			role:   int64(c.Info.Role),
			family: int64(c.Family),
			proto:  proto,
			ssl:    c.Info.Encrypted,
		}
		c.Group = k
	}
	g := t.groups[k]
	if g == nil {
		g = &group{}
		t.groups[k] = g
	}
	if !c.Opened {
		c.Opened = true
		g.open++
		g.changed = true
	}
	if d := c.Sent - c.ReportedSent; d > 0 {
		g.sent += int64(d)
		c.ReportedSent = c.Sent
		g.changed = true
	}
	if d := c.Recv - c.ReportedRecv; d > 0 {
		g.recv += int64(d)
		c.ReportedRecv = c.Recv
		g.changed = true
	}
	return g
}

func (t *Tracer) connClosed(c *conntrack.Conn) {
	g := t.connReport(c)
	g.close++
	g.changed = true
}

// connStats writes one conn_stats row per group (cumulative counters), and
// forgets groups that have had no open connection and no change for a
// while.
func (t *Tracer) connStats(now int64) {
	t.tracker.All(func(c *conntrack.Conn) { t.connReport(c) })
	for k, g := range t.groups {
		active := g.open - g.close
		t.emit(schema.ConnStats.Name, now, k.upid, k.raddr, k.rport, k.role, k.family, k.proto, k.ssl,
			g.open, g.close, active, g.sent, g.recv)
		t.stats.Rows--
		if g.changed || active > 0 {
			g.quiet = 0
		} else if g.quiet++; g.quiet >= 3 {
			delete(t.groups, k)
		}
		g.changed = false
	}
}

// ProgramStats is the in-kernel cost of the tracer's BPF programs: their
// summed run time and runs since they were loaded. The kernel counts them
// only while statistics are enabled (cilium/ebpf's EnableStats with
// BPF_STATS_RUN_TIME, or sysctl kernel.bpf_stats_enabled=1); it excludes
// the tracepoint machinery that calls the programs.
func (t *Tracer) ProgramStats() (runtime time.Duration, runs uint64) {
	for _, h := range tracepoints(&t.objs.TracePrograms) {
		if h.prog == nil {
			continue
		}
		s, err := h.prog.Stats()
		if err != nil {
			continue
		}
		runtime += s.Runtime
		runs += s.RunCount
	}
	return runtime, runs
}
