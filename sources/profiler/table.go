package profiler

import "github.com/pxq-dev/pxq/table"

// StackTraces is stack_traces.beta: how often each process was on a CPU
// in each stack, per drain period, as Pixie's table.
var StackTraces = table.Declare("stack_traces.beta", "CPU samples per process and stack, counted over each period of the continuous profiler", &stackCols)

var stackCols struct {
	Time         table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"End of the period the samples were counted in"`
	UPID         table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Unique process id"`
	StackTraceID table.Int64Col   `col:"stack_trace_id" desc:"Id of the stack trace, the same for one process and stack across periods"`
	StackTrace   table.StringCol  `col:"stack_trace" desc:"Frames joined by ';', root first; kernel frames start with '[k] ', unnamed ones are [module+0xoffset]"`
	Count        table.Int64Col   `col:"count" desc:"Samples in this stack during the period"`
}
