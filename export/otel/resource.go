package otel

import (
	"encoding/json"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
)

// resources interns the resources of an export's rows: each distinct set
// of resource attribute values is one resource.
type resources struct {
	attrs []attr
	index map[attribute.Distinct]int
	list  []*resource.Resource
	kv    []attribute.KeyValue // scratch
}

func newResources(attrs []attr) *resources {
	return &resources{attrs: attrs, index: map[attribute.Distinct]int{}}
}

// of appends to dst the resources row r belongs to: one, or one per
// service when a service column holds a JSON array of them (a pod
// behind several services), as Pixie exports it.
func (rs *resources) of(dst []int, rec arrow.Record, r int) []int {
	rs.kv = rs.kv[:0]
	split, services := -1, []string(nil)
	for i, a := range rs.attrs {
		kv := a.read(rec, r)
		if a.service && split < 0 {
			if s := kv.Value.AsString(); strings.HasPrefix(s, "[") {
				var list []string
				if json.Unmarshal([]byte(s), &list) == nil && len(list) > 0 {
					split, services = i, list
				}
			}
		}
		rs.kv = append(rs.kv, kv)
	}
	if split < 0 {
		return append(dst, rs.intern(rs.kv))
	}
	for _, s := range services {
		rs.kv[split].Value = attribute.StringValue(s)
		dst = append(dst, rs.intern(rs.kv))
	}
	return dst
}

func (rs *resources) intern(kv []attribute.KeyValue) int {
	set := attribute.NewSet(kv...)
	if i, ok := rs.index[set.Equivalent()]; ok {
		return i
	}
	i := len(rs.list)
	rs.index[set.Equivalent()] = i
	rs.list = append(rs.list, resource.NewSchemaless(set.ToSlice()...))
	return i
}
