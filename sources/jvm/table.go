package jvm

import "github.com/pxq-dev/pxq/table"

// Table is jvm_stats: heap and garbage collection of every HotSpot JVM,
// one row per JVM per sample, with Pixie's columns.
var Table = table.Declare("jvm_stats", "Heap and garbage collections of every HotSpot JVM, sampled from its hsperfdata file", &cols)

var cols struct {
	Time          table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Sample time"`
	UPID          table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Unique process id"`
	YoungGCTime   table.Int64Col   `col:"young_gc_time" sem:"ST_DURATION_NS" desc:"Time spent in young collections since the JVM started"`
	FullGCTime    table.Int64Col   `col:"full_gc_time" sem:"ST_DURATION_NS" desc:"Time spent in full collections since the JVM started"`
	UsedHeapSize  table.Int64Col   `col:"used_heap_size" desc:"Bytes used in the heap's spaces"`
	TotalHeapSize table.Int64Col   `col:"total_heap_size" desc:"Bytes committed to the heap's spaces"`
	MaxHeapSize   table.Int64Col   `col:"max_heap_size" desc:"Bytes the heap may grow to"`
}
