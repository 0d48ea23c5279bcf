package exec

import (
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/types"
)

func tableFuncRel(name string) types.Relation { return schema.TableFuncs[name].Relation }
