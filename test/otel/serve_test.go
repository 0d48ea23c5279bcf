package oteltest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// capture is the demo's capture, shipped with pxq.
const capture = "../../demo/testdata/capture"

// TestServeSchedule runs `pxq serve --otel-endpoint … --otel-script …`
// over the demo's capture: the library's export scripts run on their
// schedule, and the Collector receives what `pxq run` of the same
// scripts shows.
func TestServeSchedule(t *testing.T) {
	c := startCollector(t)
	_, pxq := binaries(t)
	metricRows := runJSON(t, pxq, "px/otel_http_metrics")
	spanRows := runJSON(t, pxq, "px/otel_slow_spans")
	if len(metricRows) == 0 || len(spanRows) == 0 {
		t.Fatalf("the capture gives %d metric rows and %d span rows", len(metricRows), len(spanRows))
	}

	var log syncBuffer
	serve := exec.Command(pxq, "serve", "--capture", capture, "--listen", "127.0.0.1:0", "--http", "",
		"--otel-endpoint", "http://"+c.HTTP, "--otel-script", "px/otel_http_metrics", "--otel-script", "px/otel_slow_spans",
		"--otel-interval", "10s")
	serve.Stdout, serve.Stderr = &log, &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
		if t.Failed() {
			t.Logf("pxq serve:\n%s", log.String())
		}
	}()
	// Three points (two gauges and a histogram) per row.
	ms, ts := c.wait("the scheduled exports", func(p, s int) bool { return p >= 3*len(metricRows) && s >= len(spanRows) })

	type point struct {
		rate, errRate float64
		count         uint64
	}
	got := map[string]*point{}
	eachMetric(ms, func(res pcommon.Resource, m pmetric.Metric) {
		key := func(a pcommon.Map) string {
			return str(res.Attributes(), "service.name") + " " + str(a, "http.request.method")
		}
		switch m.Name() {
		case "http.server.request.rate", "http.server.error.rate":
			dps := m.Gauge().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				k := key(dps.At(i).Attributes())
				if got[k] == nil {
					got[k] = &point{}
				}
				if m.Name() == "http.server.request.rate" {
					got[k].rate = dps.At(i).DoubleValue()
				} else {
					got[k].errRate = dps.At(i).DoubleValue()
				}
			}
		case "http.server.request.duration":
			dps := m.Histogram().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				k := key(dps.At(i).Attributes())
				if got[k] == nil {
					got[k] = &point{}
				}
				got[k].count = dps.At(i).Count()
			}
		}
	})
	if len(got) != len(metricRows) {
		t.Errorf("%d series exported, %d rows shown", len(got), len(metricRows))
	}
	for _, r := range metricRows {
		k := fmt.Sprint(r["service"], " ", r["req_method"])
		p := got[k]
		if p == nil || p.rate != r["request_rate"].(float64) || p.errRate != r["error_rate"].(float64) || p.count != uint64(r["requests"].(float64)) {
			t.Errorf("%s: exported %+v, shown %v", k, p, r)
		}
	}

	var want, have []string
	for _, r := range spanRows {
		end, err := time.Parse(time.RFC3339Nano, r["time_"].(string))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(r["service"], " ", end.UnixNano(), " ", int64(r["latency"].(float64))))
	}
	eachSpan(ts, func(res pcommon.Resource, s ptrace.Span) {
		have = append(have, fmt.Sprint(str(res.Attributes(), "service.name"), " ", int64(s.EndTimestamp()), " ", int64(s.EndTimestamp()-s.StartTimestamp())))
	})
	sort.Strings(want)
	sort.Strings(have)
	if fmt.Sprint(want) != fmt.Sprint(have) {
		t.Errorf("spans differ from the rows shown: %d spans, %d rows\nwant %v\n got %v", len(have), len(want), want, have)
	}
}

// runJSON runs a library script over the capture with pxq run and
// returns its rows.
func runJSON(t *testing.T, pxq, script string) []map[string]any {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(pxq, "run", script, "--capture", capture, "-o", "json")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("pxq run %s: %v\n%s", script, err, errOut.String())
	}
	var rows []map[string]any
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows
}
