package redis

import (
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// text is a bounded output buffer.
type text struct {
	b   []byte
	max int
	cut bool
}

func (t *text) reset(max int) { t.b, t.max, t.cut = t.b[:0], max, false }

// raw appends each of s as it is, up to the bound.
func (t *text) raw(s ...string) {
	for _, p := range s {
		add(t, p)
	}
}

// bytes appends p as it is, up to the bound.
func (t *text) bytes(p []byte) { add(t, p) }

// add appends p to t, up to its bound; past the bound t is cut and takes
// nothing more.
func add[S string | []byte](t *text, p S) {
	if t.cut {
		return
	}
	if len(t.b)+len(p) > t.max {
		t.b = append(t.b, p[:t.max-len(t.b)]...)
		t.cut = true
		return
	}
	t.b = append(t.b, p...)
}

func (t *text) quoted(p []byte) {
	if t.cut {
		return
	}
	mark := len(t.b)
	t.b = wire.AppendJSONString(t.b, p)
	if len(t.b) > t.max {
		t.b = t.b[:max(t.max, mark)]
		t.cut = true
	}
}

// level is an open aggregate while rendering.
type level struct {
	kind byte
	i    int // elements rendered
}

// renderer renders a reply the way Pixie shows it: a scalar as its text
// (an error as its message, a null as <NULL>), an aggregate as a JSON
// array (a map as an object) of strings and aggregates, a null
// aggregate as [NULL]. It also notes what pub/sub needs: the kind of the
// reply, its first element and its third (a subscription count).
type renderer struct {
	out     text
	levels  []level
	startTS int64
	endTS   int64
	kind    byte // the top-level type
	first   []byte
	count   int64 // the third element, when an integer
	isErr   bool
}

func (r *renderer) begin(ts int64) {
	r.startTS = ts
	r.levels = r.levels[:0]
	r.first, r.count, r.kind, r.isErr = r.first[:0], -1, 0, false
	r.out.reset(r.out.max)
}

// sep writes what comes before an element of the open aggregate.
func (r *renderer) sep() {
	if len(r.levels) == 0 {
		return
	}
	l := &r.levels[len(r.levels)-1]
	switch {
	case l.kind == '%' && l.i%2 == 1:
		r.out.raw(":")
	case l.i > 0:
		r.out.raw(",")
	}
	l.i++
}

func (r *renderer) aggregate(kind byte, n int) {
	if len(r.levels) == 0 {
		r.kind = kind
	}
	r.note(nil, 0)
	r.sep()
	if n < 0 {
		if len(r.levels) == 0 {
			r.out.raw("[NULL]")
		} else {
			r.out.raw(`"[NULL]"`)
		}
		r.levels = append(r.levels, level{kind: 0})
		return
	}
	if kind == '%' {
		r.out.raw("{")
	} else {
		r.out.raw("[")
	}
	r.levels = append(r.levels, level{kind: kind})
}

func (r *renderer) end() {
	l := r.levels[len(r.levels)-1]
	r.levels = r.levels[:len(r.levels)-1]
	switch l.kind {
	case 0: // null
	case '%':
		r.out.raw("}")
	default:
		r.out.raw("]")
	}
}

// note records the first and third elements of a top-level aggregate.
func (r *renderer) note(v []byte, kind byte) {
	if len(r.levels) != 1 {
		return
	}
	switch r.levels[0].i {
	case 0:
		if len(v) <= 16 {
			r.first = append(r.first[:0], v...)
		}
	case 2:
		if kind == ':' {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				r.count = n
			}
		}
	}
}

func (r *renderer) scalar(kind byte, v []byte, size int, null bool) {
	top := len(r.levels) == 0
	if top {
		r.kind = kind
	}
	r.note(v, kind)
	r.sep()
	switch {
	case null:
		if top {
			r.out.raw("<NULL>")
		} else {
			r.out.raw(`"<NULL>"`)
		}
		return
	case kind == '#':
		s := "false"
		if len(v) == 1 && v[0] == 't' {
			s = "true"
		}
		if top {
			r.out.raw(s)
		} else {
			r.out.raw(`"`, s, `"`)
		}
		return
	case kind == '=' && len(v) >= 4 && v[3] == ':':
		v = v[4:] // a verbatim string's format
	case kind == '-' || kind == '!':
		if top {
			r.isErr = true
		}
	}
	if top {
		r.out.bytes(v)
	} else {
		r.out.quoted(v)
	}
}

func (r *renderer) done(ts int64) { r.endTS = ts }

func (r *renderer) inline([]byte, int64) {} // replies have no inline form

// containers are the commands whose first argument is a subcommand,
// shown with it in req_cmd ("CLIENT SETNAME"), as Pixie does.
var containers = map[string]bool{
	"ACL": true, "CLIENT": true, "CLUSTER": true, "COMMAND": true, "CONFIG": true, "FUNCTION": true,
	"LATENCY": true, "MEMORY": true, "MODULE": true, "OBJECT": true, "PUBSUB": true, "SCRIPT": true,
	"SLOWLOG": true, "XGROUP": true, "XINFO": true,
}

// command builds a request: its command name (upper case, with the
// subcommand of a container command) and its arguments as a JSON array.
type command struct {
	cmd     []byte
	args    text
	nargs   int   // arguments, not counting the subcommand
	counts  []int // elements so far of each open aggregate
	array   bool  // the message is an array (as commands are)
	startTS int64
	endTS   int64
	ok      bool // a command was read
	sub     bool // the second element is the subcommand
}

func (c *command) begin(ts int64) {
	c.startTS = ts
	c.cmd, c.nargs, c.counts, c.array, c.ok, c.sub = c.cmd[:0], 0, c.counts[:0], false, false, false
	c.args.reset(c.args.max)
	c.args.raw("[")
}

// element accounts for the next element and reports whether it is the
// command name (0), the subcommand (1) or an argument (2); for an
// argument, the separator before it is written.
func (c *command) element() int {
	d := len(c.counts)
	if d == 0 {
		return -1 // a top-level scalar: not a command
	}
	pos := c.counts[d-1]
	c.counts[d-1]++
	if d == 1 {
		switch {
		case pos == 0:
			return 0
		case pos == 1 && c.sub:
			return 1
		}
		if c.nargs > 0 {
			c.args.raw(",")
		}
		c.nargs++
		return 2
	}
	if pos > 0 {
		c.args.raw(",")
	}
	return 2
}

func (c *command) aggregate(kind byte, n int) {
	if len(c.counts) == 0 {
		c.array = kind == '*'
		c.counts = append(c.counts, 0)
		return
	}
	// A nested aggregate is not a command's, but shown as given.
	c.element()
	if n < 0 {
		c.args.raw(`"[NULL]"`)
	} else {
		c.args.raw("[")
	}
	c.counts = append(c.counts, 0)
}

func (c *command) end() {
	c.counts = c.counts[:len(c.counts)-1]
	if len(c.counts) > 0 {
		c.args.raw("]")
	}
}

func (c *command) scalar(kind byte, v []byte, size int, null bool) {
	switch c.element() {
	case -1:
	case 0:
		c.cmd = appendUpper(c.cmd[:0], v)
		c.sub = containers[string(c.cmd)]
	case 1:
		c.cmd = append(c.cmd, ' ')
		c.cmd = appendUpper(c.cmd, v)
	default:
		if null {
			c.args.raw(`"<NULL>"`)
		} else {
			c.args.quoted(v)
		}
	}
}

func (c *command) done(ts int64) {
	c.endTS = ts
	c.args.raw("]")
	c.ok = c.array && len(c.cmd) > 0
}

// inline reads an inline command: words separated by spaces.
func (c *command) inline(line []byte, ts int64) {
	c.begin(ts)
	c.array = true
	c.counts = append(c.counts, 0)
	for len(line) > 0 {
		i := 0
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		if i > 0 {
			c.scalar('$', line[:i], i, false)
		}
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		line = line[i:]
	}
	c.counts = c.counts[:0]
	c.done(ts)
}

func appendUpper(b, s []byte) []byte {
	for _, c := range s[:min(len(s), 64)] {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
