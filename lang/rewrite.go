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
//   - the operators that can build large values (+ - * % | & ^ << >> //,
//     unary - and ~), slicing, x in y, the methods of guard.go's
//     methodGuards, dict keys and f(*args, **kwargs) become calls of the
//     helpers that charge the script's memory budget (guard.go); x += y
//     becomes x = __iplus(x, y), which extends a list in place
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
		if s.Op != syntax.EQ {
			if _, ok := augBuiltin(s.Op); ok {
				return augmented(s)
			}
		}
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
			lhs.Y = keyed(rewriteExpr(lhs.Y))
		default:
			s.LHS = rewriteTarget(s.LHS)
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
		if fn, ok := augBuiltin(s.Op); ok {
			rhs = call(fn, s.OpPos, read, rhs)
		} else {
			rhs = &syntax.BinaryExpr{X: read, OpPos: s.OpPos, Op: s.Op - syntax.PLUS_EQ + syntax.PLUS, Y: rhs}
		}
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

// augBuiltin names the helper of an augmented assignment's operator.
func augBuiltin(op syntax.Token) (string, bool) {
	switch op {
	case syntax.PLUS_EQ:
		return "__iplus", true
	case syntax.PIPE_EQ:
		return "__ipipe", true
	}
	fn, ok := opBuiltins[op-syntax.PLUS_EQ+syntax.PLUS]
	return fn, ok
}

// augmented rewrites x op= y into x = __op(x, y), and t op= y for a field
// or item t of an expression into t = __op(t, y), which evaluates the
// expression twice (as the column assignment does its key). Field and
// item targets of a plain name go to setcol.
func augmented(s *syntax.AssignStmt) syntax.Stmt {
	fn, _ := augBuiltin(s.Op)
	switch lhs := s.LHS.(type) {
	case *syntax.Ident:
		return &syntax.AssignStmt{OpPos: s.OpPos, Op: syntax.EQ, LHS: lhs, RHS: call(fn, s.OpPos, ident(lhs.Name, lhs.NamePos), s.RHS)}
	case *syntax.DotExpr:
		if id, ok := lhs.X.(*syntax.Ident); ok {
			name := &syntax.Literal{Token: syntax.STRING, TokenPos: lhs.NamePos, Raw: `"` + lhs.Name.Name + `"`, Value: lhs.Name.Name}
			return setcol(s, id, name, lhs)
		}
	case *syntax.IndexExpr:
		if id, ok := lhs.X.(*syntax.Ident); ok {
			return setcol(s, id, rewriteExpr(lhs.Y), lhs)
		}
	default:
		s.LHS = rewriteTarget(s.LHS)
		return s // Starlark reports the bad target
	}
	target := rewriteTarget(s.LHS)
	read := rewriteExpr(cloneExpr(target))
	return &syntax.AssignStmt{OpPos: s.OpPos, Op: syntax.EQ, LHS: target, RHS: call(fn, s.OpPos, read, s.RHS)}
}

// rewriteTarget rewrites the expressions inside an assignment target,
// keeping its shape.
func rewriteTarget(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.DotExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.IndexExpr:
		e.X = rewriteExpr(e.X)
		e.Y = keyed(rewriteExpr(e.Y))
	case *syntax.ParenExpr:
		e.X = rewriteTarget(e.X)
	case *syntax.TupleExpr:
		for i, x := range e.List {
			e.List[i] = rewriteTarget(x)
		}
	case *syntax.ListExpr:
		for i, x := range e.List {
			e.List[i] = rewriteTarget(x)
		}
	}
	return e
}

// cloneExpr copies the expressions an assignment target is made of, to
// read the target's value. Other expressions (lambdas, comprehensions)
// are shared: a target does not hold them in practice.
func cloneExpr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.Ident:
		return ident(e.Name, e.NamePos)
	case *syntax.Literal:
		c := *e
		return &c
	case *syntax.DotExpr:
		return &syntax.DotExpr{X: cloneExpr(e.X), Dot: e.Dot, NamePos: e.NamePos, Name: ident(e.Name.Name, e.Name.NamePos)}
	case *syntax.IndexExpr:
		return &syntax.IndexExpr{X: cloneExpr(e.X), Lbrack: e.Lbrack, Y: cloneExpr(e.Y), Rbrack: e.Rbrack}
	case *syntax.ParenExpr:
		return &syntax.ParenExpr{Lparen: e.Lparen, X: cloneExpr(e.X), Rparen: e.Rparen}
	case *syntax.CallExpr:
		c := &syntax.CallExpr{Fn: cloneExpr(e.Fn), Lparen: e.Lparen, Rparen: e.Rparen}
		for _, a := range e.Args {
			c.Args = append(c.Args, cloneExpr(a))
		}
		return c
	case *syntax.BinaryExpr:
		return &syntax.BinaryExpr{X: cloneExpr(e.X), OpPos: e.OpPos, Op: e.Op, Y: cloneExpr(e.Y)}
	case *syntax.UnaryExpr:
		c := &syntax.UnaryExpr{OpPos: e.OpPos, Op: e.Op}
		if e.X != nil {
			c.X = cloneExpr(e.X)
		}
		return c
	case *syntax.TupleExpr:
		c := &syntax.TupleExpr{Lparen: e.Lparen, Rparen: e.Rparen}
		for _, x := range e.List {
			c.List = append(c.List, cloneExpr(x))
		}
		return c
	case *syntax.ListExpr:
		c := &syntax.ListExpr{Lbrack: e.Lbrack, Rbrack: e.Rbrack}
		for _, x := range e.List {
			c.List = append(c.List, cloneExpr(x))
		}
		return c
	case *syntax.SliceExpr:
		c := &syntax.SliceExpr{X: cloneExpr(e.X), Lbrack: e.Lbrack, Rbrack: e.Rbrack}
		for _, p := range []struct{ from, to *syntax.Expr }{{&e.Lo, &c.Lo}, {&e.Hi, &c.Hi}, {&e.Step, &c.Step}} {
			if *p.from != nil {
				*p.to = cloneExpr(*p.from)
			}
		}
		return c
	case *syntax.CondExpr:
		return &syntax.CondExpr{If: e.If, Cond: cloneExpr(e.Cond), True: cloneExpr(e.True), ElsePos: e.ElsePos, False: cloneExpr(e.False)}
	}
	return e
}

// keyed wraps an index or dict key in the key check, unless it is a
// literal or a list (which cannot be a tuple).
func keyed(e syntax.Expr) syntax.Expr {
	switch e.(type) {
	case *syntax.Literal, *syntax.ListExpr:
		return e
	}
	return call("__key", syntax.Start(e), e)
}

func isLiteral(e syntax.Expr) bool {
	_, ok := e.(*syntax.Literal)
	return ok
}

func none(pos syntax.Position) syntax.Expr { return ident("None", pos) }

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
		case syntax.IN:
			return call("__in", e.OpPos, e.X, e.Y)
		case syntax.NOT_IN:
			return call("__notin", e.OpPos, e.X, e.Y)
		}
		if fn, ok := opBuiltins[e.Op]; ok {
			// The sum or difference of two literals is as small as the script.
			if (e.Op == syntax.PLUS || e.Op == syntax.MINUS) && isLiteral(e.X) && isLiteral(e.Y) {
				return e
			}
			return call(fn, e.OpPos, e.X, e.Y)
		}
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = rewriteExpr(e.X)
		}
		switch {
		case e.Op == syntax.NOT:
			return call("__not", e.OpPos, e.X)
		case e.Op == syntax.MINUS && !isLiteral(e.X):
			return call("__neg", e.OpPos, e.X)
		case e.Op == syntax.TILDE && !isLiteral(e.X):
			return call("__invert", e.OpPos, e.X)
		}
	case *syntax.CallExpr:
		e.Fn = rewriteExpr(e.Fn)
		for i, a := range e.Args {
			if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				b.Y = rewriteExpr(b.Y) // named argument k=v
				continue
			}
			if u, ok := a.(*syntax.UnaryExpr); ok && (u.Op == syntax.STAR || u.Op == syntax.STARSTAR) {
				fn := map[syntax.Token]string{syntax.STAR: "__args", syntax.STARSTAR: "__kwargs"}[u.Op]
				u.X = call(fn, u.OpPos, rewriteExpr(u.X))
				continue
			}
			e.Args[i] = rewriteExpr(a)
		}
	case *syntax.DotExpr:
		e.X = rewriteExpr(e.X)
		if guardedMethod(e.Name.Name) {
			name := &syntax.Literal{Token: syntax.STRING, TokenPos: e.NamePos, Raw: `"` + e.Name.Name + `"`, Value: e.Name.Name}
			return call("__attr", e.Dot, e.X, name)
		}
	case *syntax.IndexExpr:
		e.X = rewriteExpr(e.X)
		e.Y = keyed(rewriteExpr(e.Y))
	case *syntax.SliceExpr:
		args := []syntax.Expr{rewriteExpr(e.X)}
		for _, p := range []syntax.Expr{e.Lo, e.Hi, e.Step} {
			if p == nil {
				args = append(args, none(e.Lbrack))
			} else {
				args = append(args, rewriteExpr(p))
			}
		}
		return call("__slice", e.Lbrack, args...)
	case *syntax.ListExpr:
		rewriteExprs(e.List)
	case *syntax.TupleExpr:
		rewriteExprs(e.List)
	case *syntax.DictExpr:
		for _, x := range e.List {
			if d, ok := x.(*syntax.DictEntry); ok {
				d.Key = keyed(rewriteExpr(d.Key))
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
		for _, p := range e.Params {
			if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				b.Y = rewriteExpr(b.Y)
			}
		}
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
