// Package pxtrace runs the dynamic tracepoints of PxL's pxtrace module:
// each tracepoint is a bpftrace program, run by Debian's bpftrace as a
// child process, whose printf output becomes the rows of a table created
// in the store at run time. The table's columns come from the printf
// format, as in Pixie: `printf("time_:%llu pid:%u comm:%s", nsecs, pid,
// comm)` makes the columns time_, pid and comm.
//
// A Manager keeps the tracepoints of one node: it shares one program
// between the scripts that upsert the same tracepoint name, stops it when
// its TTL runs out, and reports each one's state (pending, running,
// failed with bpftrace's error, terminated).
package pxtrace

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/types"
)

// Program is a bpftrace program parsed for its output: the columns its
// printf formats name, and how to read a line of its output.
type Program struct {
	Text    string
	Columns types.Relation
	// lines match one printf's output each; their groups are the
	// fields of fields[i], in the format's order.
	lines  []*regexp.Regexp
	fields [][]field
	// timeField is the index of time_ in Columns; printsTime says
	// whether the program prints it (else rows get the time they were
	// read, in column 0).
	timeField  int
	printsTime bool
	// upid is the index of the upid column made from pid and
	// pid_start_time, or -1.
	upid, pidCol, startCol int
}

// field is one `name:%conv` of a printf format.
type field struct {
	name string
	conv byte // d (signed), u (unsigned), x (hex), s (text)
}

// printfCall finds printf calls and their format string literal.
var printfCall = regexp.MustCompile(`\bprintf\s*\(\s*"((?:[^"\\]|\\.)*)"`)

// conversion is one printf conversion: flags, width, length, verb.
var conversion = regexp.MustCompile(`%[-+ #0]*[0-9]*(?:\.[0-9]+)?(?:hh|h|ll|l|z|j|t)?([diuxXcsopr])(?:x|h)?|%%`)

// ParseProgram reads the columns of a bpftrace program from its printf
// formats. Every printf that names fields must name the same ones, in
// the same order with the same types. Columns named time_ become
// TIME64NS (from bpftrace's nsecs, ns since boot); a program that prints
// pid and pid_start_time (the start time in clock ticks, as Pixie's
// programs compute it) gets a upid column too.
func ParseProgram(text string) (*Program, error) {
	p := &Program{Text: text, timeField: -1, upid: -1, pidCol: -1, startCol: -1}
	var first []field
	for _, m := range printfCall.FindAllStringSubmatch(text, -1) {
		format := unescape(m[1])
		re, fs, err := formatPattern(format)
		if err != nil {
			return nil, fmt.Errorf("printf(%q): %w", m[1], err)
		}
		if len(fs) == 0 {
			continue // a message, not a row
		}
		if first == nil {
			first = fs
		} else if !sameFields(first, fs) {
			return nil, fmt.Errorf("printf(%q) names other fields than printf's before it (%s): every printf of a tracepoint program makes a row of one table", m[1], fieldNames(first))
		}
		p.lines = append(p.lines, re)
		p.fields = append(p.fields, fs)
	}
	if first == nil {
		return nil, fmt.Errorf(`the program prints no fields: its rows come from printf("name:%%d …", …) formats`)
	}
	seen := map[string]bool{}
	for _, f := range first {
		if seen[f.name] {
			return nil, fmt.Errorf("field %s is printed twice in one format", f.name)
		}
		seen[f.name] = true
		col := types.Column{Name: f.name, Type: types.Int64, Semantic: types.STNone}
		switch {
		case f.name == "time_":
			col.Type, col.Semantic = types.Time64NS, types.STTimeNS
			p.timeField, p.printsTime = len(p.Columns), true
		case f.conv == 's':
			col.Type = types.String
		}
		switch f.name {
		case "pid":
			p.pidCol = len(p.Columns)
		case "pid_start_time":
			p.startCol = len(p.Columns)
		}
		p.Columns = append(p.Columns, col)
	}
	if p.timeField < 0 {
		p.Columns = append(types.Relation{{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}}, p.Columns...)
		p.timeField = 0
		if p.pidCol >= 0 {
			p.pidCol++
		}
		if p.startCol >= 0 {
			p.startCol++
		}
	}
	if p.pidCol >= 0 && p.startCol >= 0 && !seen["upid"] && p.Columns[p.pidCol].Type == types.Int64 && p.Columns[p.startCol].Type == types.Int64 {
		p.upid = len(p.Columns)
		p.Columns = append(p.Columns, types.Column{Name: "upid", Type: types.UInt128, Semantic: types.STUPID})
	}
	return p, nil
}

// formatPattern turns a printf format into a regexp matching its output,
// with one group per `name:%conv` field.
func formatPattern(format string) (*regexp.Regexp, []field, error) {
	format = strings.TrimRight(format, "\n")
	var b strings.Builder
	b.WriteString(`^`)
	var fs []field
	last := 0
	for _, loc := range conversion.FindAllStringSubmatchIndex(format, -1) {
		lit := format[last:loc[0]]
		last = loc[1]
		if format[loc[0]:loc[1]] == "%%" {
			b.WriteString(regexp.QuoteMeta(lit + "%"))
			continue
		}
		verb := format[loc[2]]
		name := fieldName(lit)
		b.WriteString(regexp.QuoteMeta(lit))
		conv := byte('s')
		switch verb {
		case 'd', 'i':
			conv = 'd'
			b.WriteString(`(-?[0-9]+)`)
		case 'u', 'o':
			conv = 'u'
			b.WriteString(`([0-9]+)`)
		case 'x', 'X', 'p':
			conv = 'x'
			b.WriteString(`((?:0x)?[0-9a-fA-F]+)`)
		default: // s, c, r: text
			b.WriteString(`(.*?)`)
		}
		if name == "" {
			// A value without a name: matched, not kept.
			fs = append(fs, field{conv: conv})
			continue
		}
		fs = append(fs, field{name: name, conv: conv})
	}
	b.WriteString(regexp.QuoteMeta(format[last:]))
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, nil, err
	}
	named := fs[:0:0]
	for _, f := range fs {
		if f.name != "" {
			named = append(named, f)
		}
	}
	if len(named) == 0 {
		return re, nil, nil
	}
	return re, fs, nil
}

// fieldName returns the name that the literal text before a conversion
// gives it: the word right before a trailing ':'.
func fieldName(lit string) string {
	if !strings.HasSuffix(lit, ":") {
		return ""
	}
	lit = lit[:len(lit)-1]
	i := len(lit)
	for i > 0 && isNameByte(lit[i-1]) {
		i--
	}
	return lit[i:]
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func sameFields(a, b []field) bool {
	var na, nb []field
	for _, f := range a {
		if f.name != "" {
			na = append(na, f)
		}
	}
	for _, f := range b {
		if f.name != "" {
			nb = append(nb, f)
		}
	}
	if len(na) != len(nb) {
		return false
	}
	for i := range na {
		if na[i].name != nb[i].name || (na[i].conv == 's') != (nb[i].conv == 's') {
			return false
		}
	}
	return true
}

func fieldNames(fs []field) string {
	var names []string
	for _, f := range fs {
		if f.name != "" {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, " ")
}

// unescape resolves the escapes of a bpftrace string literal.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Row reads one line of the program's printf output into values in
// Columns' order (int64, string, UInt128Value); time_ is left as bpftrace
// printed it (ns since boot) unless the program prints none. It reports
// false for a line that no printf of the program made.
func (p *Program) Row(line string) ([]any, bool) {
	line = strings.TrimRight(line, "\n")
	for i, re := range p.lines {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		row := make([]any, len(p.Columns))
		col := 0
		if !p.printsTime {
			row[0] = int64(0)
			col = 1
		}
		for j, f := range p.fields[i] {
			if f.name == "" {
				continue
			}
			v := m[j+1]
			switch p.Columns[col].Type {
			case types.String:
				row[col] = v
			default:
				row[col] = parseInt(v, f.conv)
			}
			col++
		}
		if p.upid >= 0 {
			pid, _ := row[p.pidCol].(int64)
			ticks, _ := row[p.startCol].(int64)
			row[p.upid] = types.UPID(0, uint32(pid), uint64(ticks)*tickNS)
		}
		return row, true
	}
	return nil, false
}

// tickNS is the length of a clock tick (USER_HZ = 100), the unit of
// pid_start_time in Pixie's programs.
const tickNS = 10_000_000

func parseInt(s string, conv byte) int64 {
	switch conv {
	case 'x':
		u, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		return int64(u)
	case 'u':
		u, _ := strconv.ParseUint(s, 10, 64)
		return int64(u)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
