package table

import (
	"fmt"
	"math"
	"reflect"
	"sync/atomic"

	"github.com/pxq-dev/pxq/types"
)

// Decl declares a table that a source fills: its name, its description
// and its columns. The columns are the fields of a struct of typed
// handles, in order, with their names and meanings in tags:
//
//	var cols struct {
//		Time    table.TimeCol  `col:"time_" sem:"ST_TIME_NS" desc:"When the request ended"`
//		Latency table.Int64Col `col:"latency" sem:"ST_DURATION_NS" desc:"Time to the response"`
//	}
//	var Events = table.Declare("my_events", "My requests", &cols)
//
// A source sets a row's values through the handles (cols.Latency.Set(r,
// ns)), so a value can only go to a column of its type and a column's
// position is known only to the declaration. Embedded structs of handles
// declare their columns in place (the connection columns every protocol
// table starts with). Declare reads the struct once, the way cilium/ebpf
// assigns programs to tagged fields.
type Decl struct {
	id   uint32
	name string
	desc string
	rel  types.Relation
}

// declIDs numbers declarations, so that a handle of one table used on a
// row of another is caught.
var declIDs atomic.Uint32

// Declare declares the table name whose columns are the fields of the
// struct cols points to, and sets every handle in it. It panics on a
// malformed declaration (a field that is not a handle, a column without
// a name or description, a name used twice): declarations are package
// variables, so the program fails as it starts.
func Declare(name, desc string, cols any) *Decl {
	d := &Decl{id: declIDs.Add(1), name: name, desc: desc}
	v := reflect.ValueOf(cols)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("table.Declare(%s): cols is a %T, want a pointer to a struct of column handles", name, cols))
	}
	d.fields(v.Elem())
	if len(d.rel) == 0 {
		panic(fmt.Sprintf("table.Declare(%s): no columns", name))
	}
	return d
}

// handleTypes maps each handle type to its column type and constructor.
var handleTypes = map[reflect.Type]struct {
	typ  types.DataType
	make func(col) any
}{
	reflect.TypeFor[TimeCol]():    {types.Time64NS, func(c col) any { return TimeCol{c} }},
	reflect.TypeFor[Int64Col]():   {types.Int64, func(c col) any { return Int64Col{c} }},
	reflect.TypeFor[Float64Col](): {types.Float64, func(c col) any { return Float64Col{c} }},
	reflect.TypeFor[BoolCol]():    {types.Boolean, func(c col) any { return BoolCol{c} }},
	reflect.TypeFor[StringCol]():  {types.String, func(c col) any { return StringCol{c} }},
	reflect.TypeFor[UInt128Col](): {types.UInt128, func(c col) any { return UInt128Col{c} }},
}

func (d *Decl) fields(s reflect.Value) {
	st := s.Type()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		ht, ok := handleTypes[f.Type]
		if !ok {
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("col") == "" {
				d.fields(s.Field(i))
				continue
			}
			panic(fmt.Sprintf("table.Declare(%s): field %s is a %v, not a column handle", d.name, f.Name, f.Type))
		}
		name, desc := f.Tag.Get("col"), f.Tag.Get("desc")
		if name == "" || desc == "" {
			panic(fmt.Sprintf("table.Declare(%s): field %s needs col and desc tags", d.name, f.Name))
		}
		if d.rel.Index(name) >= 0 {
			panic(fmt.Sprintf("table.Declare(%s): column %s declared twice", d.name, name))
		}
		sem := types.STNone
		if s := f.Tag.Get("sem"); s != "" {
			var err error
			if sem, err = types.ParseSemanticType(s); err != nil {
				panic(fmt.Sprintf("table.Declare(%s): column %s: %v", d.name, name, err))
			}
		}
		if !s.Field(i).CanSet() {
			panic(fmt.Sprintf("table.Declare(%s): field %s is not exported", d.name, f.Name))
		}
		h := col{decl: d.id, i: uint32(len(d.rel))}
		d.rel = append(d.rel, types.Column{Name: name, Type: ht.typ, Semantic: sem, Desc: desc})
		s.Field(i).Set(reflect.ValueOf(ht.make(h)))
	}
}

// Name returns the table's name.
func (d *Decl) Name() string { return d.name }

// Desc returns the table's description.
func (d *Decl) Desc() string { return d.desc }

// Relation returns the table's columns, in order.
func (d *Decl) Relation() types.Relation { return append(types.Relation(nil), d.rel...) }

// Create creates the table in s (or finds it there, if it was created
// with the same columns) and returns a writer of its rows.
func (d *Decl) Create(s *Store) (*Writer, error) {
	t, err := s.Create(d.name, d.Relation(), Options{Desc: d.desc})
	if err != nil {
		return nil, err
	}
	return d.Writer(t)
}

// Writer returns a writer of the declared rows into t, which must have
// the declared columns: same names and types, in the same order.
func (d *Decl) Writer(t *Table) (*Writer, error) {
	if len(t.rel) != len(d.rel) {
		return nil, fmt.Errorf("table %s has %d columns, its declaration %d", t.name, len(t.rel), len(d.rel))
	}
	for i, c := range d.rel {
		if t.rel[i].Name != c.Name || t.rel[i].Type != c.Type {
			return nil, fmt.Errorf("table %s column %d is %s %v, declared %s %v", t.name, i, t.rel[i].Name, t.rel[i].Type, c.Name, c.Type)
		}
	}
	w := NewWriter(t)
	w.decl = d
	return w, nil
}

// col locates a column: its declaration and its index there.
type col struct {
	decl uint32
	i    uint32
}

// Column handles, one type per data type: a row's value for the column is
// set with the handle's Set.
type (
	TimeCol    struct{ c col }
	Int64Col   struct{ c col }
	Float64Col struct{ c col }
	BoolCol    struct{ c col }
	StringCol  struct{ c col }
	UInt128Col struct{ c col }
)

// Set sets the column of r to ns, nanoseconds since the epoch.
func (h TimeCol) Set(r *Row, ns int64) { r.set(h.c).i = ns }

// Set sets the column of r to v.
func (h Int64Col) Set(r *Row, v int64) { r.set(h.c).i = v }

// Set sets the column of r to v.
func (h Float64Col) Set(r *Row, v float64) { r.set(h.c).i = int64(math.Float64bits(v)) }

// Set sets the column of r to v.
func (h BoolCol) Set(r *Row, v bool) {
	x := int64(0)
	if v {
		x = 1
	}
	r.set(h.c).i = x
}

// Set sets the column of r to s.
func (h StringCol) Set(r *Row, s string) {
	v := r.set(h.c)
	v.s, v.b, v.bytes = s, nil, false
}

// SetBytes sets the column of r to the string held in b, which is read
// at End (not copied before): b must not change until then.
func (h StringCol) SetBytes(r *Row, b []byte) {
	v := r.set(h.c)
	v.s, v.b, v.bytes = "", b, true
}

// Set sets the column of r to v.
func (h UInt128Col) Set(r *Row, v types.UInt128Value) { r.set(h.c).u = v }
