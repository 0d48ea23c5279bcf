package ebpf

import (
	"encoding/json"
	"maps"
	"time"
)

// Stats are the tracer's counters since New. Every fault the tracer
// survives is counted here; the same numbers go to stirling_error as JSON.
type Stats struct {
	// Kernel side (summed over CPUs).
	BPFEvents            uint64 `json:"bpf_events"`             // events written to the ring buffer
	LostEvents           uint64 `json:"lost_events"`            // events dropped: ring buffer full
	LostEventBytes       uint64 `json:"lost_event_bytes"`       // stream bytes in those events
	TruncatedBytes       uint64 `json:"truncated_bytes"`        // bytes not copied (over 64 KiB a call, or 8 iovecs)
	SkippedBodyBytes     uint64 `json:"skipped_body_bytes"`     // HTTP body bytes past MaxBodyBytes, counted, not copied
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
	ts := t.tracker.Stats
	s := Stats{
		Events:               t.reader.events,
		BadEvents:            t.reader.bad,
		DataBytes:            ts.DataBytes,
		GapBytes:             ts.GapBytes,
		ConnsOpened:          ts.ConnsOpened,
		ConnsClosed:          ts.ConnsClosed,
		ConnsEvicted:         ts.ConnsEvicted,
		ConnsActive:          uint64(t.tracker.Len()),
		UnknownProtocolConns: t.detect.Unknown,
		Counters:             maps.Clone(t.counters),
	}
	if n := t.reader.readErrors; n > 0 {
		s.Counters["ringbuf_read_errors"] = int64(n)
	}
	if sv := t.detect.Servers; sv != nil && sv.Dropped > 0 {
		s.Counters["client_side_of_traced_server_conns"] = int64(sv.Dropped)
	}
	if ts.ExitPending > 0 {
		s.Counters["process_exit_pending_requests"] = int64(ts.ExitPending)
	}
	if tm := t.timing; tm.drain > 0 {
		s.Counters["reader.max_late_ms"] = tm.late.Milliseconds()
		s.Counters["reader.max_drain_ms"] = tm.drain.Milliseconds()
		s.Counters["reader.max_flush_ms"] = tm.flush.Milliseconds()
		s.Counters["reader.late_drains"] = tm.lateCount
	}
	if ts.TLSConns > 0 {
		s.Counters["tls.conns"] = int64(ts.TLSConns)
	}
	t.mu.Unlock()
	if t.tls != nil {
		t.tlsCounters(s.Counters)
	}
	for _, tw := range t.writers {
		rows, refused := tw.w.Counts()
		if refused > 0 {
			s.Counters["row_errors."+tw.decl.Name()] = int64(refused)
		}
		if tw.protocol {
			s.Rows += rows
		}
	}
	var per []uint64
	for i := uint32(0); i < 11; i++ {
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
		case 6, 7, 8:
			if sum > 0 {
				s.Counters[[...]string{"tls.calls_without_socket", "tls.calls_not_inet", "tls.exec_events_lost"}[i-6]] = int64(sum)
			}
		case 9:
			s.SkippedBodyBytes = sum
		case 10:
			if sum > 0 {
				s.Counters["tls.calls_by_last_read"] = int64(sum)
			}
		}
	}
	return s
}

// tlsCounters adds the TLS prober's counters to c.
func (t *Tracer) tlsCounters(c map[string]int64) {
	ps := t.tls.Stats()
	for name, v := range map[string]uint64{
		"tls.processes_examined": ps.Processes,
		"tls.processes_gone":     ps.ProcessesGone,
		"tls.files_examined":     ps.FilesExamined,
		"tls.files_probed":       ps.FilesProbed,
		"tls.files_failed":       ps.FilesFailed,
		"tls.files_over_max":     ps.FilesOverMax,
		"tls.elf_errors":         ps.ELFErrors,
	} {
		if v > 0 {
			c[name] = int64(v)
		}
	}
	if w := t.tlsWatch; w != nil {
		c["tls.exec_events"] = int64(w.Events.Load())
		if n := w.Retries.Load(); n > 0 {
			c["tls.exec_events_retried"] = int64(n)
		}
		if d := w.MaxLatency.Load(); d > 0 {
			c["tls.probe_latency_us_last"] = w.LastLatency.Load() / 1000
			c["tls.probe_latency_us_max"] = d / 1000
		}
	}
	c["tls.startup_scan_ms"] = time.Duration(t.tlsScanNS.Load()).Milliseconds()
	t.goTLSCounters(c)
}

// report writes the counters to stirling_error and each probe's state to
// probe_status.
func (t *Tracer) report(now int64) {
	st := t.Stats()
	ctx, _ := json.Marshal(st)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.health.Status(now, nil, string(ctx))
	for _, p := range t.probes {
		t.health.Probe(now, p.name, p.err, `{"kind":"tracepoint"}`)
	}
	if t.tls != nil {
		for _, f := range t.tls.Files() {
			t.health.Probe(now, f.Name, f.Err, f.Info)
		}
	}
}
