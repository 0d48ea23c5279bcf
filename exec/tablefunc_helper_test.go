package exec

import (
	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/types"
)

func tableFuncRel(name string) types.Relation { return tablefuncs.Lookup(name).Relation }
