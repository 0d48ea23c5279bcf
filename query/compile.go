package query

import (
	"context"
	"fmt"

	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/planner"
)

// Compile parses and compiles req against cat into an optimized plan,
// with the compiler's limits of lim. req.Now must be set.
func Compile(req Request, cat lang.Catalog, lim Limits) (*plan.Plan, error) {
	return compile(nil, req, cat, lim.withDefaults(), true, nil)
}

// CompileLogical compiles req into its logical (unoptimized) plan.
func CompileLogical(req Request, cat lang.Catalog, lim Limits) (*plan.Plan, error) {
	return compile(nil, req, cat, lim.withDefaults(), false, nil)
}

// compile compiles req; ctx, when not nil, cancels the script's
// evaluation, and muts, when not nil, receives its pxtrace calls.
func compile(ctx context.Context, req Request, cat lang.Catalog, lim Limits, optimize bool, muts *lang.Mutations) (*plan.Plan, error) {
	sc := req.Script
	if sc == nil {
		return nil, Mistake("", "no script")
	}
	s, err := lang.Parse(sc.Path, sc.PXL)
	if err != nil {
		return nil, err
	}
	opts := lang.Options{Now: req.Now, Catalog: cat, Context: ctx, PluginStart: req.PluginStart, PluginEnd: req.PluginEnd, Mutations: muts}
	lim.compilerOptions(&opts)
	switch {
	case len(req.Funcs) > 0:
		opts.Calls = req.Funcs
	case sc.Vis != nil && (len(sc.Vis.GlobalFuncs) > 0 || len(sc.Vis.Widgets) > 0):
		calls, err := sc.Vis.Calls(req.Args)
		if err != nil {
			return nil, Mistake(sc.Path, "%v", err)
		}
		opts.Calls = calls
	case len(req.Args) > 0:
		for k := range req.Args {
			return nil, Mistake(sc.Path, "argument %q given, but the script has no vis spec with variables", k)
		}
	}
	p, err := s.Compile(opts)
	if err != nil || !optimize {
		return p, err
	}
	opt, err := planner.Optimize(p)
	if err != nil {
		return nil, fmt.Errorf("optimizing %s: %w", sc.Name, err)
	}
	return opt, nil
}

// Mistake is a script's or a request's mistake found before it ran, with
// no position: an unknown script, a bad argument.
func Mistake(file, format string, args ...any) *lang.Error {
	return &lang.Error{File: file, Msg: fmt.Sprintf(format, args...)}
}
