package jvm

import (
	"fmt"
	"math/bits"
	"time"
)

// Stats are a JVM's heap sizes and garbage collections, from its
// hsperfdata counters.
type Stats struct {
	// YoungGCs and YoungGCTime are the young collections
	// (sun.gc.collector.0), as jstat's YGC and YGCT.
	YoungGCs    int64
	YoungGCTime time.Duration
	// FullGCs and FullGCTime are the full collections
	// (sun.gc.collector.1), as jstat's FGC and FGCT.
	FullGCs    int64
	FullGCTime time.Duration
	// UsedHeap and CommittedHeap sum the used and capacity counters of
	// every space of the heap's generations (jstat's S0U+S1U+EU+OU and
	// S0C+S1C+EC+OC), in bytes.
	UsedHeap, CommittedHeap int64
	// MaxHeap is how large the heap may grow, in bytes: the sum of the
	// generations' maximum capacities, or, for G1, whose every generation
	// may take the whole heap, the largest of them.
	MaxHeap int64
}

// StatsOf reads Stats from a JVM's counters. It fails when the counters
// it needs are missing (a JVM that is not HotSpot, or runs with
// -XX:-UsePerfData's remains).
func StatsOf(p *PerfData) (Stats, error) {
	var s Stats
	freq, ok := p.Long("sun.os.hrt.frequency")
	if !ok || freq <= 0 {
		return s, fmt.Errorf("hsperfdata: no sun.os.hrt.frequency")
	}
	var err error
	need := func(name string) int64 {
		v, ok := p.Long(name)
		if !ok && err == nil {
			err = fmt.Errorf("hsperfdata: no counter %s", name)
		}
		return v
	}
	s.YoungGCs = need("sun.gc.collector.0.invocations")
	s.YoungGCTime = ticksToDuration(need("sun.gc.collector.0.time"), freq)
	s.FullGCs = need("sun.gc.collector.1.invocations")
	s.FullGCTime = ticksToDuration(need("sun.gc.collector.1.time"), freq)
	g1 := false
	if name, _ := p.Str("sun.gc.policy.name"); name == "GarbageFirst" {
		g1 = true
	}
	gens := 0
	for g := 0; ; g++ {
		pre := fmt.Sprintf("sun.gc.generation.%d.", g)
		spaces, ok := p.Long(pre + "spaces")
		if !ok {
			break
		}
		// Up to JDK 7, the permanent generation (class metadata) is
		// counted as a generation; it is not heap.
		if name, _ := p.Str(pre + "name"); name == "perm" {
			continue
		}
		gens++
		for sp := int64(0); sp < spaces && err == nil; sp++ { // stops at the first missing space
			s.UsedHeap += need(fmt.Sprintf("%sspace.%d.used", pre, sp))
			s.CommittedHeap += need(fmt.Sprintf("%sspace.%d.capacity", pre, sp))
		}
		gmax := need(pre + "maxCapacity")
		if g1 {
			s.MaxHeap = max(s.MaxHeap, gmax)
		} else {
			s.MaxHeap += gmax
		}
	}
	if err != nil {
		return Stats{}, err
	}
	if gens == 0 {
		return Stats{}, fmt.Errorf("hsperfdata: no sun.gc.generation counters")
	}
	return s, nil
}

// ticksToDuration converts hrt ticks at freq per second to a duration,
// without overflowing for any tick count that fits a duration.
func ticksToDuration(ticks, freq int64) time.Duration {
	if ticks <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(ticks), uint64(time.Second))
	if hi >= uint64(freq) {
		return time.Duration(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, uint64(freq))
	if q > 1<<63-1 {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(q)
}
