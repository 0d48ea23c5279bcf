// Package relation converts relations (types.Relation) to and from the
// pxq.plan.v1.Column lists that pxq's services carry.
package relation

import (
	"fmt"

	"github.com/pxq-dev/pxq/api/planpb"
	"github.com/pxq-dev/pxq/types"
)

// ToPB returns r's columns as protobuf messages.
func ToPB(r types.Relation) []*planpb.Column {
	out := make([]*planpb.Column, len(r))
	for i, c := range r {
		out[i] = &planpb.Column{Name: c.Name, Type: planpb.DataType(c.Type), Semantic: int32(c.Semantic), Desc: c.Desc}
	}
	return out
}

// FromPB returns the relation of protobuf columns, checking their types.
func FromPB(cols []*planpb.Column) (types.Relation, error) {
	out := make(types.Relation, len(cols))
	for i, c := range cols {
		t := types.DataType(c.GetType())
		if t <= types.Unknown || t > types.Time64NS {
			return nil, fmt.Errorf("column %q: unknown data type %d", c.GetName(), c.GetType())
		}
		out[i] = types.Column{Name: c.GetName(), Type: t, Semantic: types.SemanticType(c.GetSemantic()), Desc: c.GetDesc()}
	}
	return out, nil
}
