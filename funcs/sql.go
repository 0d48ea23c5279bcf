package funcs

import (
	"strconv"
	"strings"
)

// normalize_pgsql and normalize_mysql replace the literals of a query
// (quoted strings, numbers, TRUE/FALSE/NULL are kept) with placeholders,
// so that queries differing only in their values group together. They
// return JSON {"query": normalized, "params": [literal, …], "error": ""}.
// PostgreSQL placeholders are $1, $2, …; MySQL's are ?. Identifiers,
// quoted identifiers ("x", `x`), comments and existing placeholders are
// kept as they are.

func init() {
	register("normalize_pgsql", "a PostgreSQL query (1st; for an Execute row, query=[statement] params=[values]) with literals replaced by $n, as JSON {query, params, error}; the 2nd argument is req_cmd",
		sig(tS, fn2(rStr, rStr, tS, func(q, _ string) string { return normalizeStatement(q, true) }), tS, tS))
	register("normalize_mysql", "a MySQL query with literals replaced by ?, as JSON {query, params, error}, for req_cmd 3 (COM_QUERY), 22 (COM_STMT_PREPARE) and 23 (COM_STMT_EXECUTE: query=[statement] params=[values])",
		sig(tS, fn2(rStr, rInt, tS, func(q string, cmd int64) string {
			if cmd != 3 && cmd != 22 && cmd != 23 {
				return `{"query":"","params":[],"error":"not a query command"}`
			}
			return normalizeStatement(q, false)
		}), tS, tI))
}

// normalizeStatement normalizes q, or, for an executed prepared statement
// in the tracer's form "query=[statement] params=[v1, v2]", the statement,
// with the bound values first among the params.
func normalizeStatement(q string, pg bool) string {
	stmt, bound, ok := splitExecute(q)
	if !ok {
		return normalizeSQL(q, pg)
	}
	return normalizeSQL(stmt, pg, bound...)
}

// splitExecute reads "query=[statement] params=[v1, v2]".
func splitExecute(q string) (stmt string, params []string, ok bool) {
	const head, mid = "query=[", "] params=["
	if !strings.HasPrefix(q, head) || !strings.HasSuffix(q, "]") {
		return "", nil, false
	}
	i := strings.LastIndex(q, mid)
	if i < len(head) {
		return "", nil, false
	}
	stmt = q[len(head):i]
	params = []string{}
	if p := q[i+len(mid) : len(q)-1]; p != "" {
		params = strings.Split(p, ", ")
	}
	return stmt, params, true
}

type normalized struct {
	Query  string   `json:"query"`
	Params []string `json:"params"`
	Error  string   `json:"error"`
}

// normalizeSQL normalizes q; bound are the values of placeholders q
// already has ($1…$n), which come first among the params, so that the
// literals' placeholders are numbered after them.
func normalizeSQL(q string, pg bool, bound ...string) string {
	var out strings.Builder
	params := append([]string{}, bound...)
	errMsg := ""
	placeholder := func(lit string) {
		params = append(params, lit)
		if pg {
			out.WriteString("$" + strconv.Itoa(len(params)))
		} else {
			out.WriteByte('?')
		}
	}
	isIdent := func(c byte) bool {
		return c == '_' || c == '$' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c >= 0x80
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || (!pg && c == '"'):
			// A string literal; '' (and \' in MySQL) escape the quote.
			j := i + 1
			var lit strings.Builder
			closed := false
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						lit.WriteByte(c)
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				if q[j] == '\\' && !pg && j+1 < len(q) {
					lit.WriteByte(q[j+1])
					j += 2
					continue
				}
				lit.WriteByte(q[j])
				j++
			}
			if !closed {
				errMsg = "unterminated string literal"
				out.WriteString(q[i:])
				i = len(q)
				continue
			}
			placeholder(lit.String())
			i = j
		case c == '"' || c == '`':
			// A quoted identifier.
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				out.WriteString(q[i:])
				i = len(q)
				continue
			}
			out.WriteString(q[i : i+j+2])
			i += j + 2
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			out.WriteString(q[i : i+j])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				out.WriteString(q[i:])
				i = len(q)
				continue
			}
			out.WriteString(q[i : i+j+4])
			i += j + 4
		case c == '$' && pg && i+1 < len(q) && '0' <= q[i+1] && q[i+1] <= '9':
			j := i + 1
			for j < len(q) && '0' <= q[j] && q[j] <= '9' {
				j++
			}
			out.WriteString(q[i:j])
			i = j
		case ('0' <= c && c <= '9') || (c == '.' && i+1 < len(q) && '0' <= q[i+1] && q[i+1] <= '9'):
			if i > 0 && isIdent(q[i-1]) {
				// Part of an identifier such as t1.
				out.WriteByte(c)
				i++
				continue
			}
			j := i
			for j < len(q) && (('0' <= q[j] && q[j] <= '9') || q[j] == '.' || q[j] == 'e' || q[j] == 'E' ||
				((q[j] == '+' || q[j] == '-') && (q[j-1] == 'e' || q[j-1] == 'E'))) {
				j++
			}
			if j < len(q) && isIdent(q[j]) {
				out.WriteString(q[i:j])
				i = j
				continue
			}
			// A leading minus sign belongs to the literal when it follows an operator.
			lit := q[i:j]
			s := out.String()
			t := strings.TrimRight(s, " \t\n")
			if strings.HasSuffix(t, "-") && len(t) >= 2 && strings.ContainsAny(t[len(t)-2:len(t)-1], "=<>(,+-*/ ") {
				out.Reset()
				out.WriteString(t[:len(t)-1])
				lit = "-" + lit
			}
			placeholder(lit)
			i = j
		default:
			if isIdent(c) {
				j := i
				for j < len(q) && isIdent(q[j]) {
					j++
				}
				out.WriteString(q[i:j])
				i = j
				continue
			}
			out.WriteByte(c)
			i++
		}
	}
	b := marshalJSON(normalized{Query: out.String(), Params: params, Error: errMsg})
	return string(b)
}
