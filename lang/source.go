package lang

import (
	"strings"
)

// The PxL front end accepts three things go.starlark.net's parser does not:
// `import px` statements, type annotations in `def` (parameters and return)
// and, as Pixie's parser does, a missing comma between call arguments on
// separate lines. prepare rewrites the source so that Starlark parses it,
// keeping every line and column where it was: removed text becomes spaces.

// Annotation is the declared type of a function parameter, as written
// (e.g. "str", "int", "px.Service").
type Annotation = string

// prepared is a script rewritten for Starlark's parser.
type prepared struct {
	src     []byte
	imports []importStmt
	// params[fn][param] is the parameter's annotation; order[fn] lists the
	// parameter names in order.
	params map[string]map[string]Annotation
	order  map[string][]string
	// longNumber is 1 + the offset of the first number literal longer
	// than maxIntDigits, or 0: Go parses decimal integers in quadratic
	// time, so Parse rejects them before Starlark's scanner sees them.
	longNumber int
}

type importStmt struct {
	name      string
	line, col int
}

// prepare blanks out import statements and annotations. It never fails:
// text it does not understand is left for the parser to report.
func prepare(src []byte) *prepared {
	p := &prepared{src: append([]byte(nil), src...), params: map[string]map[string]Annotation{}, order: map[string][]string{}}
	s := &scanner{b: p.src}
	for {
		tok := s.next()
		if tok.kind == tEOF {
			break
		}
		if tok.kind != tIdent || !tok.lineStart {
			if tok.kind == tIdent && tok.text == "def" {
				p.def(s)
			}
			continue
		}
		switch tok.text {
		case "import":
			p.importStmt(s, tok)
		case "def":
			p.def(s)
		}
	}
	p.longNumber = s.longNumber
	return p
}

// importStmt handles `import a, b as c` at the start of a line.
func (p *prepared) importStmt(s *scanner, kw token) {
	start := kw.off
	end := kw.off + len(kw.text)
	for {
		t := s.peek()
		if t.kind == tNewline || t.kind == tEOF {
			break
		}
		s.next()
		if t.kind == tIdent && t.text != "as" {
			line, col := position(p.src, t.off)
			p.imports = append(p.imports, importStmt{name: t.text, line: line, col: col})
		}
		end = t.off + len(t.text)
	}
	blank(p.src, start, end)
}

// def handles `def name(params) -> ret:` after the `def` keyword.
func (p *prepared) def(s *scanner) {
	name := s.next()
	if name.kind != tIdent {
		return
	}
	if t := s.next(); t.kind != tPunct || t.text != "(" {
		return
	}
	ann := map[string]Annotation{}
	var order []string
	depth := 1
	expectParam := true
	for depth > 0 {
		t := s.next()
		switch {
		case t.kind == tEOF:
			return
		case t.kind == tPunct && (t.text == "(" || t.text == "[" || t.text == "{"):
			depth++
		case t.kind == tPunct && (t.text == ")" || t.text == "]" || t.text == "}"):
			depth--
		case depth == 1 && t.kind == tPunct && t.text == ",":
			expectParam = true
		case depth == 1 && expectParam && t.kind == tIdent:
			expectParam = false
			order = append(order, t.text)
			if n := s.peek(); n.kind == tPunct && n.text == ":" {
				colon := s.next()
				from := colon.off
				end, text := s.skipExpr()
				blank(p.src, from, end)
				ann[t.text] = strings.TrimSpace(text)
			}
		case depth == 1 && t.kind == tPunct && (t.text == "*" || t.text == "**"):
			// *args / **kwargs: the next identifier is the parameter.
		case depth == 1 && t.kind == tPunct && t.text == "=":
			expectParam = false
			s.skipExpr()
		}
	}
	if n := s.peek(); n.kind == tPunct && n.text == "->" {
		arrow := s.next()
		end, _ := s.skipExpr()
		blank(p.src, arrow.off, end)
	}
	p.params[name.text] = ann
	p.order[name.text] = order
}

// blank overwrites src[from:to] with spaces, keeping newlines.
func blank(src []byte, from, to int) {
	for i := from; i < to && i < len(src); i++ {
		if src[i] != '\n' && src[i] != '\r' {
			src[i] = ' '
		}
	}
}

// position returns the 1-based line and column of byte offset off.
func position(src []byte, off int) (line, col int) {
	line = 1
	lineStart := 0
	for i := 0; i < off && i < len(src); i++ {
		if src[i] == '\n' {
			line++
			lineStart = i + 1
		}
	}
	return line, off - lineStart + 1
}

// offset returns the byte offset of a 1-based line and column.
func offset(src []byte, line, col int) int {
	l := 1
	for i := 0; i < len(src); i++ {
		if l == line {
			return i + col - 1
		}
		if src[i] == '\n' {
			l++
		}
	}
	return len(src)
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tString
	tPunct
	tNewline
)

type token struct {
	kind      tokKind
	text      string
	off       int
	lineStart bool // first token on its logical line (outside brackets)
}

// scanner is a minimal Python tokenizer: enough to find imports, def
// signatures and expression ends, skipping strings and comments.
type scanner struct {
	b       []byte
	i       int
	depth   int
	atStart bool
	started bool
	peeked  *token
	// longNumber: see prepared.
	longNumber int
}

func (s *scanner) peek() token {
	if s.peeked == nil {
		t := s.scan()
		s.peeked = &t
	}
	return *s.peeked
}

func (s *scanner) next() token {
	if s.peeked != nil {
		t := *s.peeked
		s.peeked = nil
		return t
	}
	return s.scan()
}

func (s *scanner) scan() token {
	if !s.started {
		s.started = true
		s.atStart = true
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '\n':
			s.i++
			if s.depth == 0 {
				s.atStart = true
				return token{kind: tNewline, text: "\n", off: s.i - 1}
			}
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			s.i++
			continue
		case c == '\\' && s.i+1 < len(s.b) && s.b[s.i+1] == '\n':
			s.i += 2
			continue
		case c == '#':
			for s.i < len(s.b) && s.b[s.i] != '\n' {
				s.i++
			}
			continue
		}
		start := s.i
		lineStart := s.atStart && s.depth == 0
		s.atStart = false
		switch {
		case c == '"' || c == '\'':
			s.skipString()
			return token{kind: tString, text: string(s.b[start:s.i]), off: start, lineStart: lineStart}
		case isIdentStart(c):
			for s.i < len(s.b) && isIdentChar(s.b[s.i]) {
				s.i++
			}
			// String prefixes: r"…", b'…', rb"…".
			if s.i < len(s.b) && (s.b[s.i] == '"' || s.b[s.i] == '\'') && s.i-start <= 2 && strings.Trim(strings.ToLower(string(s.b[start:s.i])), "rbu") == "" {
				s.skipString()
				return token{kind: tString, text: string(s.b[start:s.i]), off: start, lineStart: lineStart}
			}
			return token{kind: tIdent, text: string(s.b[start:s.i]), off: start, lineStart: lineStart}
		case c >= '0' && c <= '9':
			for s.i < len(s.b) && (isIdentChar(s.b[s.i]) || s.b[s.i] == '.') {
				s.i++
			}
			if s.i-start > maxIntDigits && s.longNumber == 0 {
				s.longNumber = start + 1
			}
			return token{kind: tNumber, text: string(s.b[start:s.i]), off: start, lineStart: lineStart}
		}
		// Punctuation; two-character operators that matter here.
		if s.i+1 < len(s.b) {
			two := string(s.b[s.i : s.i+2])
			switch two {
			case "->", "**", "==", "!=", "<=", ">=", "//":
				s.i += 2
				return token{kind: tPunct, text: two, off: start, lineStart: lineStart}
			}
		}
		s.i++
		switch c {
		case '(', '[', '{':
			s.depth++
		case ')', ']', '}':
			if s.depth > 0 {
				s.depth--
			}
		}
		return token{kind: tPunct, text: string(c), off: start, lineStart: lineStart}
	}
	return token{kind: tEOF, off: len(s.b)}
}

func (s *scanner) skipString() {
	q := s.b[s.i]
	triple := s.i+2 < len(s.b) && s.b[s.i+1] == q && s.b[s.i+2] == q
	if triple {
		s.i += 3
		for s.i < len(s.b) {
			if s.b[s.i] == '\\' {
				s.i += 2
				continue
			}
			if s.i+2 < len(s.b) && s.b[s.i] == q && s.b[s.i+1] == q && s.b[s.i+2] == q {
				s.i += 3
				return
			}
			s.i++
		}
		return
	}
	s.i++
	for s.i < len(s.b) && s.b[s.i] != '\n' {
		if s.b[s.i] == '\\' {
			s.i += 2
			continue
		}
		if s.b[s.i] == q {
			s.i++
			return
		}
		s.i++
	}
}

// skipExpr skips an annotation expression: up to (not including) a ',',
// '=' or closing bracket at the current depth, or a ':' at depth 0 (the
// end of a return annotation). It returns the end offset and the text.
func (s *scanner) skipExpr() (int, string) {
	start := -1
	end := s.i
	depth := 0
	for {
		t := s.peek()
		if t.kind == tEOF || t.kind == tNewline {
			break
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					goto done
				}
				depth--
			case ",", "=":
				if depth == 0 {
					goto done
				}
			case ":":
				if depth == 0 {
					goto done
				}
			}
		}
		s.next()
		if start < 0 {
			start = t.off
		}
		end = t.off + len(t.text)
	}
done:
	if start < 0 {
		return end, ""
	}
	return end, string(s.b[start:end])
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
