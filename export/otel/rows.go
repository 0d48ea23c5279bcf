package otel

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// cols finds the columns of an export sink's input by name.
type cols struct {
	rel types.Relation
}

// index returns the position of column name, or -1 for "".
func (c cols) index(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	i := c.rel.Index(name)
	if i < 0 {
		return -1, fmt.Errorf("the export reads column %q, which its input lacks", name)
	}
	return i, nil
}

// attr is an attribute of the mapping resolved against a relation.
type attr struct {
	key   attribute.Key
	col   int // -1: the constant
	value attribute.Value
	// service marks a ST_SERVICE_NAME column, whose values may be a JSON
	// array of services (a pod behind several).
	service bool
}

func (c cols) attrs(as []plan.OTelAttr) ([]attr, error) {
	out := make([]attr, 0, len(as))
	for _, a := range as {
		i, err := c.index(a.Column)
		if err != nil {
			return nil, err
		}
		x := attr{key: attribute.Key(a.Name), col: i}
		if i < 0 {
			x.value = attribute.StringValue(a.Value)
		} else {
			x.service = c.rel[i].Semantic == types.STServiceName
		}
		out = append(out, x)
	}
	return out, nil
}

// value reads an attribute of row r: strings, numbers and booleans keep
// their types; times are ns since the epoch.
func (a attr) read(rec arrow.Record, r int) attribute.KeyValue {
	if a.col < 0 {
		return attribute.KeyValue{Key: a.key, Value: a.value}
	}
	switch x := rec.Column(a.col).(type) {
	case *array.String:
		return a.key.String(x.Value(r))
	case *array.Int64:
		return a.key.Int64(x.Value(r))
	case *array.Float64:
		return a.key.Float64(x.Value(r))
	case *array.Boolean:
		return a.key.Bool(x.Value(r))
	case *array.Timestamp:
		return a.key.Int64(int64(x.Value(r)))
	}
	return a.key.String(rec.Column(a.col).ValueStr(r))
}

// number reads column i of row r as a float64 (0 for a missing column).
func number(rec arrow.Record, i, r int) float64 {
	switch x := col(rec, i).(type) {
	case *array.Int64:
		return float64(x.Value(r))
	case *array.Float64:
		return x.Value(r)
	case *array.Timestamp:
		return float64(x.Value(r))
	}
	return 0
}

// integer reads column i of row r as an int64.
func integer(rec arrow.Record, i, r int) int64 {
	switch x := col(rec, i).(type) {
	case *array.Int64:
		return x.Value(r)
	case *array.Float64:
		return int64(x.Value(r))
	case *array.Timestamp:
		return int64(x.Value(r))
	}
	return 0
}

// text reads column i of row r as a string.
func text(rec arrow.Record, i, r int) string {
	if x, ok := col(rec, i).(*array.String); ok {
		return x.Value(r)
	}
	return ""
}

// timeAt reads a TIME64NS (or INT64 ns) column, or gives def.
func timeAt(rec arrow.Record, i, r int, def time.Time) time.Time {
	if i < 0 {
		return def
	}
	return time.Unix(0, integer(rec, i, r))
}

func col(rec arrow.Record, i int) arrow.Array {
	if i < 0 {
		return nil
	}
	return rec.Column(i)
}
