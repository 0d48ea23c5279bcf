// Package ebpf is pxq's socket tracer: BPF programs on the network
// syscalls copy the bytes of every inet socket into a ring buffer; this
// package tracks the connections, puts each direction back in order, infers
// the protocol, and writes the parsed requests into http_events and
// dns_events, connection counters into conn_stats, and its own health into
// stirling_error and probe_status.
//
//	t, err := ebpf.New(ebpf.Config{}, store)
//	...
//	t.Start(ctx)
//	defer t.Close()
package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// SourceName is the source_connector of the tracer's stirling_error and
// probe_status rows.
const SourceName = "socket_tracer"

// Tracer is a running socket tracer.
type Tracer struct {
	cfg   Config
	store *table.Store
	self  types.UInt128Value

	objs   bpf.TraceObjects
	linkMu sync.Mutex // guards links, paused and closed
	links  []link.Link
	paused bool
	closed bool
	probes []probeState
	ring   *ring

	writers map[string]*table.Writer
	tracker *conntrack.Tracker
	groups  map[groupKey]*group
	monoOff int64 // add to a BPF (CLOCK_MONOTONIC) time for ns since the epoch

	mu       sync.Mutex // guards everything the loop changes that Stats reads
	stats    Stats
	counters map[string]int64

	rows      protocols.Rows
	handleFn  func([]byte) // t.handle, made once
	ev        event
	touched   []*conntrack.Conn
	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type probeState struct {
	name string
	err  error
}

// hook is a program and where it attaches: a tracepoint (group/name), or
// with btf the BTF raw tracepoint named in its program (tp_btf/name).
type hook struct {
	prog        *cebpf.Program
	group, name string
	btf         bool
}

// tracepoints lists the tracer's hooks.
func tracepoints(p *bpf.TracePrograms) []hook {
	return []hook{
		{p.SysExit, "raw_syscalls", "sys_exit", true},
		{p.ProcessExit, "sched", "sched_process_exit", false},
	}
}

func (h hook) attach() (link.Link, error) {
	if h.btf {
		return link.AttachTracing(link.TracingOptions{Program: h.prog})
	}
	return link.Tracepoint(h.group, h.name, h.prog, nil)
}

// New loads the BPF programs, attaches them and creates the tracer's
// tables in store. Events are buffered in the ring from then on; Start
// reads them. It needs root (or CAP_BPF, CAP_PERFMON and a mounted
// tracefs) and says which is missing.
func New(cfg Config, store *table.Store) (*Tracer, error) {
	cfg = cfg.withDefaults()
	if len(cfg.SkipPIDs) > 1024 || len(cfg.OnlyPIDs) > 1024 {
		return nil, errors.New("ebpf: at most 1024 SkipPIDs and 1024 OnlyPIDs")
	}
	t := &Tracer{
		cfg:      cfg,
		store:    store,
		writers:  map[string]*table.Writer{},
		tracker:  conntrack.New(cfg.MaxConns),
		groups:   map[groupKey]*group{},
		counters: map[string]int64{},
		done:     make(chan struct{}),
	}
	t.rows.Emit = t.emitValues
	t.self = types.UPID(cfg.ASID, uint32(os.Getpid()), selfStartNS())
	tables := []schema.Table{schema.ConnStats, schema.ProbeStatus, schema.StirlingError}
	for _, p := range cfg.Protocols {
		tables = append(tables, p.Tables()...)
	}
	for _, tb := range tables {
		tt, err := store.Create(tb.Name, tb.Relation, table.Options{Desc: tb.Desc})
		if err != nil {
			return nil, fmt.Errorf("ebpf: create table %s: %w", tb.Name, err)
		}
		t.writers[tb.Name] = table.NewWriter(tt)
	}

	if err := ensureTracefs(); err != nil {
		return nil, fmt.Errorf("ebpf: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("ebpf: raise memlock rlimit (needs root or CAP_SYS_RESOURCE): %w", err)
	}
	spec, err := bpf.LoadTrace()
	if err != nil {
		return nil, fmt.Errorf("ebpf: load BPF spec: %w", err)
	}
	spec.Maps[bpf.TraceMapEvents].MaxEntries = cfg.RingBufferBytes
	ncpu, err := cebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("ebpf: count CPUs: %w", err)
	}
	spec.Maps[bpf.TraceMapScratchBuf].MaxEntries = uint32(ncpu)
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *cebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("ebpf: BPF verifier rejected the programs: %+v", ve)
		}
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("ebpf: loading BPF programs needs root or CAP_BPF+CAP_PERFMON: %w", err)
		}
		return nil, fmt.Errorf("ebpf: load BPF programs: %w", err)
	}
	if err := t.configure(); err != nil {
		t.objs.Close()
		return nil, err
	}
	if err := t.attach(); err != nil {
		t.closeBPF()
		return nil, err
	}
	t.handleFn = t.handle
	t.ring, err = newRing(t.objs.Events)
	if err != nil {
		t.closeBPF()
		return nil, fmt.Errorf("ebpf: open ring buffer: %w", err)
	}
	t.resyncClock()
	return t, nil
}

// configure writes the pid filters into the BPF maps.
func (t *Tracer) configure() error {
	c := bpf.TraceConfig{}
	if !t.cfg.TraceSelf {
		c.SelfTgid = uint32(os.Getpid())
	}
	if len(t.cfg.OnlyPIDs) > 0 {
		c.OnlyPids = 1
	}
	if len(t.cfg.SkipPIDs) > 0 {
		c.SkipPids = 1
	}
	if err := t.objs.ConfigMap.Put(uint32(0), c); err != nil {
		return fmt.Errorf("ebpf: write config map: %w", err)
	}
	one := uint8(1)
	for _, pid := range t.cfg.SkipPIDs {
		if err := t.objs.SkipPids.Put(pid, one); err != nil {
			return fmt.Errorf("ebpf: skip pid %d: %w", pid, err)
		}
	}
	for _, pid := range t.cfg.OnlyPIDs {
		if err := t.objs.AllowPids.Put(pid, one); err != nil {
			return fmt.Errorf("ebpf: allow pid %d: %w", pid, err)
		}
	}
	return nil
}

// resyncClock measures the offset between CLOCK_MONOTONIC (BPF's clock)
// and the wall clock.
func (t *Tracer) resyncClock() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	t.monoOff = time.Now().UnixNano() - ts.Nano()
}

// Start begins reading events in a goroutine until ctx is done or Close is
// called. Only the first call has an effect.
func (t *Tracer) Start(ctx context.Context) {
	t.startOnce.Do(func() {
		ctx, t.cancel = context.WithCancel(ctx)
		go t.run(ctx)
	})
}

// Close stops the tracer, writes what it holds to the store and detaches
// the programs.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		if t.cancel != nil {
			t.cancel()
			<-t.done
		}
		t.closeBPF()
	})
	return nil
}

// attach attaches every hook and records each one's state for
// probe_status. It fails only if none attached.
func (t *Tracer) attach() error {
	hooks := tracepoints(&t.objs.TracePrograms)
	probes := make([]probeState, 0, len(hooks))
	for _, tp := range hooks {
		l, err := tp.attach()
		probes = append(probes, probeState{name: tp.group + ":" + tp.name, err: err})
		if err == nil {
			t.links = append(t.links, l)
		}
	}
	t.mu.Lock()
	t.probes = probes
	t.mu.Unlock()
	if len(t.links) == 0 {
		return fmt.Errorf("ebpf: no tracepoint attached: %w", probes[0].err)
	}
	return nil
}

func (t *Tracer) detach() {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
}

// Pause detaches the programs, so that traced processes pay nothing for
// tracing until Resume, and forgets the open connections: the bytes they
// carry while paused are not seen, so their streams cannot be continued.
// Those still open on Resume are picked up as connections that predate the
// tracer are: the role is inferred from the first message. What the ring
// holds is read first. Pausing a paused or closed tracer does nothing.
func (t *Tracer) Pause() {
	t.linkMu.Lock()
	defer t.linkMu.Unlock()
	if t.paused || t.closed {
		return
	}
	t.detach()
	t.paused = true
	t.drain()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now().UnixNano()
	var open []*conntrack.Conn
	t.tracker.All(func(c *conntrack.Conn) { open = append(open, c) })
	for _, c := range open {
		t.closeConn(c, uint64(now))
	}
	var keys []uint64
	var prev any // nil: the first key
	for {
		var k uint64
		if err := t.objs.Conns.NextKey(prev, &k); err != nil {
			break
		}
		keys = append(keys, k)
		prev = k
	}
	for _, k := range keys {
		if err := t.objs.Conns.Delete(k); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			t.counters["bpf_conn_delete_errors"]++
		}
	}
}

// Resume attaches the programs again after Pause. It does nothing on a
// tracer that is not paused, and fails on a closed one.
func (t *Tracer) Resume() error {
	t.linkMu.Lock()
	defer t.linkMu.Unlock()
	if t.closed {
		return errors.New("ebpf: Resume of a closed tracer")
	}
	if !t.paused {
		return nil
	}
	if err := t.attach(); err != nil {
		return err
	}
	t.paused = false
	return nil
}

func (t *Tracer) closeBPF() {
	t.linkMu.Lock()
	t.detach()
	t.closed = true
	t.linkMu.Unlock()
	t.ring.close()
	t.objs.Close()
}

func (t *Tracer) run(ctx context.Context) {
	defer close(t.done)
	poll := time.NewTimer(t.cfg.PollInterval)
	defer poll.Stop()
	t.report(time.Now().UnixNano())
	var lastFlush, lastConnStats, lastStats, lastHousekeep time.Time
	lastConnStats, lastStats, lastHousekeep = time.Now(), time.Now(), time.Now()
	lastDrain := time.Now()
	for {
		select {
		case <-ctx.Done():
			t.drain()
			now := time.Now().UnixNano()
			t.mu.Lock()
			t.connStats(now)
			t.mu.Unlock()
			t.report(now)
			t.flush()
			return
		case <-poll.C:
		}
		n := t.drain()
		now := time.Now()
		if now.Sub(lastFlush) >= t.cfg.FlushInterval {
			lastFlush = now
			t.flush()
		}
		if now.Sub(lastHousekeep) >= time.Second {
			lastHousekeep = now
			t.housekeep(now.UnixNano())
		}
		if now.Sub(lastConnStats) >= t.cfg.ConnStatsPeriod {
			lastConnStats = now
			t.mu.Lock()
			t.connStats(now.UnixNano())
			t.mu.Unlock()
		}
		if now.Sub(lastStats) >= t.cfg.StatsPeriod {
			lastStats = now
			t.resyncClock()
			t.report(now.UnixNano())
		}
		poll.Reset(t.nextPoll(n, now.Sub(lastDrain), lastFlush.Add(t.cfg.FlushInterval).Sub(now)))
		lastDrain = now
	}
}

// nextPoll returns the wait before the next drain, given the bytes the
// last drain read over the time since the one before. Every wakeup costs
// the process a few syscalls and context switches whether or not there is
// anything to read (about 150 µs of CPU per wakeup on the 2-core guest of
// docs/performance.md), so the tracer polls every PollInterval only while
// the ring fills fast: it waits as long as the observed rate takes to fill
// 1/16 of the ring, at most 10 PollIntervals and not past the next flush.
func (t *Tracer) nextPoll(n int, since, untilFlush time.Duration) time.Duration {
	lo := t.cfg.PollInterval
	hi := 10 * lo
	d := hi
	if n > 0 && since > 0 {
		// since × (ring/16) / n, in float to avoid overflow.
		d = time.Duration(float64(since) * float64(t.cfg.RingBufferBytes) / 16 / float64(n))
	}
	d = min(d, hi, untilFlush)
	return max(d, lo)
}

// maxBatch bounds the records read in one drain so that flushing is not
// starved under a flood.
const maxBatch = 1 << 16

// drain reads what the ring buffer holds, without blocking, and returns
// the bytes it read.
func (t *Tracer) drain() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	if t.ring.available() > 0 {
		var err error
		if _, n, err = t.ring.read(maxBatch, t.handleFn); err != nil {
			t.counters["ringbuf_read_errors"]++
		}
	}
	// Every piece submitted before this batch has been read: holes that
	// remain are lost bytes.
	for _, c := range t.touched {
		for d := range c.Streams {
			c.Streams[d].Settle(c.Sinks[d])
		}
	}
	t.touched = t.touched[:0]
	return n
}

func (t *Tracer) flush() {
	for name, w := range t.writers {
		if err := w.Flush(); err != nil {
			t.mu.Lock()
			t.counters["flush_errors."+name]++
			t.mu.Unlock()
		}
	}
}

func (t *Tracer) handle(raw []byte) {
	ev := &t.ev
	if !decodeEvent(raw, ev) {
		t.stats.BadEvents++
		return
	}
	t.stats.Events++
	switch ev.typ {
	case evOpen:
		t.conn(ev)
	case evData:
		t.data(ev)
	case evClose:
		c := t.tracker.Get(conntrack.Key{TGID: ev.tgid, FD: ev.fd})
		if c == nil || c.ID != ev.connID {
			return
		}
		c.Sent, c.Recv = max(c.Sent, ev.wr), max(c.Recv, ev.rd)
		t.closeConn(c, ev.ts+uint64(t.monoOff))
	case evExit:
		t.processExit(ev.tgid, int64(ev.ts)+t.monoOff)
	default:
		t.stats.BadEvents++
	}
}

// conn returns the connection of ev, creating it (and closing a previous
// connection on the same fd) as needed.
func (t *Tracer) conn(ev *event) *conntrack.Conn {
	k := conntrack.Key{TGID: ev.tgid, FD: ev.fd}
	c := t.tracker.Get(k)
	if c != nil && c.ID == ev.connID {
		return c
	}
	now := int64(ev.ts) + t.monoOff
	if c != nil {
		t.closeConn(c, uint64(now))
	}
	c = &conntrack.Conn{
		Key:    k,
		ID:     ev.connID,
		Family: ev.family,
		Info: protocols.Conn{
			UPID:   types.UPID(t.cfg.ASID, ev.tgid, roundTicks(ev.startNS)),
			Local:  ev.local,
			Remote: ev.remote,
			Role:   protocols.Role(ev.role),
			Stream: ev.sockType == unix.SOCK_STREAM,
		},
		LastActive: now,
	}
	if ev.peerSet {
		// A data event of an unconnected socket carries the datagram's
		// peer, not the socket's: the socket has none.
		c.Info.Remote = netip.AddrPort{}
	}
	c.Sinks[protocols.Egress] = &dirSink{t: t, c: c, dir: protocols.Egress}
	c.Sinks[protocols.Ingress] = &dirSink{t: t, c: c, dir: protocols.Ingress}
	if old := t.tracker.Add(c); old != nil {
		t.closeConnNoRemove(old, uint64(now))
		t.stats.ConnsEvicted++
	}
	t.stats.ConnsOpened++
	if t.cfg.OnConn != nil {
		t.cfg.OnConn(c.Info.UPID)
	}
	return c
}

func (t *Tracer) data(ev *event) {
	c := t.conn(ev)
	ts := int64(ev.ts) + t.monoOff
	c.LastActive = ts
	end := ev.pos + uint64(ev.span)
	t.stats.DataBytes += uint64(len(ev.data))
	dir := protocols.Direction(ev.dir & 1)
	if dir == protocols.Egress {
		c.Sent = max(c.Sent, end)
	} else {
		c.Recv = max(c.Recv, end)
	}
	if c.Unknown {
		return
	}
	remote := netip.AddrPort{}
	if ev.peerSet {
		remote = ev.remote
	}
	// A piece of the other direction held since before this one means
	// bytes there were lost, not late: settle it first, so that a request
	// is parsed before the response that follows it.
	if o := &c.Streams[1-dir]; o.Pending() {
		if oldest, _ := o.OldestTS(); oldest <= ts {
			o.Settle(c.Sinks[1-dir])
		}
	}
	s := &c.Streams[dir]
	s.Add(ev.pos, uint64(ev.span), ts, ev.data, remote, c.Sinks[dir])
	if s.Pending() {
		t.touched = append(t.touched, c)
	}
}

// maxProbeBytes bounds the bytes kept per direction for protocol
// inference across segments.
const maxProbeBytes = 512

// dirSink feeds one direction of a connection's ordered stream to its
// parser, inferring the protocol on the first bytes.
type dirSink struct {
	t   *Tracer
	c   *conntrack.Conn
	dir protocols.Direction
}

func (s *dirSink) Data(ts int64, data []byte, remote netip.AddrPort) {
	c := s.c
	if c.Unknown {
		return
	}
	if c.Parser == nil {
		probe := data
		if c.Info.Stream && len(c.Probe[s.dir]) > 0 {
			probe = append(c.Probe[s.dir], data...)
		}
		if !s.t.infer(c, s.dir, probe) {
			// Keep a stream's first bytes for the next try, up to a bound;
			// past it, segments are tried alone again.
			if c.Info.Stream && !c.Unknown && len(probe) <= maxProbeBytes {
				c.Probe[s.dir] = append(c.Probe[s.dir][:0:0], probe...)
			} else {
				c.Probe[s.dir] = nil
			}
			return
		}
		data = probe
		c.Probe = [2][]byte{}
	}
	c.Parser.Data(protocols.Segment{Dir: s.dir, TS: ts, Data: data, Remote: remote})
}

func (s *dirSink) Gap(n int) {
	s.t.stats.GapBytes += uint64(n)
	if s.c.Parser != nil {
		s.c.Parser.Gap(s.dir, n)
	}
}

func (t *Tracer) infer(c *conntrack.Conn, dir protocols.Direction, data []byte) bool {
	for _, p := range t.cfg.Protocols {
		match, request := p.Infer(data, c.Info.Stream)
		if !match {
			continue
		}
		if c.Info.Role == protocols.RoleUnknown {
			// Whoever sends the request is the client.
			if request == (dir == protocols.Egress) {
				c.Info.Role = protocols.RoleClient
			} else {
				c.Info.Role = protocols.RoleServer
			}
		}
		c.Protocol = p
		name := p.Name()
		c.Parser = p.NewParser(protocols.Env{
			Conn: &c.Info,
			Cfg: protocols.Config{
				MaxBodyBytes:   t.cfg.MaxBodyBytes,
				MaxHeaderBytes: t.cfg.MaxHeaderBytes,
				MaxPending:     t.cfg.MaxPendingRequests,
				RequestTimeout: t.cfg.RequestTimeout,
			},
			Emit:  t.emit,
			Rows:  &t.rows,
			Count: func(counter string, n int64) { t.counters[name+"."+counter] += n },
		})
		return true
	}
	c.Tries++
	if c.Tries >= t.cfg.InferSegments {
		c.Unknown = true
		t.stats.UnknownProtocolConns++
	}
	return false
}

func (t *Tracer) emit(tableName string, vals ...any) {
	w := t.writers[tableName]
	if w == nil {
		t.counters["rows_unknown_table"]++
		return
	}
	if err := w.AppendRow(vals...); err != nil {
		t.counters["row_errors."+tableName]++
		return
	}
	t.stats.Rows++
}

func (t *Tracer) emitValues(tableName string, vals []table.Value) {
	w := t.writers[tableName]
	if w == nil {
		t.counters["rows_unknown_table"]++
		return
	}
	if err := w.AppendValues(vals); err != nil {
		t.counters["row_errors."+tableName]++
		return
	}
	t.stats.Rows++
}

func (t *Tracer) closeConn(c *conntrack.Conn, now uint64) {
	t.tracker.Remove(c)
	t.closeConnNoRemove(c, now)
}

func (t *Tracer) closeConnNoRemove(c *conntrack.Conn, now uint64) {
	for d := range c.Streams {
		c.Streams[d].Settle(c.Sinks[d])
	}
	if c.Parser != nil {
		c.Parser.Close(int64(now))
	}
	t.connClosed(c)
	t.stats.ConnsClosed++
}

// processExit drops the state of a process that exited: the kernel closed
// its sockets without close syscalls.
func (t *Tracer) processExit(tgid uint32, now int64) {
	for _, c := range t.tracker.Process(tgid) {
		if c.Parser != nil && c.Parser.Pending() > 0 {
			t.counters["process_exit_pending_requests"] += int64(c.Parser.Pending())
		}
		t.closeConn(c, uint64(now))
		key := uint64(c.TGID)<<32 | uint64(uint32(c.FD))
		if err := t.objs.Conns.Delete(key); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			t.counters["bpf_conn_delete_errors"]++
		}
	}
}

// housekeep evicts idle connections and drops stale requests.
func (t *Tracer) housekeep(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.tracker.Idle(now - t.cfg.IdleTimeout.Nanoseconds()) {
		t.closeConn(c, uint64(now))
		t.stats.ConnsEvicted++
	}
	t.tracker.All(func(c *conntrack.Conn) {
		if c.Parser != nil {
			c.Parser.Poll(now)
		}
	})
}

// roundTicks rounds a start time down to clock ticks (USER_HZ = 100), as
// /proc/PID/stat reports it, so that UPIDs from BPF and from /proc agree.
func roundTicks(ns uint64) uint64 { return ns / 10_000_000 * 10_000_000 }

// selfStartNS returns this process's start time for its own UPID.
func selfStartNS() uint64 {
	ns, _ := proc.StartNS(os.Getpid())
	return ns
}
