// Package jvm reads the statistics every HotSpot JVM publishes in its
// hsperfdata file (/tmp/hsperfdata_USER/PID, the file jstat reads) and
// samples them into jvm_stats: heap used, committed and maximum, and the
// time spent in young and full collections.
//
// JVMs are found through /proc: a process is one when the file named by
// its own pid (NSpid, its pid in its pid namespace) exists in
// /proc/PID/root/tmp/hsperfdata_*/ and is mapped by the process, so the
// JVMs of containers, with their private /tmp and pids, are read from
// the host.
package jvm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Config configures a Reader.
type Config struct {
	// ASID is the agent short id that goes into UPIDs.
	ASID uint32
	// Period is how often every JVM is read (default 10 s).
	Period time.Duration
	// ProcRoot is the procfs mount to read (default /proc).
	ProcRoot string
}

// Counters count what the reader saw, since it was created.
type Counters struct {
	// Samples is the number of passes over the processes.
	Samples int64
	// Rows is the number of rows written, one per JVM per pass.
	Rows int64
	// Vanished counts JVMs found in a pass that exited before their file
	// was read.
	Vanished int64
	// NotReady counts JVMs read while they were still initializing
	// their file.
	NotReady int64
	// Malformed counts files that could not be parsed, or lacked the
	// counters of jvm_stats, while their JVM ran.
	Malformed int64
}

// Reader writes jvm_stats rows.
type Reader struct {
	cfg    Config
	w      *table.Writer
	find   *finder
	mu     sync.Mutex // one pass at a time
	cancel context.CancelFunc
	done   chan struct{}
	start  sync.Once
	close  sync.Once

	samples, rows, vanished, notReady, malformed atomic.Int64
}

// NewReader creates jvm_stats in store.
func NewReader(cfg Config, store *table.Store) (*Reader, error) {
	if cfg.Period <= 0 {
		cfg.Period = 10 * time.Second
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	w, err := Table.Create(store)
	if err != nil {
		return nil, fmt.Errorf("jvm: %w", err)
	}
	return &Reader{cfg: cfg, w: w, find: newFinder(cfg.ProcRoot), done: make(chan struct{})}, nil
}

// Start reads now and then every Period until ctx is done or Close.
func (r *Reader) Start(ctx context.Context) {
	r.start.Do(func() {
		ctx, r.cancel = context.WithCancel(ctx)
		go func() {
			defer close(r.done)
			tk := time.NewTicker(r.cfg.Period)
			defer tk.Stop()
			for {
				r.Sample(time.Now())
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		}()
	})
}

// Close stops reading.
func (r *Reader) Close() error {
	r.close.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
	return nil
}

// Counters returns the reader's counters.
func (r *Reader) Counters() Counters {
	return Counters{
		Samples:   r.samples.Load(),
		Rows:      r.rows.Load(),
		Vanished:  r.vanished.Load(),
		NotReady:  r.notReady.Load(),
		Malformed: r.malformed.Load(),
	}
}

// Sample writes a row for every running JVM and flushes them to the
// store.
func (r *Reader) Sample(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps, err := r.find.find()
	if err != nil {
		return err
	}
	return r.sample(now, ps)
}

// sample writes the rows of the JVMs ps, found earlier in the pass.
func (r *Reader) sample(now time.Time, ps []Process) error {
	r.samples.Add(1)
	ts := now.UnixNano()
	for _, p := range ps {
		upid, st, err := r.read(p)
		switch {
		case err == nil:
		case errors.Is(err, errVanished):
			r.vanished.Add(1)
			continue
		case errors.Is(err, ErrNotReady):
			r.notReady.Add(1)
			continue
		default:
			r.malformed.Add(1)
			continue
		}
		row, c := r.w.Row(), &cols
		c.Time.Set(row, ts)
		c.UPID.Set(row, upid)
		c.YoungGCTime.Set(row, int64(st.YoungGCTime))
		c.FullGCTime.Set(row, int64(st.FullGCTime))
		c.UsedHeapSize.Set(row, st.UsedHeap)
		c.TotalHeapSize.Set(row, st.CommittedHeap)
		c.MaxHeapSize.Set(row, st.MaxHeap)
		if err := row.End(); err != nil {
			return fmt.Errorf("jvm: %w", err)
		}
		r.rows.Add(1)
	}
	return r.w.Flush()
}

// errVanished marks a JVM that exited while it was read.
var errVanished = errors.New("jvm: process exited")

// read reads p's UPID and stats. A process that is gone or replaced
// (another start time) once the file is read gives errVanished: what was
// read may be a file half torn down, or another process's.
func (r *Reader) read(p Process) (types.UInt128Value, Stats, error) {
	b, rerr := os.ReadFile(p.Path)
	if st, err := procfs.ReadStat(r.cfg.ProcRoot, p.PID); err != nil || st.Start != p.Start {
		return types.UInt128Value{}, Stats{}, errVanished
	}
	if errors.Is(rerr, fs.ErrNotExist) {
		return types.UInt128Value{}, Stats{}, errVanished
	}
	if rerr != nil {
		return types.UInt128Value{}, Stats{}, fmt.Errorf("jvm: pid %d: %w", p.PID, rerr)
	}
	pd, err := Parse(b)
	if err != nil {
		return types.UInt128Value{}, Stats{}, fmt.Errorf("jvm: pid %d: %w", p.PID, err)
	}
	s, err := StatsOf(pd)
	if err != nil {
		return types.UInt128Value{}, Stats{}, fmt.Errorf("jvm: pid %d: %w", p.PID, err)
	}
	upid := types.UPID(r.cfg.ASID, uint32(p.PID), procfs.Stat{Start: p.Start}.StartNS())
	return upid, s, nil
}
