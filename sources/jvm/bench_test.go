package jvm

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// BenchmarkFind is one pass of the reader's search over this host's
// processes: the fixed cost of jvm_stats every period.
func BenchmarkFind(b *testing.B) {
	f := newFinder("/proc")
	for i := 0; i < b.N; i++ {
		if _, err := f.find(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseStats parses a file of 200 counters (OpenJDK 17 writes
// about 190) and reads jvm_stats' values from it: the cost per JVM.
func BenchmarkParseStats(b *testing.B) {
	es := serialHeap()
	for i := len(es); i < 200; i++ {
		es = append(es, long(fmt.Sprintf("sun.test.counter.%d", i), UnitsEvents, int64(i)))
	}
	file := encode(binary.LittleEndian, es)
	b.SetBytes(int64(len(file)))
	for i := 0; i < b.N; i++ {
		p, err := Parse(file)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := StatsOf(p); err != nil {
			b.Fatal(err)
		}
	}
}
