package funcs

import (
	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

type ArrayT = arrow.Array

// buildArray makes an array of type t from Go values.
func buildArray(t types.DataType, vals []any) (arrow.Array, error) {
	return valuesArray(t, vals), nil
}
