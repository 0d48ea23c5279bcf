// Package health declares the tables a source reports its own state in,
// named after Pixie's so that its scripts find them: stirling_error (the
// source's status and counters) and probe_status (each probe it attached
// or failed to).
package health

import (
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// StirlingError is stirling_error: one row per source per report.
var StirlingError = table.Declare("stirling_error", "Source status, errors and counters", &errCols)

var errCols struct {
	Time            table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Time of the report"`
	UPID            table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Process of the source"`
	SourceConnector table.StringCol  `col:"source_connector" desc:"Source name"`
	Status          table.Int64Col   `col:"status" desc:"0 ok, non-zero an error code"`
	Error           table.StringCol  `col:"error" desc:"Error text"`
	Context         table.StringCol  `col:"context" desc:"Counters and details as JSON"`
}

// ProbeStatus is probe_status: one row per probe per report.
var ProbeStatus = table.Declare("probe_status", "State of every probe the sources attach", &probeCols)

var probeCols struct {
	Time            table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Time of the report"`
	UPID            table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Process of the source"`
	SourceConnector table.StringCol  `col:"source_connector" desc:"Source name"`
	Tracepoint      table.StringCol  `col:"tracepoint" desc:"Probe name"`
	Status          table.Int64Col   `col:"status" desc:"0 ok, non-zero an error code"`
	Error           table.StringCol  `col:"error" desc:"Error text"`
	Info            table.StringCol  `col:"info" desc:"Details as JSON"`
}

// Reporter writes one source's health rows.
type Reporter struct {
	Source string             // source_connector
	UPID   types.UInt128Value // the source's process
	errs   *table.Row
	probes *table.Row
}

// NewReporter returns a reporter for source, whose rows go through
// writers of StirlingError and ProbeStatus.
func NewReporter(source string, upid types.UInt128Value, errs, probes *table.Writer) *Reporter {
	return &Reporter{Source: source, UPID: upid, errs: errs.Row(), probes: probes.Row()}
}

// Status writes a stirling_error row: status 0 and no error when err is
// nil; context is JSON.
func (h *Reporter) Status(now int64, err error, context string) error {
	r := h.errs
	status, msg := int64(0), ""
	if err != nil {
		status, msg = 1, err.Error()
	}
	errCols.Time.Set(r, now)
	errCols.UPID.Set(r, h.UPID)
	errCols.SourceConnector.Set(r, h.Source)
	errCols.Status.Set(r, status)
	errCols.Error.Set(r, msg)
	errCols.Context.Set(r, context)
	return r.End()
}

// Probe writes a probe_status row for the probe name: status 0 and no
// error when err is nil; info is JSON.
func (h *Reporter) Probe(now int64, name string, err error, info string) error {
	r := h.probes
	status, msg := int64(0), ""
	if err != nil {
		status, msg = 1, err.Error()
	}
	probeCols.Time.Set(r, now)
	probeCols.UPID.Set(r, h.UPID)
	probeCols.SourceConnector.Set(r, h.Source)
	probeCols.Tracepoint.Set(r, name)
	probeCols.Status.Set(r, status)
	probeCols.Error.Set(r, msg)
	probeCols.Info.Set(r, info)
	return r.End()
}
