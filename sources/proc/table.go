package proc

import "github.com/pxq-dev/pxq/table"

// ProcessStats is process_stats: /proc counters of every process, one row
// per process per sample.
var ProcessStats = table.Declare("process_stats", "CPU, memory and I/O of every process, sampled from /proc", &procCols)

var procCols struct {
	Time        table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Sample time"`
	UPID        table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Unique process id"`
	MajorFaults table.Int64Col   `col:"major_faults" desc:"Major page faults"`
	MinorFaults table.Int64Col   `col:"minor_faults" desc:"Minor page faults"`
	CPUUTimeNS  table.Int64Col   `col:"cpu_utime_ns" sem:"ST_DURATION_NS" desc:"User CPU time"`
	CPUKTimeNS  table.Int64Col   `col:"cpu_ktime_ns" sem:"ST_DURATION_NS" desc:"Kernel CPU time"`
	NumThreads  table.Int64Col   `col:"num_threads" desc:"Threads"`
	VSizeBytes  table.Int64Col   `col:"vsize_bytes" sem:"ST_BYTES" desc:"Virtual memory size"`
	RSSBytes    table.Int64Col   `col:"rss_bytes" sem:"ST_BYTES" desc:"Resident set size"`
	RCharBytes  table.Int64Col   `col:"rchar_bytes" sem:"ST_BYTES" desc:"Bytes read by read-like syscalls"`
	WCharBytes  table.Int64Col   `col:"wchar_bytes" sem:"ST_BYTES" desc:"Bytes written by write-like syscalls"`
	ReadBytes   table.Int64Col   `col:"read_bytes" sem:"ST_BYTES" desc:"Bytes read from storage"`
	WriteBytes  table.Int64Col   `col:"write_bytes" sem:"ST_BYTES" desc:"Bytes written to storage"`
}

// NetworkStats is network_stats: interface counters per network
// namespace (per pod), one row per namespace per sample.
var NetworkStats = table.Declare("network_stats", "Network interface counters per network namespace (per pod on Kubernetes)", &netCols)

var netCols struct {
	Time      table.TimeCol   `col:"time_" sem:"ST_TIME_NS" desc:"Sample time"`
	PodID     table.StringCol `col:"pod_id" desc:"Pod UID (empty for the host's namespace)"`
	RxBytes   table.Int64Col  `col:"rx_bytes" sem:"ST_BYTES" desc:"Bytes received"`
	RxPackets table.Int64Col  `col:"rx_packets" desc:"Packets received"`
	RxErrors  table.Int64Col  `col:"rx_errors" desc:"Receive errors"`
	RxDrops   table.Int64Col  `col:"rx_drops" desc:"Receive drops"`
	TxBytes   table.Int64Col  `col:"tx_bytes" sem:"ST_BYTES" desc:"Bytes sent"`
	TxPackets table.Int64Col  `col:"tx_packets" desc:"Packets sent"`
	TxErrors  table.Int64Col  `col:"tx_errors" desc:"Send errors"`
	TxDrops   table.Int64Col  `col:"tx_drops" desc:"Send drops"`
}
