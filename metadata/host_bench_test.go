package metadata

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/types"
)

// BenchmarkProcessMiss resolves this process with an empty cache, as the
// first row of a process does: reading /proc alone (Processes, as the
// Kubernetes store does) against Host, which also names its entity. The
// two alternate within one run; it reports the median of each and their
// ratio.
func BenchmarkProcessMiss(b *testing.B) {
	pid := uint32(os.Getpid())
	start, err := readStartNS("/proc", pid)
	if err != nil {
		b.Fatal(err)
	}
	upid := types.UPID(0, pid, start)
	h, err := NewHost()
	if err != nil {
		b.Fatal(err)
	}
	ps := NewProcesses("/proc", h.Hostname())
	miss := func(c *Processes, lookup func(types.UInt128Value) *Process) time.Duration {
		c.mu.Lock()
		clear(c.byPID)
		c.mu.Unlock()
		t0 := time.Now()
		if lookup(upid) == nil {
			b.Fatal("unresolved")
		}
		return time.Since(t0)
	}
	plain := make([]time.Duration, 0, b.N)
	host := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			plain = append(plain, miss(ps, ps.Lookup))
			host = append(host, miss(h.procs, h.Process))
		} else {
			host = append(host, miss(h.procs, h.Process))
			plain = append(plain, miss(ps, ps.Lookup))
		}
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	mp, mh := median(plain), median(host)
	b.ReportMetric(mp, "processes-ns/miss")
	b.ReportMetric(mh, "host-ns/miss")
	b.ReportMetric(mh/mp, "host/processes")
}
