package otel

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
)

// DefaultInterval is how often a Schedule runs its scripts.
const DefaultInterval = 10 * time.Second

// maxBacklog bounds, in intervals, the window of a run after runs that
// failed: older rows are given up.
const maxBacklog = 10

// Schedule runs export scripts every Interval (pxq serve, agent and
// broker's --otel-script). Each run goes through the Runner, so the
// server's admission gate and limits apply, and covers the px.plugin
// window from where the script's last successful run ended to now (less
// Lag): no row is exported twice, none is skipped while runs succeed. A
// script that exports nothing itself (no px.export) runs as Generate
// makes it.
type Schedule struct {
	Runner   *query.Runner
	Scripts  []*scripts.Script
	Interval time.Duration
	// Lag ends each window this long before the run, so that rows the
	// sources are still flushing fall in the next window. Use 0 on a
	// clock that does not move (a capture).
	Lag time.Duration
	// Now is the Runner's clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// DefaultLag is the Lag of live data: sources flush every 100 ms, and a
// request's row is written when its response ends.
const DefaultLag = 2 * time.Second

// scheduled is a script's state between runs.
type scheduled struct {
	sc      *scripts.Script
	run     *scripts.Script // sc, or its generated export version
	from    time.Time       // the next window's start
	lastErr string
}

// Run runs the scripts until ctx ends.
func (s *Schedule) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	states := make([]*scheduled, len(s.Scripts))
	start := now().Add(-s.Lag - every)
	for i, sc := range s.Scripts {
		states[i] = &scheduled{sc: sc, from: start}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, st := range states {
			if ctx.Err() != nil {
				return
			}
			s.runOnce(ctx, st, now(), every, log)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOnce runs one script over the window since its last run.
func (s *Schedule) runOnce(ctx context.Context, st *scheduled, now time.Time, every time.Duration, log *slog.Logger) {
	end := now.Add(-s.Lag)
	if !end.After(st.from) {
		return // the clock did not move: no new rows
	}
	if oldest := end.Add(-maxBacklog * every); st.from.Before(oldest) {
		log.Warn("otel schedule: runs failed for long; skipping older rows", "script", st.sc.Name, "from", st.from, "to", oldest)
		st.from = oldest
	}
	err := s.prepare(ctx, st, now)
	var res query.Result
	if err == nil {
		res, err = s.Runner.Run(ctx, query.Request{Script: st.run, Now: now, PluginStart: st.from, PluginEnd: end}, discard{})
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// The window stays open: the next run covers it too.
		if msg := err.Error(); msg != st.lastErr {
			log.Warn("otel schedule: run failed", "script", st.sc.Name, "err", err)
			st.lastErr = msg
		}
		return
	}
	if st.lastErr != "" {
		log.Info("otel schedule: runs again", "script", st.sc.Name)
		st.lastErr = ""
	}
	log.Debug("otel schedule: ran", "script", st.sc.Name, "from", st.from, "to", end, "exported_rows", res.Exported)
	for _, w := range res.Warnings {
		log.Warn("otel schedule", "script", st.sc.Name, "warning", w)
	}
	st.from = end
}

// prepare picks what runs for st: its script when it exports, else the
// export script Generate makes of it.
func (s *Schedule) prepare(ctx context.Context, st *scheduled, now time.Time) error {
	if st.run != nil {
		return nil
	}
	cat, _, err := s.Runner.Backend.Tables(ctx)
	if err != nil {
		return err
	}
	p, err := query.CompileLogical(query.Request{Script: st.sc, Now: now}, cat, s.Runner.Limits)
	if err != nil {
		return err
	}
	if exportsAnything(p) {
		st.run = st.sc
		return nil
	}
	text, err := Generate(st.sc, cat, now)
	if err != nil {
		return fmt.Errorf("%s exports nothing, and no export script can be made of it: %w", st.sc.Name, err)
	}
	st.run = &scripts.Script{Name: st.sc.Name, Path: st.sc.Path, PXL: []byte(text), Source: st.sc.Source}
	return nil
}

// discard drops the tables a scheduled script displays.
type discard struct{}

func (discard) Table(string, types.Relation) error { return nil }
func (discard) Batch(string, arrow.Record) error   { return nil }
func (discard) Done(string, bool) error            { return nil }
