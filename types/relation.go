package types

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
)

// Column describes one column of a relation.
type Column struct {
	Name     string
	Type     DataType
	Semantic SemanticType
	Desc     string
}

// Relation is an ordered list of columns: the schema of a table or of an
// operator's output.
type Relation []Column

// Index returns the position of the named column, or -1.
func (r Relation) Index(name string) int {
	for i, c := range r {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Names returns the column names in order.
func (r Relation) Names() []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = c.Name
	}
	return out
}

// String formats r as "[name:TYPE, …]".
func (r Relation) String() string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = c.Name + ":" + c.Type.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Metadata keys under which semantic types and descriptions travel in Arrow
// field metadata.
const (
	MetaSemantic = "pxq.semantic"
	MetaDesc     = "pxq.desc"
)

// ArrowField returns the Arrow field of c, with its semantic type in the
// field metadata.
func (c Column) ArrowField() arrow.Field {
	keys := []string{MetaSemantic}
	vals := []string{strconv.Itoa(int(c.Semantic))}
	if c.Desc != "" {
		keys = append(keys, MetaDesc)
		vals = append(vals, c.Desc)
	}
	return arrow.Field{Name: c.Name, Type: c.Type.Arrow(), Nullable: false, Metadata: arrow.NewMetadata(keys, vals)}
}

// ArrowSchema returns the Arrow schema of r.
func (r Relation) ArrowSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(r))
	for i, c := range r {
		fields[i] = c.ArrowField()
	}
	return arrow.NewSchema(fields, nil)
}

// FromArrowSchema recovers a relation from an Arrow schema, reading
// semantic types from field metadata where present.
func FromArrowSchema(s *arrow.Schema) (Relation, error) {
	r := make(Relation, len(s.Fields()))
	for i, f := range s.Fields() {
		t, err := FromArrow(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		c := Column{Name: f.Name, Type: t}
		if v, ok := f.Metadata.GetValue(MetaSemantic); ok {
			n, _ := strconv.Atoi(v)
			c.Semantic = SemanticType(n)
		}
		if v, ok := f.Metadata.GetValue(MetaDesc); ok {
			c.Desc = v
		}
		if t == Time64NS && c.Semantic == STUnspecified {
			c.Semantic = STTimeNS
		}
		r[i] = c
	}
	return r, nil
}
