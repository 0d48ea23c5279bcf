// Package lang is pxq's PxL front end: it parses a script (Starlark plus
// the Python that PxL scripts use and Starlark lacks), evaluates it with
// the `px` module, and builds a typed logical plan. Errors carry the
// script's file:line:col.
package lang

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Catalog is the set of tables a script may scan.
type Catalog interface {
	// Relation returns the columns of a table.
	Relation(table string) (types.Relation, bool)
	// Tables lists the table names.
	Tables() []string
}

// Script is a parsed PxL script, ready to be compiled many times (with
// different times and arguments).
type Script struct {
	Filename string
	Source   []byte
	prog     *starlark.Program
	params   map[string]map[string]Annotation
	order    map[string][]string
	views    bool // imports pxviews
}

// Limits of a script's evaluation.
const (
	DefaultMaxSteps = 5_000_000
	DefaultMaxNodes = 5_000
)

// builtinNames are the rewrite helpers and the module names a script sees
// (guard.go's guarded holds more).
var builtinNames = []string{"px", "__eq", "__ne", "__lt", "__gt", "__le", "__ge", "__and", "__or", "__not", "__setcol"}

// Parse parses a PxL script. Errors are *Error with the script's position.
func Parse(filename string, src []byte) (*Script, error) {
	p := prepare(src)
	if p.longNumber > 0 {
		line, col := position(src, p.longNumber-1)
		return nil, &Error{File: filename, Line: line, Col: col, Msg: fmt.Sprintf("number literal longer than %d digits", maxIntDigits), cause: ErrLimit}
	}
	hasPx, views := false, false
	for _, imp := range p.imports {
		switch imp.name {
		case "px", "pl":
			hasPx = true
		case "pxtrace": // pxtrace.go
		case "pxviews":
			views = true
		default:
			return nil, &Error{File: filename, Line: imp.line, Col: imp.col, Msg: fmt.Sprintf("unknown module %q: PxL scripts import px", imp.name)}
		}
	}
	f, err := parseFixingCommas(filename, p.src)
	if err != nil {
		return nil, toError(filename, err)
	}
	if !hasPx && usesPx(f) {
		return nil, &Error{File: filename, Line: 1, Col: 1, Msg: "the script uses px but does not import it: add `import px` at the top"}
	}
	rewrite(f)
	isPredeclared := func(name string) bool {
		for _, n := range builtinNames {
			if n == name {
				return true
			}
		}
		return name == "pl" || name == "pxviews" && views || name == "pxtrace" || guarded.Has(name)
	}
	prog, err := starlark.FileProgram(f, isPredeclared)
	if err != nil {
		return nil, toError(filename, err)
	}
	return &Script{Filename: filename, Source: src, prog: prog, params: p.params, order: p.order, views: views}, nil
}

var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// parseFixingCommas parses src; where the parser stops at a token that
// follows a call argument on the previous line without a comma (which
// Pixie's parser tolerates), it inserts the comma at the end of that line
// and tries again. Inserting at a line's end moves nothing that follows.
func parseFixingCommas(filename string, src []byte) (*syntax.File, error) {
	buf := append([]byte(nil), src...)
	var firstErr error
	for attempt := 0; attempt < 50; attempt++ {
		f, err := fileOptions.Parse(filename, buf, syntax.RetainComments)
		if err == nil {
			return f, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		se, ok := err.(syntax.Error)
		if ok && strings.Contains(se.Msg, "unparenthesized tuple with trailing comma") {
			// df['a', 'b',]: Python allows the trailing comma of a
			// subscript's tuple; a space in its place moves nothing.
			if off := offset(buf, int(se.Pos.Line), int(se.Pos.Col)); off < len(buf) && buf[off] == ',' {
				buf[off] = ' '
				continue
			}
			return nil, firstErr
		}
		if !ok || !strings.Contains(se.Msg, "want ','") && !strings.Contains(se.Msg, "want ')'") {
			return nil, firstErr
		}
		// The parser reports the end of the unexpected token; it must be
		// the first token of its line, after an argument that ended the
		// previous one.
		off := offset(buf, int(se.Pos.Line), int(se.Pos.Col))
		lineStart := offset(buf, int(se.Pos.Line), 1)
		j := lineStart
		for j < len(buf) && (buf[j] == ' ' || buf[j] == '\t') {
			j++
		}
		sc := &scanner{b: buf, i: j, started: true}
		if tok := sc.scan(); tok.off+len(tok.text) != off || lineStart == 0 {
			return nil, firstErr
		}
		i := lineStart - 1
		end := lastCodeByte(buf, i)
		if end < 0 {
			return nil, firstErr
		}
		switch buf[end] {
		case ',', '(', '[', '{':
			return nil, firstErr
		}
		buf = append(buf[:end+1], append([]byte{','}, buf[end+1:]...)...)
	}
	return nil, firstErr
}

// lastCodeByte returns the offset of the last non-space byte before the
// newline at nl that is not in a comment, or -1.
func lastCodeByte(b []byte, nl int) int {
	start := nl - 1
	for start >= 0 && b[start] != '\n' {
		start--
	}
	line := b[start+1 : nl]
	end := len(line)
	inStr := byte(0)
	for j := 0; j < len(line); j++ {
		c := line[j]
		if inStr != 0 {
			if c == '\\' {
				j++
			} else if c == inStr {
				inStr = 0
			}
			continue
		}
		if c == '"' || c == '\'' {
			inStr = c
		} else if c == '#' {
			end = j
			break
		}
	}
	j := end - 1
	for j >= 0 && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r') {
		j--
	}
	if j < 0 {
		return -1
	}
	return start + 1 + j
}

func usesPx(f *syntax.File) bool {
	found := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok && id.Name == "px" {
			found = true
		}
		return !found
	})
	return found
}

// FuncCall asks for a script function to be called with string arguments
// (converted by the parameters' annotations) and its result named Output
// (a list of frames becomes Output[0], Output[1], …).
type FuncCall struct {
	Func   string
	Args   map[string]string
	Output string
}

// Options control one compilation.
type Options struct {
	Now     time.Time
	Catalog Catalog
	// VisMode makes top-level px.display a no-op: the outputs are the
	// results of Calls (the vis spec's functions).
	VisMode  bool
	Calls    []FuncCall
	MaxSteps uint64
	MaxNodes int
	// MaxMemory is the byte budget of the values the script builds
	// (budget.go); 0 means DefaultMaxMemory.
	MaxMemory int64
	// MaxOutputs caps the script's outputs (px.display, px.debug and the
	// frames its vis functions return); 0 means DefaultMaxOutputs.
	MaxOutputs int
	// Context, if set, cancels the evaluation when it is done.
	Context context.Context
	// PluginStart and PluginEnd are px.plugin.start_time and end_time,
	// the window a scheduled export covers (Pixie's plugin_config); zero:
	// DefaultPluginWindow up to Now.
	PluginStart, PluginEnd time.Time
	// Mutations, if set, receives the script's pxtrace calls.
	Mutations *Mutations
}

// Compile evaluates the script and returns its logical plan.
func (s *Script) Compile(opts Options) (*plan.Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	b := &builder{file: s.Filename, now: opts.Now, catalog: opts.Catalog, visMode: opts.VisMode || len(opts.Calls) > 0,
		names: map[string]int{}, maxNodes: opts.MaxNodes, maxOutputs: opts.MaxOutputs, plugin: [2]time.Time{opts.PluginStart, opts.PluginEnd}}
	if b.maxNodes == 0 {
		b.maxNodes = DefaultMaxNodes
	}
	if b.maxOutputs <= 0 {
		b.maxOutputs = DefaultMaxOutputs
	}
	th := &starlark.Thread{Name: s.Filename, Print: func(*starlark.Thread, string) {}}
	steps := opts.MaxSteps
	if steps == 0 {
		steps = DefaultMaxSteps
	}
	th.SetMaxExecutionSteps(steps)
	memory := opts.MaxMemory
	if memory <= 0 {
		memory = DefaultMaxMemory
	}
	newBudget(th, memory)
	if opts.Context != nil {
		stop := context.AfterFunc(opts.Context, func() { th.Cancel(context.Cause(opts.Context).Error()) })
		defer stop()
	}
	b.thread = th
	px := newPxModule(b)
	predeclared := make(starlark.StringDict, len(guarded)+16)
	for name, v := range guarded {
		predeclared[name] = v
	}
	predeclared["px"], predeclared["pl"] = px, px
	for name, fn := range map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"__eq": cmpBuiltin(syntax.EQL), "__ne": cmpBuiltin(syntax.NEQ), "__lt": cmpBuiltin(syntax.LT),
		"__gt": cmpBuiltin(syntax.GT), "__le": cmpBuiltin(syntax.LE), "__ge": cmpBuiltin(syntax.GE),
		"__and": logicalBuiltin("logicalAnd"), "__or": logicalBuiltin("logicalOr"),
		"__not": fixedArgs(1, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			v, err := logicalNot(args[0])
			return checked(th, v, err)
		}),
		"__setcol": setcolBuiltin,
	} {
		predeclared[name] = starlark.NewBuiltin(name, fn)
	}
	predeclared["pxtrace"] = newPxtraceModule(b)
	if s.views {
		m, err := viewsModule(th, predeclared)
		if err != nil {
			return nil, toError(s.Filename, err)
		}
		predeclared["pxviews"] = m
	}
	globals, err := s.prog.Init(th, predeclared)
	if err != nil {
		return nil, toError(s.Filename, err)
	}
	for _, c := range opts.Calls {
		if err := s.call(th, b, globals, c); err != nil {
			return nil, toError(s.Filename, err)
		}
	}
	if opts.Mutations != nil {
		opts.Mutations.Tracepoints = b.tracepoints
	}
	if len(b.sinks) == 0 && len(b.tracepoints) == 0 {
		msg := "the script produces no output: call px.display(df, 'name')"
		if b.visMode {
			msg = "the script produces no output: its vis spec calls no function that returns a DataFrame"
		}
		return nil, &Error{File: s.Filename, Msg: msg}
	}
	return &plan.Plan{Sinks: b.sinks, Now: opts.Now.UnixNano()}, nil
}

// Funcs lists the functions a script defines with their parameters and
// annotations, in order.
func (s *Script) Funcs() map[string][]Param {
	out := map[string][]Param{}
	for fn, names := range s.order {
		ps := make([]Param, len(names))
		for i, n := range names {
			ps[i] = Param{Name: n, Annotation: s.params[fn][n]}
		}
		out[fn] = ps
	}
	return out
}

// Param is a function parameter and its annotation as written.
type Param struct {
	Name       string
	Annotation string
}

func (s *Script) call(th *starlark.Thread, b *builder, globals starlark.StringDict, c FuncCall) error {
	v, ok := globals[c.Func]
	if !ok {
		var defined []string
		for name, g := range globals {
			if _, ok := g.(*starlark.Function); ok {
				defined = append(defined, name)
			}
		}
		sort.Strings(defined)
		return &Error{File: s.Filename, Msg: fmt.Sprintf("the script has no function %q%s; it defines: %s", c.Func, didYouMean(c.Func, defined), strings.Join(defined, ", "))}
	}
	fn, ok := v.(*starlark.Function)
	if !ok {
		return &Error{File: s.Filename, Msg: fmt.Sprintf("%q is a %s, not a function", c.Func, v.Type())}
	}
	pos := fn.Position()
	ferr := func(format string, args ...any) error {
		return &Error{File: s.Filename, Line: int(pos.Line), Col: int(pos.Col), Msg: fmt.Sprintf(format, args...)}
	}
	limitErr := func(err error) error {
		return &Error{File: s.Filename, Line: int(pos.Line), Col: int(pos.Col), Msg: err.Error(), cause: ErrLimit}
	}
	var kwargs []starlark.Tuple
	names := make([]string, 0, len(c.Args))
	for n := range c.Args {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		known := false
		for i := 0; i < fn.NumParams(); i++ {
			if pn, _ := fn.Param(i); pn == name {
				known = true
			}
		}
		if !known {
			return ferr("function %s has no parameter %q", c.Func, name)
		}
		val, err := convertArg(c.Args[name], s.params[c.Func][name])
		if err != nil {
			return ferr("argument %s of %s: %v", name, c.Func, err)
		}
		kwargs = append(kwargs, starlark.Tuple{starlark.String(name), val})
	}
	out, err := starlark.Call(th, fn, nil, kwargs)
	if err != nil {
		return err
	}
	prefix := c.Output
	if prefix == "" {
		prefix = c.Func
	}
	switch out := out.(type) {
	case *DataFrame:
		if err := b.addSink(out, prefix); err != nil {
			return limitErr(err)
		}
	case *starlark.List, starlark.Tuple:
		it := out.(starlark.Iterable).Iterate()
		defer it.Done()
		var x starlark.Value
		for i := 0; it.Next(&x); i++ {
			df, ok := x.(*DataFrame)
			if !ok {
				return ferr("function %s returned a list holding a %s; it must hold DataFrames", c.Func, x.Type())
			}
			if err := b.addSink(df, fmt.Sprintf("%s[%d]", prefix, i)); err != nil {
				return limitErr(err)
			}
		}
	default:
		return ferr("function %s must return a DataFrame (or a list of them), it returned %s", c.Func, out.Type())
	}
	return nil
}

// convertArg converts a string argument by its parameter's annotation:
// int, float and bool are parsed; str, px entity types and unannotated
// parameters stay strings.
func convertArg(s, ann string) (starlark.Value, error) {
	switch ann {
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return starlark.MakeInt64(n), nil
	case "float":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return starlark.Float(f), nil
	case "bool":
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "t", "yes", "y", "1":
			return starlark.True, nil
		case "false", "f", "no", "n", "0":
			return starlark.False, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", s)
	}
	return starlark.String(s), nil
}

func cmpBuiltin(op syntax.Token) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return fixedArgs(2, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		v, err := compare(op, args[0], args[1])
		return checked(th, v, err)
	})
}

func logicalBuiltin(fn string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return fixedArgs(2, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		v, err := logical(fn, args[0], args[1])
		return checked(th, v, err)
	})
}

// setcolBuiltin implements the rewritten `df.c = e` / `df['c'] = e`. On
// a dict, a list or a value with fields it does what the assignment
// does, and returns the value.
func setcolBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 3 || len(kwargs) != 0 {
		return nil, fmt.Errorf("%s is pxq's own and takes 3 positional arguments", b.Name())
	}
	if m, ok := args[0].(*pxModule); ok {
		// px.Pod = str: scripts shim names onto the module; the module is
		// the script's own.
		name, ok := args[1].(starlark.String)
		if !ok {
			return nil, fmt.Errorf("px attribute names are strings, got %s", args[1].Type())
		}
		return m, m.SetField(string(name), args[2])
	}
	df, ok := args[0].(*DataFrame)
	if !ok {
		return setItem(args[0], args[1], args[2])
	}
	name, ok := args[1].(starlark.String)
	if !ok {
		return nil, fmt.Errorf("a column name must be a string, got %s", args[1].Type())
	}
	return df.setColumn(string(name), args[2])
}

// setItem is x[k] = v (or x.k = v for a value with fields) on a value
// that is not a DataFrame.
func setItem(x, k, v starlark.Value) (starlark.Value, error) {
	switch x := x.(type) {
	case starlark.HasSetKey:
		if err := checkKey(k); err != nil {
			return nil, err
		}
		return x, x.SetKey(k, v)
	case starlark.HasSetIndex:
		i, err := starlark.AsInt32(k)
		if err != nil {
			return nil, fmt.Errorf("%s index: %v", x.Type(), err)
		}
		n := x.Len()
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("%s index %s out of range [0:%d]", x.Type(), k, n)
		}
		return x, x.SetIndex(i, v)
	case starlark.HasSetField:
		if name, ok := k.(starlark.String); ok {
			return x, x.SetField(string(name), v)
		}
	}
	return nil, fmt.Errorf("cannot assign a field or item of a %s", x.Type())
}

// builder holds the state of one compilation.
type builder struct {
	file     string
	now      time.Time
	catalog  Catalog
	visMode  bool
	sinks    []*plan.Sink
	names    map[string]int
	nodes    int
	maxNodes int
	thread   *starlark.Thread
	// maxOutputs caps len(sinks).
	maxOutputs int
	// plugin is the window of px.plugin.start_time and end_time.
	plugin [2]time.Time
	// tracepoints are the script's pxtrace calls (pxtrace.go).
	tracepoints []Tracepoint
}

// pos returns the position in the script of the call being evaluated.
func (b *builder) pos() plan.Pos {
	if b.thread != nil {
		stack := b.thread.CallStack()
		for i := len(stack) - 1; i >= 0; i-- {
			if p := stack[i].Pos; p.Line > 0 && p.Filename() == b.file {
				return plan.Pos{File: b.file, Line: p.Line, Col: p.Col}
			}
		}
	}
	return plan.Pos{File: b.file}
}

func (b *builder) count() error {
	b.nodes++
	if b.nodes > b.maxNodes {
		return &limitError{msg: fmt.Sprintf("the script builds more than %d plan operations", b.maxNodes)}
	}
	return nil
}

// addSink names an output table; a name used twice gets a suffix.
func (b *builder) addSink(df *DataFrame, name string) error {
	if len(b.sinks) >= b.maxOutputs {
		return &limitError{msg: fmt.Sprintf("a script may have at most %d outputs", b.maxOutputs)}
	}
	if n := b.names[name]; n > 0 {
		b.names[name]++
		name = fmt.Sprintf("%s_%d", name, n)
	} else {
		b.names[name] = 1
	}
	b.sinks = append(b.sinks, &plan.Sink{Input: df.node, Name: name, Pos: b.pos()})
	return nil
}
