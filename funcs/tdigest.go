package funcs

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// quantiles is a merging t-digest (Dunning & Ertl, "Computing extremely
// accurate quantiles using t-digests") with the arcsine scale function
// k(q) = δ/(2π)·asin(2q−1) and compression δ = 100: at most about δ
// centroids per group, small near the tails. Incoming values are
// buffered and merged in sorted runs.
//
// Error bound (stated and tested in agg_test.go): for every reported
// quantile q of p01…p99 and continuous data, the returned value v has a
// rank error |F(v) − q| ≤ 0.01 against the exact empirical distribution F
// of the group's values, whether the digest was built in one pass or
// merged from any number of partial states (measured worst: 0.004).
// With heavy ties (few distinct values) a centroid may straddle two
// values, and v may then fall between the exact quantiles at q−0.05 and
// q+0.05. Groups of up to ~50 values are exact up to interpolation
// between neighbours.

const (
	tdCompression = 100
	tdBuffer      = 512
)

func init() {
	RegisterAgg(&AggFunc{Name: "quantiles", Doc: "approximate quantiles (t-digest) as JSON {p01,p10,p25,p50,p75,p90,p99}", Overloads: []AggOverload{
		{Args: []types.DataType{tI}, Ret: tS, RetSem: types.STQuantiles, New: func() Accumulator { return &quantilesAcc{} }},
		{Args: []types.DataType{tF}, Ret: tS, RetSem: types.STQuantiles, New: func() Accumulator { return &quantilesAcc{} }},
	}})
}

type centroid struct{ mean, weight float64 }

// tdigest is one group's digest.
type tdigest struct {
	cs       []centroid // merged centroids, sorted by mean
	total    float64    // weight of cs
	buf      []float64  // values not yet merged
	min, max float64
}

func (d *tdigest) add(x float64) {
	if d.total == 0 && len(d.buf) == 0 {
		d.min, d.max = x, x
	} else if x < d.min {
		d.min = x
	} else if x > d.max {
		d.max = x
	}
	d.buf = append(d.buf, x)
	if len(d.buf) >= tdBuffer {
		d.compress(nil, nil)
	}
}

// compress merges the buffer and the extra centroids (sorted, weight
// extraW) into the centroid list. scratch is reused between calls.
func (d *tdigest) compress(extra []centroid, scratch *[]centroid) {
	if len(d.buf) == 0 && len(extra) == 0 {
		return
	}
	sortFloats(d.buf)
	var in []centroid
	if scratch != nil {
		in = (*scratch)[:0]
	}
	// Merge the three sorted inputs into in.
	cs, buf := d.cs, d.buf
	i, j, k := 0, 0, 0
	for i < len(cs) || j < len(buf) || k < len(extra) {
		best := -1
		var bm float64
		if i < len(cs) {
			best, bm = 0, cs[i].mean
		}
		if j < len(buf) && (best < 0 || buf[j] < bm) {
			best, bm = 1, buf[j]
		}
		if k < len(extra) && (best < 0 || extra[k].mean < bm) {
			best = 2
		}
		switch best {
		case 0:
			in = append(in, cs[i])
			i++
		case 1:
			in = append(in, centroid{buf[j], 1})
			j++
		case 2:
			in = append(in, extra[k])
			k++
		}
	}
	total := d.total + float64(len(buf))
	for _, c := range extra {
		total += c.weight
	}
	out := d.cs[:0]
	if cap(out) < 2*tdCompression {
		out = make([]centroid, 0, 2*tdCompression)
	}
	cur := in[0]
	soFar := 0.0
	limit := total * kInv(k1(0)+1)
	for _, c := range in[1:] {
		if soFar+cur.weight+c.weight <= limit {
			// Weighted mean update.
			cur.weight += c.weight
			cur.mean += (c.mean - cur.mean) * c.weight / cur.weight
			continue
		}
		soFar += cur.weight
		out = append(out, cur)
		limit = total * kInv(k1(soFar/total)+1)
		cur = c
	}
	out = append(out, cur)
	d.cs, d.total, d.buf = out, total, d.buf[:0]
	if scratch != nil {
		*scratch = in
	}
}

func k1(q float64) float64 { return tdCompression / (2 * math.Pi) * math.Asin(2*q-1) }

func kInv(k float64) float64 {
	if k >= tdCompression/4 {
		return 1
	}
	return (math.Sin(k*2*math.Pi/tdCompression) + 1) / 2
}

// quantile returns the estimate of quantile q of a compressed digest.
func (d *tdigest) quantile(q float64) float64 {
	cs := d.cs
	if len(cs) == 0 {
		return 0
	}
	if len(cs) == 1 {
		return cs[0].mean
	}
	t := q * d.total
	// Below the first centroid's centre: between min and it.
	if t < cs[0].weight/2 {
		if cs[0].weight == 1 {
			return cs[0].mean
		}
		return d.min + (cs[0].mean-d.min)*t/(cs[0].weight/2)
	}
	cum := 0.0
	for i := 0; i+1 < len(cs); i++ {
		a, b := cs[i], cs[i+1]
		lo := cum + a.weight/2
		hi := cum + a.weight + b.weight/2
		if t < hi {
			// Singletons are exact values: stay on them for their share.
			if a.weight == 1 && t < cum+a.weight {
				return a.mean
			}
			if b.weight == 1 && t >= cum+a.weight {
				return b.mean
			}
			return a.mean + (b.mean-a.mean)*(t-lo)/(hi-lo)
		}
		cum += a.weight
	}
	last := cs[len(cs)-1]
	if last.weight == 1 {
		return last.mean
	}
	lo := d.total - last.weight/2
	if d.total-lo <= 0 {
		return d.max
	}
	return last.mean + (d.max-last.mean)*(t-lo)/(d.total-lo)
}

// quantileKeys are the quantiles reported, in order.
var quantileKeys = [...]struct {
	name string
	q    float64
}{{"p01", 0.01}, {"p10", 0.10}, {"p25", 0.25}, {"p50", 0.50}, {"p75", 0.75}, {"p90", 0.90}, {"p99", 0.99}}

// appendJSONFloat appends v as a JSON number (JSON has no NaN or Inf:
// those become 0).
func appendJSONFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, '0')
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// quantilesAcc holds a digest per group.
type quantilesAcc struct {
	ds      []tdigest
	scratch []centroid
}

func (a *quantilesAcc) Resize(n int) { a.ds = grow(a.ds, n) }
func (a *quantilesAcc) Bytes() int64 {
	b := int64(cap(a.ds)) * 80
	for i := range a.ds {
		b += int64(cap(a.ds[i].cs))*16 + int64(cap(a.ds[i].buf))*8
	}
	return b
}
func (a *quantilesAcc) Update(_ *Context, args []Value, groups []uint32, n int) error {
	groups = groups[:n]
	v := args[0]
	if !v.IsConst() && v.Array.DataType().ID() != arrow.FLOAT64 {
		vals := Int64s(v.Array)[:n]
		for i, g := range groups {
			a.add(g, float64(vals[i]))
		}
		return nil
	}
	vals, c, isConst, err := numInput[float64](v, n)
	if err != nil {
		return err
	}
	if isConst {
		for _, g := range groups {
			a.add(g, c)
		}
		return nil
	}
	vals = vals[:n]
	for i, g := range groups {
		a.add(g, vals[i])
	}
	return nil
}

func (a *quantilesAcc) add(g uint32, x float64) {
	d := &a.ds[g]
	if d.total == 0 && len(d.buf) == 0 {
		d.min, d.max = x, x
	} else if x < d.min {
		d.min = x
	} else if x > d.max {
		d.max = x
	}
	d.buf = append(d.buf, x)
	if len(d.buf) >= tdBuffer {
		d.compress(nil, &a.scratch)
	}
}

// State is: min, max (float64), then (mean, weight) float64 pairs of the
// compressed centroids. An empty digest has an empty state.
func (a *quantilesAcc) State(g int) []byte {
	d := &a.ds[g]
	d.compress(nil, &a.scratch)
	if d.total == 0 {
		return nil
	}
	b := make([]byte, 0, 16+16*len(d.cs))
	b = putU64(b, math.Float64bits(d.min))
	b = putU64(b, math.Float64bits(d.max))
	for _, c := range d.cs {
		b = putU64(b, math.Float64bits(c.mean))
		b = putU64(b, math.Float64bits(c.weight))
	}
	return b
}

func (a *quantilesAcc) MergeState(g int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < 32 || len(b)%16 != 0 {
		return errState("quantiles", b)
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])) }
	min, max := f(0), f(1)
	extra := make([]centroid, 0, len(b)/16-1)
	for i := 2; 8*i < len(b); i += 2 {
		c := centroid{f(i), f(i + 1)}
		if !(c.weight > 0) || (len(extra) > 0 && c.mean < extra[len(extra)-1].mean) {
			return errState("quantiles", b)
		}
		extra = append(extra, c)
	}
	d := &a.ds[g]
	if d.total == 0 && len(d.buf) == 0 {
		d.min, d.max = min, max
	} else {
		d.min, d.max = math.Min(d.min, min), math.Max(d.max, max)
	}
	d.compress(extra, &a.scratch)
	return nil
}

func (a *quantilesAcc) Finalize(_ *Context, n int) (Value, error) {
	sb := NewStringsBuilder(n, 100)
	for g := 0; g < n; g++ {
		d := &a.ds[g]
		d.compress(nil, &a.scratch)
		b := append(sb.Buf(), '{')
		for i, k := range quantileKeys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, k.name...)
			b = append(b, '"', ':')
			b = appendJSONFloat(b, d.quantile(k.q))
		}
		sb.Close(append(b, '}'))
	}
	return Value{Array: sb.Finish()}, nil
}
