package lang

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.starlark.net/syntax"
)

// What GenerateOTelScript (export/otel.Generate) reads of a script's
// text: where it displays tables, and the time arguments of its scans,
// which an export script takes from px.plugin's window instead.

// Display is a top-level px.display(frame, 'name') statement.
type Display struct {
	// Name is the table's name, Frame the source text of the frame.
	Name, Frame string
	// End is the offset just past the line the statement ends on.
	End int
}

// Edit replaces Src[Off:End] with Text (End == Off inserts).
type Edit struct {
	Off, End int
	Text     string
}

// ExportSource returns a script's top-level px.display statements, and
// the edits that make every px.DataFrame call read px.plugin.start_time
// and px.plugin.end_time. Offsets are into src.
func ExportSource(filename string, src []byte) ([]Display, []Edit, error) {
	p := prepare(src)
	f, err := fileOptions.Parse(filename, p.src, 0)
	if err != nil {
		return nil, nil, toError(filename, err)
	}
	off := func(pos syntax.Position) int { return runeOffset(src, int(pos.Line), int(pos.Col)) }
	text := func(e syntax.Expr) string {
		start, _ := e.Span()
		return string(src[off(start):off(spanEnd(e))])
	}
	var displays []Display
	for _, stmt := range f.Stmts {
		es, ok := stmt.(*syntax.ExprStmt)
		if !ok {
			continue
		}
		call, ok := es.X.(*syntax.CallExpr)
		if !ok || !isPxAttr(call.Fn, "display") {
			continue
		}
		if len(call.Args) != 2 {
			return nil, nil, posError(filename, call.Lparen, "px.display: want px.display(df, 'name') to export it, got %d arguments", len(call.Args))
		}
		name, ok := call.Args[1].(*syntax.Literal)
		if !ok || name.Token != syntax.STRING {
			if bin, ok := call.Args[1].(*syntax.BinaryExpr); ok && bin.Op == syntax.EQ {
				name, _ = bin.Y.(*syntax.Literal)
			}
		}
		if name == nil || name.Token != syntax.STRING {
			return nil, nil, posError(filename, call.Lparen, "px.display: the table's name must be a string literal to export it")
		}
		frame := call.Args[0]
		if bin, ok := frame.(*syntax.BinaryExpr); ok && bin.Op == syntax.EQ {
			frame = bin.Y
		}
		end := off(call.Rparen)
		for end < len(src) && src[end] != '\n' {
			end++
		}
		if end < len(src) {
			end++
		}
		displays = append(displays, Display{Name: name.Value.(string), Frame: text(frame), End: end})
	}
	var edits []Edit
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || !isPxAttr(call.Fn, "DataFrame") {
			return true
		}
		// DataFrame(table, select=None, start_time=None, end_time=None)
		var missing []string
		for i, kw := range []string{"start_time", "end_time"} {
			var arg syntax.Expr
			for j, a := range call.Args {
				if bin, ok := a.(*syntax.BinaryExpr); ok && bin.Op == syntax.EQ {
					if id, ok := bin.X.(*syntax.Ident); ok && id.Name == kw {
						arg = bin.Y
					}
				} else if j == i+2 {
					arg = a
				}
			}
			if arg == nil {
				missing = append(missing, kw+"=px.plugin."+kw)
				continue
			}
			start, _ := arg.Span()
			edits = append(edits, Edit{Off: off(start), End: off(spanEnd(arg)), Text: "px.plugin." + kw})
		}
		if len(missing) > 0 {
			at := off(call.Rparen)
			sep := ", "
			j := at - 1
			for j >= 0 && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || src[j] == '\r') {
				j--
			}
			if j >= 0 && src[j] == ',' {
				sep = " "
			}
			edits = append(edits, Edit{Off: at, End: at, Text: sep + strings.Join(missing, ", ")})
		}
		return true
	})
	return displays, edits, nil
}

// spanEnd is where e ends. go.starlark.net's Span ends an index, a slice
// and a parenthesized tuple at their closing bracket, not after it.
func spanEnd(e syntax.Expr) syntax.Position {
	after := func(p syntax.Position) syntax.Position { p.Col++; return p }
	switch x := e.(type) {
	case *syntax.IndexExpr:
		return after(x.Rbrack)
	case *syntax.SliceExpr:
		return after(x.Rbrack)
	case *syntax.TupleExpr:
		if x.Lparen.IsValid() {
			return after(x.Rparen)
		}
		if len(x.List) > 0 {
			return spanEnd(x.List[len(x.List)-1])
		}
	case *syntax.BinaryExpr:
		return spanEnd(x.Y)
	case *syntax.UnaryExpr:
		if x.X != nil {
			return spanEnd(x.X)
		}
	case *syntax.CondExpr:
		return spanEnd(x.False)
	case *syntax.LambdaExpr:
		return spanEnd(x.Body)
	}
	_, end := e.Span()
	return end
}

func isPxAttr(e syntax.Expr, name string) bool {
	dot, ok := e.(*syntax.DotExpr)
	if !ok || dot.Name.Name != name {
		return false
	}
	id, ok := dot.X.(*syntax.Ident)
	return ok && (id.Name == "px" || id.Name == "pl")
}

func posError(filename string, pos syntax.Position, format string, args ...any) error {
	return &Error{File: filename, Line: int(pos.Line), Col: int(pos.Col), Msg: fmt.Sprintf(format, args...)}
}

// runeOffset returns the byte offset of a 1-based line and rune column.
func runeOffset(src []byte, line, col int) int {
	i := 0
	for l := 1; l < line && i < len(src); i++ {
		if src[i] == '\n' {
			l++
		}
	}
	for c := 1; c < col && i < len(src) && src[i] != '\n'; c++ {
		_, n := utf8.DecodeRune(src[i:])
		i += n
	}
	return i
}
