// Package format renders query results for people and programs: aligned
// text tables with semantic formatting (durations, bytes, percents), JSON
// lines, CSV and Arrow IPC.
package format

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// Value returns row i of an array as a Go value: bool, int64, float64,
// string, types.UInt128Value or time.Time.
func Value(a arrow.Array, i int) any {
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Timestamp:
		return time.Unix(0, int64(a.Value(i))).UTC()
	case *array.FixedSizeBinary:
		return types.GetUInt128(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Binary:
		return string(a.Value(i))
	}
	return a.ValueStr(i)
}

// Cell formats one value for a person, by its semantic type.
func Cell(v any, sem types.SemanticType) string {
	switch x := v.(type) {
	case int64:
		switch sem {
		case types.STDurationNS:
			return Duration(float64(x))
		case types.STBytes:
			return Bytes(float64(x))
		case types.STTimeNS:
			return Time(time.Unix(0, x))
		}
		return strconv.FormatInt(x, 10)
	case float64:
		switch sem {
		case types.STDurationNS:
			return Duration(x)
		case types.STBytes:
			return Bytes(x)
		case types.STPercent:
			return trim3(x*100) + "%"
		case types.STThroughputPerNS:
			return Float(x*1e9) + "/s"
		case types.STThroughputBytesPerNS:
			return Bytes(x*1e9) + "/s"
		}
		return Float(x)
	case time.Time:
		return Time(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case types.UInt128Value:
		return x.String()
	case string:
		switch sem {
		case types.STDurationNSQuantiles:
			return quantiles(x, true)
		case types.STQuantiles:
			return quantiles(x, false)
		case types.STScriptReference:
			return scriptReference(x)
		}
		return x
	}
	return fmt.Sprint(v)
}

// Duration formats ns with three significant digits: 850ns, 12.3µs,
// 45.6ms, 1.23s, 2m3s.
func Duration(ns float64) string {
	neg := ""
	if ns < 0 {
		neg, ns = "-", -ns
	}
	switch {
	case math.IsNaN(ns) || math.IsInf(ns, 0):
		return Float(ns)
	case ns < 1e3:
		return neg + trim3(ns) + "ns"
	case ns < 1e6:
		return neg + trim3(ns/1e3) + "µs"
	case ns < 1e9:
		return neg + trim3(ns/1e6) + "ms"
	case ns < 60e9:
		return neg + trim3(ns/1e9) + "s"
	}
	return neg + time.Duration(ns).Round(time.Second).String()
}

// Bytes formats a byte count with binary units: 512 B, 1.2 KiB, 3.4 MiB.
func Bytes(n float64) string {
	if n < 0 {
		return "-" + Bytes(-n)
	}
	if n < 1024 {
		return strconv.FormatFloat(n, 'f', -1, 64) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	for _, u := range units {
		n /= 1024
		if n < 1024 || u == "PiB" {
			return trim3(n) + " " + u
		}
	}
	return ""
}

// Float formats a float compactly.
func Float(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	a := math.Abs(f)
	if a >= 0.001 && a < 1e9 {
		s := strconv.FormatFloat(f, 'f', 4, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		return s
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// Time formats a timestamp in UTC with milliseconds.
func Time(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

func trim3(f float64) string {
	var s string
	switch {
	case f >= 100:
		s = strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		s = strconv.FormatFloat(f, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(f, 'f', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// quantiles shows a quantiles JSON object as "p50=… p90=… p99=…".
func quantiles(s string, dur bool) string {
	var q map[string]float64
	if err := json.Unmarshal([]byte(s), &q); err != nil {
		return s
	}
	var keys []string
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range []string{"p50", "p90", "p99"} {
		if v, ok := q[k]; ok {
			if dur {
				parts = append(parts, k+"="+Duration(v))
			} else {
				parts = append(parts, k+"="+Float(v))
			}
		}
	}
	if len(parts) == 0 {
		return s
	}
	return strings.Join(parts, " ")
}

// scriptReference shows a script reference by its label.
func scriptReference(s string) string {
	var r struct {
		Label string `json:"label"`
	}
	if json.Unmarshal([]byte(s), &r) == nil && r.Label != "" {
		return r.Label
	}
	return s
}
