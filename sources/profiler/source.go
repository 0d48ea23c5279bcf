package profiler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// SourceConfig configures a Source. Its Config.ReadBudget left 0 is
// DefaultReadBudget; a negative one reads every file when first seen.
type SourceConfig struct {
	Config
	// Period is how often rows are written (default 30 s, as Pixie).
	Period time.Duration
}

// drainEvery bounds how long the BPF maps fill before they are read:
// fewer distinct stacks per half means fewer hash collisions in the
// stack map (each one loses a stack) at the same map size.
const drainEvery = 2 * time.Second

// DefaultReadBudget is the Source's read budget per drain (every 2 s)
// when SourceConfig leaves it 0: see docs/performance.md for what it
// costs.
const DefaultReadBudget = 4 << 20

// maxIDs bounds the stack trace ids remembered; past it ids start from
// new, still never reused.
const maxIDs = 1 << 18

// Source runs a Profiler and writes its counts to stack_traces.beta: one
// row per process and stack per period.
type Source struct {
	cfg  SourceConfig
	prof *Profiler
	w    *table.Writer

	mu     sync.Mutex
	acc    map[stackKey]int64 // counts of the current period
	ids    map[stackKey]int64
	nextID int64

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

type stackKey struct {
	upid  types.UInt128Value
	stack string
}

// NewSource starts the profiler and creates its table in store.
func NewSource(cfg SourceConfig, store *table.Store) (*Source, error) {
	if cfg.Period <= 0 {
		cfg.Period = 30 * time.Second
	}
	if cfg.ReadBudget == 0 {
		cfg.ReadBudget = DefaultReadBudget
	}
	w, err := StackTraces.Create(store)
	if err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	p, err := New(cfg.Config)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, prof: p, w: w, acc: map[stackKey]int64{}, ids: map[stackKey]int64{}, nextID: 1, done: make(chan struct{})}, nil
}

// Start drains the profiler and writes a period's rows every Period until
// ctx is done or Close.
func (s *Source) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		collect := time.NewTicker(min(drainEvery, s.cfg.Period))
		defer collect.Stop()
		write := time.NewTicker(s.cfg.Period)
		defer write.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-collect.C:
				s.collect()
			case now := <-write.C:
				s.collect()
				s.Write(now)
			}
		}
	}()
}

// collect adds what the profiler counted since the last time to the
// period's counts.
func (s *Source) collect() error {
	samples, err := s.prof.Drain()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range samples {
		s.acc[stackKey{sm.UPID, FoldedStack(sm.Stack)}] += int64(sm.Count)
	}
	return nil
}

// Write writes the period's rows, timed now, and starts a new period.
func (s *Source) Write(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := now.UnixNano()
	for k, n := range s.acc {
		id, ok := s.ids[k]
		if !ok {
			if len(s.ids) >= maxIDs {
				s.ids = map[stackKey]int64{}
			}
			id = s.nextID
			s.nextID++
			s.ids[k] = id
		}
		r, c := s.w.Row(), &stackCols
		c.Time.Set(r, ts)
		c.UPID.Set(r, k.upid)
		c.StackTraceID.Set(r, id)
		c.StackTrace.Set(r, k.stack)
		c.Count.Set(r, n)
		if err := r.End(); err != nil {
			return err
		}
	}
	s.acc = map[stackKey]int64{}
	return s.w.Flush()
}

// Profiler returns the source's profiler.
func (s *Source) Profiler() *Profiler { return s.prof }

// Close stops the source, writes what it counted since the last period,
// and frees the BPF program.
func (s *Source) Close() error {
	var err error
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		// The last drain names every stack still held.
		s.prof.sym.SetReadBudget(0)
		if err = s.collect(); err == nil {
			err = s.Write(time.Now())
		}
		s.prof.Close()
	})
	return err
}
