package lang

import (
	"go.starlark.net/syntax"
)

// rewrite changes a parsed file so that PxL's meaning survives Starlark's
// evaluation, which cannot overload comparisons, boolean keywords or field
// assignment on values:
//
//   - x == y, x < y, … become __eq(x, y), __lt(x, y), …
//   - x and y, x or y, not x become __and(x, y), __or(x, y), __not(x)
//   - df.c = e and df['c'] = e become df = __setcol(df, 'c', e)
//     (and df.c += e becomes df = __setcol(df, 'c', df.c + e))
//
// The builtins build column expressions when an operand is a column and
// keep Python's meaning otherwise. New nodes take the position of the
// operator they replace, so errors still point at the user's text.
func rewrite(f *syntax.File) {
	for i, s := range f.Stmts {
		f.Stmts[i] = rewriteStmt(s)
	}
}

var cmpBuiltins = map[syntax.Token]string{
	syntax.EQL: "__eq", syntax.NEQ: "__ne", syntax.LT: "__lt",
	syntax.GT: "__gt", syntax.LE: "__le", syntax.GE: "__ge",
}

func rewriteStmts(ss []syntax.Stmt) {
	for i, s := range ss {
		ss[i] = rewriteStmt(s)
	}
}

func rewriteStmt(s syntax.Stmt) syntax.Stmt {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		s.RHS = rewriteExpr(s.RHS)
		switch lhs := s.LHS.(type) {
		case *syntax.DotExpr:
			if id, ok := lhs.X.(*syntax.Ident); ok {
				name := &syntax.Literal{Token: syntax.STRING, TokenPos: lhs.NamePos, Raw: `"` + lhs.Name.Name + `"`, Value: lhs.Name.Name}
				return setcol(s, id, name, lhs)
			}
			lhs.X = rewriteExpr(lhs.X)
		case *syntax.IndexExpr:
			if id, ok := lhs.X.(*syntax.Ident); ok {
				return setcol(s, id, rewriteExpr(lhs.Y), lhs)
			}
			lhs.X = rewriteExpr(lhs.X)
			lhs.Y = rewriteExpr(lhs.Y)
		default:
			s.LHS = rewriteExpr(s.LHS)
		}
	case *syntax.ExprStmt:
		s.X = rewriteExpr(s.X)
	case *syntax.DefStmt:
		for _, p := range s.Params {
			if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				b.Y = rewriteExpr(b.Y)
			}
		}
		rewriteStmts(s.Body)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = rewriteExpr(s.Result)
		}
	case *syntax.IfStmt:
		s.Cond = rewriteExpr(s.Cond)
		rewriteStmts(s.True)
		rewriteStmts(s.False)
	case *syntax.ForStmt:
		s.X = rewriteExpr(s.X)
		rewriteStmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = rewriteExpr(s.Cond)
		rewriteStmts(s.Body)
	}
	return s
}

// setcol turns `id.c op= rhs` / `id[key] op= rhs` into
// `id = __setcol(id, key, rhs')`.
func setcol(s *syntax.AssignStmt, id *syntax.Ident, key syntax.Expr, target syntax.Expr) syntax.Stmt {
	rhs := s.RHS
	if s.Op != syntax.EQ {
		// Augmented assignment: read the current column, apply the operator.
		var read syntax.Expr
		switch t := target.(type) {
		case *syntax.DotExpr:
			read = &syntax.DotExpr{X: ident(id.Name, id.NamePos), Dot: t.Dot, NamePos: t.NamePos, Name: ident(t.Name.Name, t.NamePos)}
		case *syntax.IndexExpr:
			read = &syntax.IndexExpr{X: ident(id.Name, id.NamePos), Lbrack: t.Lbrack, Y: key, Rbrack: t.Rbrack}
		}
		rhs = &syntax.BinaryExpr{X: read, OpPos: s.OpPos, Op: s.Op - syntax.PLUS_EQ + syntax.PLUS, Y: rhs}
	}
	call := &syntax.CallExpr{
		Fn:     ident("__setcol", s.OpPos),
		Lparen: s.OpPos,
		Args:   []syntax.Expr{id, key, rhs},
		Rparen: s.OpPos,
	}
	if id.Name == "px" {
		// px.Pod = str changes the module in place; rebinding px would make
		// it a local of the function the statement is in.
		return &syntax.ExprStmt{X: call}
	}
	return &syntax.AssignStmt{OpPos: s.OpPos, Op: syntax.EQ, LHS: ident(id.Name, id.NamePos), RHS: call}
}

func ident(name string, pos syntax.Position) *syntax.Ident {
	return &syntax.Ident{NamePos: pos, Name: name}
}

func call(name string, pos syntax.Position, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{Fn: ident(name, pos), Lparen: pos, Args: args, Rparen: pos}
}

func rewriteExprs(xs []syntax.Expr) {
	for i, x := range xs {
		xs[i] = rewriteExpr(x)
	}
}

func rewriteExpr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		e.X = rewriteExpr(e.X)
		e.Y = rewriteExpr(e.Y)
		if fn, ok := cmpBuiltins[e.Op]; ok {
			return call(fn, e.OpPos, e.X, e.Y)
		}
		switch e.Op {
		case syntax.AND:
			return call("__and", e.OpPos, e.X, e.Y)
		case syntax.OR:
			return call("__or", e.OpPos, e.X, e.Y)
		}
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = rewriteExpr(e.X)
		}
		if e.Op == syntax.NOT {
			return call("__not", e.OpPos, e.X)
		}
	case *syntax.CallExpr:
		e.Fn = rewriteExpr(e.Fn)
		for i, a := range e.Args {
			if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				b.Y = rewriteExpr(b.Y) // named argument k=v
				continue
			}
			e.Args[i] = rewriteExpr(a)
		}
	case *syntax.DotExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.IndexExpr:
		e.X = rewriteExpr(e.X)
		e.Y = rewriteExpr(e.Y)
	case *syntax.SliceExpr:
		e.X = rewriteExpr(e.X)
		for _, p := range []*syntax.Expr{&e.Lo, &e.Hi, &e.Step} {
			if *p != nil {
				*p = rewriteExpr(*p)
			}
		}
	case *syntax.ListExpr:
		rewriteExprs(e.List)
	case *syntax.TupleExpr:
		rewriteExprs(e.List)
	case *syntax.DictExpr:
		for _, x := range e.List {
			if d, ok := x.(*syntax.DictEntry); ok {
				d.Key = rewriteExpr(d.Key)
				d.Value = rewriteExpr(d.Value)
			}
		}
	case *syntax.CondExpr:
		e.Cond = rewriteExpr(e.Cond)
		e.True = rewriteExpr(e.True)
		e.False = rewriteExpr(e.False)
	case *syntax.ParenExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.LambdaExpr:
		e.Body = rewriteExpr(e.Body)
	case *syntax.Comprehension:
		e.Body = rewriteExpr(e.Body)
		for _, cl := range e.Clauses {
			switch c := cl.(type) {
			case *syntax.ForClause:
				c.X = rewriteExpr(c.X)
			case *syntax.IfClause:
				c.Cond = rewriteExpr(c.Cond)
			}
		}
	}
	return e
}
