package profiler

import (
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/profiler/symbolize"
)

// BenchmarkProfilerCost measures what the profiler costs at 100 Hz per
// CPU, in rounds that alternate off and on (one interleaved run, medians
// over the rounds):
//
//   - work-ratio: the rate of a CPU-bound loop with the profiler on over
//     its rate with the profiler off (1 = free);
//   - bpf-ns/sample and bpf-cpu-%: the program's own run time, from the
//     kernel's BPF statistics, per sample and as a share of one CPU;
//   - drain-cpu-ms/s: this process's CPU in Drain (reading the maps and
//     naming the frames of every sampled process) per second profiled.
//
// Run with -benchtime=1x: every round is one second of each mode.
func BenchmarkProfilerCost(b *testing.B) {
	testenv.RequireRoot(b, "the profiler loads a BPF program")
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enabling BPF statistics: %v", err)
	}
	defer stats.Close()
	const rounds = 7
	const window = time.Second
	var ratios, nsPerSample, cpuShare, drainMS []float64
	var counter atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		x := uint64(1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 100000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
			counter.Add(1 + x&0) // x&0 keeps the loop from being removed
		}
	}()
	rate := func() float64 {
		n0, t0 := counter.Load(), time.Now()
		time.Sleep(window)
		return float64(counter.Load()-n0) / time.Since(t0).Seconds()
	}
	// One symbolizer for every round: the drains see its caches warm.
	var sym *symbolize.Symbolizer
	for r := 0; r < rounds; r++ {
		off := rate()
		p, err := New(Config{Frequency: 100})
		if err != nil {
			b.Fatal(err)
		}
		if sym == nil {
			sym = p.sym
		}
		p.sym = sym
		before, _ := p.objs.Sample.Stats()
		p.Drain() // from the start of the window
		on := rate()
		after, _ := p.objs.Sample.Stats()
		drain, err := threadCPU(func() error { _, err := p.Drain(); return err })
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		ratios = append(ratios, on/off)
		runs := after.RunCount - before.RunCount
		rt := after.Runtime - before.Runtime
		if runs > 0 {
			nsPerSample = append(nsPerSample, float64(rt.Nanoseconds())/float64(runs))
		}
		cpuShare = append(cpuShare, 100*rt.Seconds()/window.Seconds())
		drainMS = append(drainMS, float64(drain.Microseconds())/1000/window.Seconds())
	}
	b.ReportMetric(median(ratios), "work-ratio")
	b.ReportMetric(median(nsPerSample), "bpf-ns/sample")
	b.ReportMetric(median(cpuShare), "bpf-cpu-%")
	b.ReportMetric(median(drainMS), "drain-cpu-ms/s")
}

// threadCPU runs f on a thread of its own and returns the CPU that thread
// used (f starts no goroutines).
func threadCPU(f func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var a, b unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &a)
	err := f()
	unix.Getrusage(unix.RUSAGE_THREAD, &b)
	d := func(t unix.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return d(b.Utime) - d(a.Utime) + d(b.Stime) - d(a.Stime), err
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
