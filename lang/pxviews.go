package lang

import (
	_ "embed"
	"fmt"
	"sync"

	"go.starlark.net/starlark"
)

// pxviewsSource is the pxviews module: PxL functions over pxq's tables
// with the names and result columns of Pixie's views.
//
//go:embed pxviews.pxl
var pxviewsSource []byte

var pxviews struct {
	once   sync.Once
	script *Script
	err    error
}

// viewsModule evaluates pxviews.pxl in a script's compilation (its
// thread, so its budget, and its px) and returns the module value that
// `import pxviews` binds.
func viewsModule(th *starlark.Thread, predeclared starlark.StringDict) (starlark.Value, error) {
	pxviews.once.Do(func() {
		pxviews.script, pxviews.err = Parse("pxviews.pxl", pxviewsSource)
	})
	if pxviews.err != nil {
		return nil, fmt.Errorf("the pxviews module does not compile: %w", pxviews.err)
	}
	globals, err := pxviews.script.prog.Init(th, predeclared)
	if err != nil {
		return nil, err
	}
	attrs := starlark.StringDict{}
	for name, v := range globals {
		if _, ok := v.(*starlark.Function); ok {
			attrs[name] = v
		}
	}
	return &moduleValue{name: "pxviews", attrs: attrs}, nil
}
