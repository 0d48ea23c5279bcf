package otel

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// metricMap is a plan.OTelMetric resolved against its input's columns.
type metricMap struct {
	m                                      plan.OTelMetric
	time, value, count, sum, quant, mn, mx int
	quantiles, buckets                     []int
	attrs                                  []attr
	intValue                               bool // a gauge of INT64 values
}

func newMetricMap(c cols, m plan.OTelMetric) (*metricMap, error) {
	mm := &metricMap{m: m}
	var err error
	for _, f := range []struct {
		dst  *int
		name string
	}{{&mm.time, m.Time}, {&mm.value, m.Value}, {&mm.count, m.Count}, {&mm.sum, m.Sum}, {&mm.quant, m.FromQuantiles}, {&mm.mn, m.Min}, {&mm.mx, m.Max}} {
		if *f.dst, err = c.index(f.name); err != nil {
			return nil, err
		}
	}
	for _, q := range m.Quantiles {
		i, err := c.index(q.Column)
		if err != nil {
			return nil, err
		}
		mm.quantiles = append(mm.quantiles, i)
	}
	for _, b := range m.BucketCounts {
		i, err := c.index(b)
		if err != nil {
			return nil, err
		}
		mm.buckets = append(mm.buckets, i)
	}
	if mm.attrs, err = c.attrs(m.Attributes); err != nil {
		return nil, err
	}
	mm.intValue = mm.value >= 0 && c.rel[mm.value].Type == types.Int64
	return mm, nil
}

// series are the points of one metric for one resource.
type series struct {
	ints    []metricdata.DataPoint[int64]
	floats  []metricdata.DataPoint[float64]
	summary []metricdata.SummaryDataPoint
	hist    []metricdata.HistogramDataPoint[float64]
}

func (s *series) len() int { return len(s.ints) + len(s.floats) + len(s.summary) + len(s.hist) }

// data returns the points as the SDK's aggregation of m's kind.
func (s *series) data(m *metricMap) metricdata.Aggregation {
	switch m.m.Kind {
	case plan.OTelSummary:
		return metricdata.Summary{DataPoints: s.summary}
	case plan.OTelHistogram:
		// Each point counts its own rows (a window's requests): delta.
		return metricdata.Histogram[float64]{DataPoints: s.hist, Temporality: metricdata.DeltaTemporality}
	}
	if m.intValue {
		return metricdata.Gauge[int64]{DataPoints: s.ints}
	}
	return metricdata.Gauge[float64]{DataPoints: s.floats}
}

// point adds row r's point to s. It returns false for a row whose values
// make no point (a histogram's negative or inconsistent counts).
func (m *metricMap) point(s *series, rec arrow.Record, r int, now, start time.Time, kv []attribute.KeyValue) bool {
	kv = kv[:0]
	for _, a := range m.attrs {
		kv = append(kv, a.read(rec, r))
	}
	set := attribute.NewSet(kv...)
	t := timeAt(rec, m.time, r, now)
	switch m.m.Kind {
	case plan.OTelGauge:
		if m.intValue {
			s.ints = append(s.ints, metricdata.DataPoint[int64]{Attributes: set, Time: t, Value: integer(rec, m.value, r)})
		} else {
			s.floats = append(s.floats, metricdata.DataPoint[float64]{Attributes: set, Time: t, Value: number(rec, m.value, r)})
		}
	case plan.OTelSummary:
		p := metricdata.SummaryDataPoint{Attributes: set, StartTime: start, Time: t, Count: count(number(rec, m.count, r)), Sum: number(rec, m.sum, r)}
		for i, q := range m.m.Quantiles {
			p.QuantileValues = append(p.QuantileValues, metricdata.QuantileValue{Quantile: q.Quantile, Value: number(rec, m.quantiles[i], r)})
		}
		s.summary = append(s.summary, p)
	case plan.OTelHistogram:
		p := metricdata.HistogramDataPoint[float64]{Attributes: set, StartTime: start, Time: t}
		if m.quant >= 0 {
			qs, ok := parseQuantiles(text(rec, m.quant, r))
			if !ok {
				return false
			}
			p.Count = count(number(rec, m.count, r))
			p.Bounds, p.BucketCounts = quantileBuckets(qs, m.m.Bounds, p.Count)
			if m.sum >= 0 {
				p.Sum = number(rec, m.sum, r)
			} else {
				p.Sum = estimateSum(qs, p.Count)
			}
		} else {
			p.Bounds = m.m.Bounds
			p.BucketCounts = make([]uint64, len(m.buckets))
			for i, b := range m.buckets {
				n := integer(rec, b, r)
				if n < 0 {
					return false
				}
				p.BucketCounts[i] = uint64(n)
				p.Count += uint64(n)
			}
			if m.count >= 0 && count(number(rec, m.count, r)) != p.Count {
				return false
			}
			p.Sum = number(rec, m.sum, r)
		}
		if m.mn >= 0 {
			p.Min = metricdata.NewExtrema(number(rec, m.mn, r))
		}
		if m.mx >= 0 {
			p.Max = metricdata.NewExtrema(number(rec, m.mx, r))
		}
		s.hist = append(s.hist, p)
	}
	return true
}

// quantile is one quantile of a px.quantiles value.
type quantile struct{ Q, Value float64 }

// parseQuantiles reads px.quantiles' JSON ({"p01": …, "p50": …, "p99":
// …}): key pNN is the quantile 0.NN. They come back in increasing order,
// with values made non-decreasing.
func parseQuantiles(s string) ([]quantile, bool) {
	var m map[string]float64
	if json.Unmarshal([]byte(s), &m) != nil || len(m) == 0 {
		return nil, false
	}
	qs := make([]quantile, 0, len(m))
	for k, v := range m {
		digits := strings.TrimPrefix(k, "p")
		if digits == k || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return nil, false
		}
		q, err := strconv.ParseFloat("0."+digits, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		qs = append(qs, quantile{q, v})
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Q < qs[j].Q })
	for i := 1; i < len(qs); i++ {
		qs[i].Value = math.Max(qs[i].Value, qs[i-1].Value)
	}
	return qs, true
}

// count turns a count column's value into a count (negative and NaN: 0).
func count(v float64) uint64 {
	if !(v > 0) {
		return 0
	}
	return uint64(math.Round(v))
}

// quantileBuckets spreads n values over the buckets of bounds from their
// quantiles, by the distribution function that is linear between the
// quantiles (and, past the first and the last, continues with the slope
// of its neighbour). Without bounds the quantiles' values are the bounds,
// which makes the counts exact: a tenth of the values lie between p10
// and p25… Counts are whole and add up to n.
func quantileBuckets(qs []quantile, bounds []float64, n uint64) ([]float64, []uint64) {
	if len(bounds) == 0 {
		for _, q := range qs {
			if len(bounds) == 0 || q.Value > bounds[len(bounds)-1] {
				bounds = append(bounds, q.Value)
			}
		}
	}
	cdf := make([]float64, len(bounds)+1)
	for i, b := range bounds {
		cdf[i] = quantileCDF(qs, b)
	}
	cdf[len(bounds)] = 1
	counts := make([]uint64, len(bounds)+1)
	// Largest remainders, so that the whole counts sum to n.
	type rem struct {
		i int
		f float64
	}
	var rems []rem
	var given uint64
	prev := 0.0
	for i, c := range cdf {
		share := math.Max(c-prev, 0) * float64(n)
		prev = math.Max(prev, c)
		counts[i] = uint64(share)
		given += counts[i]
		rems = append(rems, rem{i, share - float64(counts[i])})
	}
	for given < n {
		best := 0
		for j := range rems {
			if rems[j].f > rems[best].f {
				best = j
			}
		}
		counts[rems[best].i]++
		rems[best].f = -1
		given++
	}
	return bounds, counts
}

// quantileCDF is the share of values at or below v.
func quantileCDF(qs []quantile, v float64) float64 {
	if len(qs) == 0 {
		return 0
	}
	if len(qs) == 1 {
		if v < qs[0].Value {
			return 0
		}
		return 1
	}
	lerp := func(a, b quantile) float64 {
		if b.Value == a.Value {
			return b.Q
		}
		return a.Q + (b.Q-a.Q)*(v-a.Value)/(b.Value-a.Value)
	}
	n := len(qs)
	switch {
	case v < qs[0].Value:
		return clamp01(lerp(qs[0], qs[1]))
	case v >= qs[n-1].Value:
		if v == qs[n-1].Value {
			return qs[n-1].Q
		}
		return clamp01(lerp(qs[n-2], qs[n-1]))
	}
	for i := 1; i < n; i++ {
		if v < qs[i].Value {
			return lerp(qs[i-1], qs[i])
		}
	}
	return qs[n-1].Q
}

func clamp01(f float64) float64 { return math.Min(1, math.Max(0, f)) }

// estimateSum is the sum of n values distributed as quantileCDF says:
// each slice between two quantiles at its midpoint.
func estimateSum(qs []quantile, n uint64) float64 {
	if len(qs) == 0 || n == 0 {
		return 0
	}
	mean := 0.0
	prevQ, prevV := 0.0, qs[0].Value
	for _, q := range qs {
		mean += (q.Q - prevQ) * (prevV + q.Value) / 2
		prevQ, prevV = q.Q, q.Value
	}
	mean += (1 - prevQ) * prevV
	return mean * float64(n)
}

// metricBatch gathers the points a batch of rows makes, per resource.
type metricBatch struct {
	metrics []*metricMap
	series  map[int][]series // resource → per metric
	points  int
}

func (b *metricBatch) add(res, metric int) *series {
	if b.series == nil {
		b.series = map[int][]series{}
	}
	s := b.series[res]
	if s == nil {
		s = make([]series, len(b.metrics))
		b.series[res] = s
	}
	return &s[metric]
}

// resourceMetrics returns what the batch holds, one ResourceMetrics per
// resource, and empties it.
func (b *metricBatch) resourceMetrics(rs *resources, scope instrumentation.Scope) []job {
	var out []job
	for res, ss := range b.series {
		rm := &metricdata.ResourceMetrics{Resource: rs.list[res]}
		sm := metricdata.ScopeMetrics{Scope: scope}
		n := 0
		for i, s := range ss {
			if s.len() == 0 {
				continue
			}
			m := b.metrics[i]
			sm.Metrics = append(sm.Metrics, metricdata.Metrics{Name: m.m.Name, Description: m.m.Description, Unit: m.m.Unit, Data: s.data(m)})
			n += s.len()
		}
		rm.ScopeMetrics = []metricdata.ScopeMetrics{sm}
		out = append(out, job{metrics: rm, items: n})
	}
	b.series, b.points = nil, 0
	return out
}
