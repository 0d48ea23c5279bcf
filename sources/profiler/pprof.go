package profiler

import (
	"fmt"
	"io"
	"time"

	"github.com/google/pprof/profile"
)

// Profile builds a pprof CPU profile of samples taken at freq Hz over
// the duration ending at end. Its frames are named already, so pprof does
// not symbolize them again.
func Profile(samples []Sample, freq int, end time.Time, duration time.Duration) *profile.Profile {
	period := int64(time.Second) / int64(freq)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"},
		},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     end.Add(-duration).UnixNano(),
		DurationNanos: int64(duration),
	}
	mappings := map[string]*profile.Mapping{}
	type fnKey struct{ module, name string }
	funcs := map[fnKey]*profile.Function{}
	type locKey struct {
		module, name string
		addr         uint64
	}
	locs := map[locKey]*profile.Location{}
	for _, s := range samples {
		ps := &profile.Sample{
			Value:    []int64{int64(s.Count), int64(s.Count) * period},
			Label:    map[string][]string{"upid": {s.UPID.String()}},
			NumLabel: map[string][]int64{"pid": {int64(s.PID)}},
		}
		// pprof lists a sample's locations innermost first.
		for i := len(s.Stack) - 1; i >= 0; i-- {
			f := s.Stack[i]
			lk := locKey{f.Module, f.Name, f.Addr}
			loc := locs[lk]
			if loc == nil {
				m := mappings[f.Module]
				if m == nil {
					m = &profile.Mapping{ID: uint64(len(mappings) + 1), File: f.Module, HasFunctions: true}
					mappings[f.Module] = m
					p.Mapping = append(p.Mapping, m)
				}
				fk := fnKey{f.Module, f.Name}
				fn := funcs[fk]
				if fn == nil {
					name := f.Name
					if f.Kernel {
						name = "[k] " + name
					}
					fn = &profile.Function{ID: uint64(len(funcs) + 1), Name: name, SystemName: f.Name}
					funcs[fk] = fn
					p.Function = append(p.Function, fn)
				}
				loc = &profile.Location{ID: uint64(len(locs) + 1), Mapping: m, Address: f.Addr, Line: []profile.Line{{Function: fn}}}
				locs[lk] = loc
				p.Location = append(p.Location, loc)
			}
			ps.Location = append(ps.Location, loc)
		}
		p.Sample = append(p.Sample, ps)
	}
	return p
}

// WritePprof writes samples as a gzipped pprof profile (Profile).
func WritePprof(w io.Writer, samples []Sample, freq int, end time.Time, duration time.Duration) error {
	p := Profile(samples, freq, end, duration)
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("profiler: pprof: %w", err)
	}
	if err := p.Write(w); err != nil {
		return fmt.Errorf("profiler: pprof: %w", err)
	}
	return nil
}
