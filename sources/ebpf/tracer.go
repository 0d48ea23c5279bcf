// Package ebpf is pxq's socket tracer: BPF programs on the network
// syscalls copy the bytes of every inet socket into a ring buffer, and a
// pipeline of small stages, each knowing only the next, turns them into
// rows:
//
//	ring reader (reader.go)         records → events
//	connection tracker (conntrack)  events → connections, bytes per direction
//	stream reassembly (stream)      pieces → in-order bytes
//	protocol inference (infer)      first bytes → the protocol's parser
//	parser/stitcher (protocols/*)   bytes → requests and responses → rows
//	table writer (table.Writer)     rows → the store
//
// The tracker also tells the conn_stats stage (connstats) of connections
// that end; the tracer writes its own health into stirling_error and
// probe_status (health). This file holds the tracer's lifecycle and its
// loop; bpf.go loads and attaches the programs.
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
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf/link"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
	"github.com/pxq-dev/pxq/sources/ebpf/connstats"
	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/health"
	"github.com/pxq-dev/pxq/sources/ebpf/infer"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/tls"
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

	objs   bpf.TraceObjects
	linkMu sync.Mutex // guards links, paused and closed
	links  []link.Link
	paused bool
	closed bool
	probes []probeState

	// The TLS uprobes and the exec watching that finds their files; nil
	// with DisableTLS.
	tls         *tls.Prober
	tlsWatch    *tls.Watcher
	tlsScanNS   atomic.Int64  // examining the running processes at New, once done
	tlsScanDone chan struct{} // closed when that scan ends
	goTLS       *goTLSObjects // the Go crypto/tls probes' programs; nil if not loaded
	// uprobeMulti says that the kernel has uprobe_multi links.
	uprobeMulti bool

	// The pipeline, in order; the parsers are made per connection by
	// the detector.
	reader  *reader
	tracker *conntrack.Tracker
	detect  *infer.Detector
	conns   *connstats.Counter
	health  *health.Reporter

	writers []*tableWriter

	mu       sync.Mutex // guards the pipeline and everything Stats reads
	counters map[string]int64
	timing   readerTiming

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// tableWriter is a table's writer and declaration.
type tableWriter struct {
	decl     *table.Decl
	w        *table.Writer
	protocol bool // a protocol's table, whose rows Stats counts
}

type probeState struct {
	name string
	err  error
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
		counters: map[string]int64{},
		done:     make(chan struct{}),
	}
	if err := t.pipeline(); err != nil {
		return nil, err
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	ring, err := newRing(t.objs.Events)
	if err != nil {
		t.closeBPF()
		return nil, fmt.Errorf("ebpf: open ring buffer: %w", err)
	}
	t.reader = newReader(ring, t.tracker, t.deleteConns)
	return t, nil
}

// pipeline creates the tables and the stages after the ring reader.
func (t *Tracer) pipeline() error {
	writer := func(d *table.Decl, protocol bool) (*table.Writer, error) {
		w, err := d.Create(t.store)
		if err != nil {
			return nil, fmt.Errorf("ebpf: create table %s: %w", d.Name(), err)
		}
		t.writers = append(t.writers, &tableWriter{d, w, protocol})
		return w, nil
	}
	cs, err := writer(connstats.Table, false)
	if err != nil {
		return err
	}
	se, err := writer(health.StirlingError, false)
	if err != nil {
		return err
	}
	ps, err := writer(health.ProbeStatus, false)
	if err != nil {
		return err
	}
	rows := map[*table.Decl]*table.Row{}
	for _, p := range t.cfg.Protocols {
		for _, d := range p.Tables() {
			if rows[d] != nil {
				continue // two protocols that fill one table
			}
			w, err := writer(d, true)
			if err != nil {
				return err
			}
			rows[d] = w.Row()
		}
	}
	env := protocols.Env{
		Cfg: protocols.Config{
			MaxBodyBytes:   t.cfg.MaxBodyBytes,
			MaxHeaderBytes: t.cfg.MaxHeaderBytes,
			MaxPending:     t.cfg.MaxPendingRequests,
			RequestTimeout: t.cfg.RequestTimeout,
		},
		Row: func(d *table.Decl) *table.Row {
			r := rows[d]
			if r == nil {
				// A protocol's parser asked for a table it did not
				// declare in Tables: a bug its own tests catch.
				panic(fmt.Sprintf("ebpf: table %s is not in any protocol's Tables", d.Name()))
			}
			return r
		},
	}
	t.detect = infer.New(t.cfg.Protocols, t.cfg.InferSegments, env, func(proto, name string, n int64) {
		t.counters[proto+"."+name] += n
	})
	if !t.cfg.AllClientSides {
		t.detect.Servers = infer.NewServers(t.cfg.RemoteTraced)
	}
	t.conns = connstats.New(cs)
	t.tracker = conntrack.New(conntrack.Config{
		ASID:     t.cfg.ASID,
		MaxConns: t.cfg.MaxConns,
		Next:     t.detect.Conn,
		Observer: t.conns,
		OnConn:   t.cfg.OnConn,
	})
	self := types.UPID(t.cfg.ASID, uint32(os.Getpid()), selfStartNS())
	t.health = health.NewReporter(SourceName, self, se, ps)
	return nil
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
	if t.tls != nil {
		t.tls.Detach()
	}
	t.paused = true
	t.drain()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tracker.EndAll(time.Now().UnixNano())
	t.forgetConns()
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
	if t.tls != nil {
		t.tls.Attach()
	}
	t.paused = false
	return nil
}

func (t *Tracer) run(ctx context.Context) {
	defer close(t.done)
	defer t.boostReader()()
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	t.report(time.Now().UnixNano())
	var lastFlush, lastConnStats, lastStats, lastHousekeep time.Time
	lastConnStats, lastStats, lastHousekeep = time.Now(), time.Now(), time.Now()
	lastDrain, wait := time.Now(), t.cfg.PollInterval
	for {
		poll.Reset(wait)
		select {
		case <-ctx.Done():
			t.drain()
			now := time.Now().UnixNano()
			t.connStats(now)
			t.report(now)
			t.flush()
			return
		case <-poll.C:
		}
		woke := time.Now()
		n := t.drain()
		now := time.Now()
		t.stall(woke.Sub(lastDrain)-wait, now.Sub(woke))
		if now.Sub(lastFlush) >= t.cfg.FlushInterval {
			lastFlush = now
			t.flush()
			t.mu.Lock()
			t.timing.flush = max(t.timing.flush, time.Since(now))
			t.mu.Unlock()
		}
		if now.Sub(lastHousekeep) >= time.Second {
			lastHousekeep = now
			t.housekeep(now.UnixNano())
		}
		if now.Sub(lastConnStats) >= t.cfg.ConnStatsPeriod {
			lastConnStats = now
			t.connStats(now.UnixNano())
		}
		if now.Sub(lastStats) >= t.cfg.StatsPeriod {
			lastStats = now
			t.mu.Lock()
			t.reader.resyncClock()
			t.mu.Unlock()
			t.report(now.UnixNano())
		}
		wait = t.nextPoll(n, now.Sub(lastDrain), lastFlush.Add(t.cfg.FlushInterval).Sub(now))
		lastDrain = time.Now()
	}
}

// boostReader gives the reader's goroutine a thread of its own and that
// thread a higher priority (Config.ReaderNice). On a busy machine the
// scheduler gives every runnable thread its share; the reader's, at the
// default priority, may be less than the ring fills at, and the ring
// overflows while the reader waits to run (see docs/sources.md).
//
// The returned func, called when the reader ends, gives the thread back
// at its old priority instead of letting it end with the goroutine: a
// thread that ends sends the parent-death signal (Pdeathsig) to every
// child process that was forked on it, whichever goroutine forked it, so
// closing a tracer killed other code's children (a test's database
// server, started with Pdeathsig, died when a tracer of an earlier
// subtest closed). Only if the priority cannot be restored is the thread
// left to end.
func (t *Tracer) boostReader() (restore func()) {
	if t.cfg.ReaderNice > 19 {
		return func() {}
	}
	runtime.LockOSThread()
	tid := unix.Gettid()
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid) // 20 - nice, as the system call returns it
	if err == nil {
		err = unix.Setpriority(unix.PRIO_PROCESS, tid, t.cfg.ReaderNice)
	}
	if err != nil {
		t.mu.Lock()
		t.counters["reader.nice_errors"]++
		t.mu.Unlock()
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		if unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prio) == nil {
			runtime.UnlockOSThread()
		}
	}
}

// readerTiming is the worst the reader has seen: how late a drain began
// after its planned wakeup, how long one took, how long a flush to the
// store took, and how many drains began more than lateLimit late. The
// ring fills meanwhile; see "Reader stalls" in docs/performance.md.
type readerTiming struct {
	late, drain, flush time.Duration
	lateCount          int64
}

const lateLimit = 50 * time.Millisecond

// stall records a drain that began late after its planned wakeup and
// took took.
func (t *Tracer) stall(late, took time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timing.late = max(t.timing.late, late)
	t.timing.drain = max(t.timing.drain, took)
	if late > lateLimit {
		t.timing.lateCount++
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

// drain runs what the ring buffer holds through the pipeline, without
// blocking, and returns the bytes it read.
func (t *Tracer) drain() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reader.drain(maxBatch)
}

func (t *Tracer) flush() {
	for _, tw := range t.writers {
		if err := tw.w.Flush(); err != nil {
			t.mu.Lock()
			t.counters["flush_errors."+tw.decl.Name()]++
			t.mu.Unlock()
		}
	}
}

// housekeep evicts idle connections and drops stale requests.
func (t *Tracer) housekeep(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tracker.Expire(now, now-t.cfg.IdleTimeout.Nanoseconds())
}

// connStats writes the conn_stats rows.
func (t *Tracer) connStats(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns.Write(now, t.tracker)
}

// selfStartNS returns this process's start time for its own UPID.
func selfStartNS() uint64 {
	ns, _ := proc.StartNS(os.Getpid())
	return ns
}
