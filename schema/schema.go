// Package schema holds Table, the description of a table a source fills,
// as the compiler, the broker and the servers consume it. The source
// tables themselves are declared beside their sources and listed by
// sources/tables; their column names, types and semantic types follow
// Pixie's data sources so that scripts written for Pixie find what they
// expect.
package schema

import t "github.com/pxq-dev/pxq/types"

// Table describes one table a source fills (see sources/tables).
type Table struct {
	Name     string
	Desc     string
	Relation t.Relation
}
