package cql

import (
	"strconv"
	"sync"
)

// prepared is what a PREPARE's answer told of a statement: its text and
// the types of its bind markers, so that an EXECUTE can show both.
type prepared struct {
	query   string
	types   []uint16
	results [][]byte // the names of its result's columns
}

// preparedCache remembers the statements prepared on every connection
// the tracer sees: a driver prepares a statement on one connection of
// its pool and executes it on any (an id is the server's hash of the
// statement, the same on every connection).
type preparedCache struct {
	mu  sync.Mutex
	ids map[string]prepared
}

// maxPrepared bounds the cache; when full it starts over.
const maxPrepared = 4096

var statements = &preparedCache{ids: map[string]prepared{}}

func (p *preparedCache) put(id []byte, s prepared) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) >= maxPrepared {
		clear(p.ids)
	}
	p.ids[string(id)] = s
}

func (p *preparedCache) get(id []byte) (prepared, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.ids[string(id)]
	return s, ok
}

// request is a request waiting for its response.
type request struct {
	op      byte
	version byte
	stream  int16
	body    []byte // its rendering
	startTS int64
	query   []byte // a PREPARE's statement
	// compression: the STARTUP asked for it.
	compression bool
	// results are the result columns of an EXECUTE's statement, when
	// known: a driver asks for rows without their metadata.
	results [][]byte
}

// response is a response, rendered.
type response struct {
	op      byte
	version byte
	stream  int16
	body    []byte
	endTS   int64
	// A RESULT of kind Prepared: the statement's id, bind markers and
	// result columns.
	preparedID []byte
	types      []uint16
	results    [][]byte
	// Rows without metadata (the request asked to skip it): the counts.
	noMetadata   bool
	ncols, nrows int
}

// skipPrefix skips what the flags put before a message: a response's
// tracing id and warnings, and a custom payload.
func skipPrefix(c *cursor, e *envelope) {
	if e.response && e.flags&flagTracing != 0 {
		c.take(16)
	}
	if e.response && e.flags&flagWarning != 0 {
		c.strList()
	}
	if e.flags&flagCustom != 0 {
		c.skipBytesMap()
	}
}

// renderRequest renders the request e into r.body; ok is false when its
// body does not decode.
func (cn *conn) renderRequest(e *envelope, r *request) (ok bool) {
	t := text{b: r.body[:0], limit: cn.maxText}
	c := &cursor{b: e.body}
	skipPrefix(c, e)
	switch e.opcode {
	case opStartup:
		t.stringMap(c, false)
		for _, k := range startupKeys(e.body) {
			if k == "COMPRESSION" {
				r.compression = true
			}
		}
	case opOptions:
	case opAuthResponse:
		// The token holds the credentials (PLAIN: user and password).
		c.value()
		t.add("<hidden>")
	case opQuery:
		q := c.longStr()
		if c.bad && e.cut() {
			// A statement longer than what is kept: its start.
			t.addBytes(c.b)
			r.body = t.b
			return true
		}
		t.addBytes(q)
		t.params(c, e.version, nil)
	case opPrepare:
		q := c.longStr()
		if c.bad && e.cut() {
			t.addBytes(c.b)
			r.body = t.b
			return true
		}
		t.addBytes(q)
		r.query = append(r.query[:0], q...)
	case opExecute:
		id := c.shortBytes()
		if e.version >= 5 {
			c.shortBytes() // result metadata id
		}
		s, known := statements.get(id)
		if known {
			t.add(s.query)
			r.results = s.results
		} else {
			t.add("prepared statement ", hexBytes(id))
		}
		t.params(c, e.version, s.types)
	case opBatch:
		t.batch(c, e.version)
	case opRegister:
		t.strings(c.strList())
	}
	r.body = t.b
	return !c.bad
}

// startupKeys returns the option names of a STARTUP body.
func startupKeys(body []byte) []string {
	c := &cursor{b: body}
	var keys []string
	for n := int(c.short()); n > 0 && !c.bad; n-- {
		k := c.str()
		c.str()
		keys = append(keys, string(k))
	}
	return keys
}

var batchTypes = [...]string{"LOGGED", "UNLOGGED", "COUNTER"}

// batch appends a BATCH as JSON: its type, each statement (its text, or
// its prepared id and the text when known) with its values, and the
// consistency.
func (t *text) batch(c *cursor, v byte) {
	typ := c.byte()
	n := int(c.short())
	t.add(`{"type":`)
	if int(typ) < len(batchTypes) {
		t.add(`"`, batchTypes[typ], `"`)
	} else {
		t.add(strconv.Itoa(int(typ)))
	}
	t.add(`,"queries":[`)
	for i := 0; i < n && !c.bad; i++ {
		if i > 0 {
			t.add(",")
		}
		var types []uint16
		switch c.byte() {
		case 0:
			t.add(`{"query":`)
			t.json(c.longStr())
		case 1:
			id := c.shortBytes()
			t.add(`{"id":"`, hexBytes(id), `"`)
			if s, ok := statements.get(id); ok {
				t.add(`,"query":`)
				t.json([]byte(s.query))
				types = s.types
			}
		default:
			c.bad = true
			return
		}
		if k := int(c.short()); k > 0 {
			t.add(`,"values":`)
			t.values(c, k, false, types)
		}
		t.add("}")
	}
	consistency := c.short()
	t.add(`],"consistency":"`, consistencyName(consistency), `"}`)
}

// Kinds of RESULT.
const (
	resultVoid         = 1
	resultRows         = 2
	resultSetKeyspace  = 3
	resultPrepared     = 4
	resultSchemaChange = 5
)

// renderResponse renders the response e into r.body; ok is false when
// its body does not decode.
func (cn *conn) renderResponse(e *envelope, r *response) (ok bool) {
	t := text{b: r.body[:0], limit: cn.maxText}
	c := &cursor{b: e.body}
	skipPrefix(c, e)
	switch e.opcode {
	case opError:
		code := c.int()
		msg := c.str()
		if c.bad && e.cut() {
			msg, c.bad = c.b, false
		}
		t.add("[", strconv.Itoa(int(code)), "] ")
		t.addBytes(msg)
	case opReady:
	case opAuthenticate:
		t.addBytes(c.str())
	case opSupported:
		t.stringMap(c, true)
	case opAuthChallenge, opAuthSuccess:
		b, _ := c.value()
		t.add(hexBytes(b))
	case opEvent:
		typ := c.str()
		t.addBytes(typ)
		t.add(" ")
		switch string(typ) {
		case "TOPOLOGY_CHANGE", "STATUS_CHANGE":
			t.addBytes(c.str())
			n := int(c.byte())
			if a, ok := addrFrom(c.take(n)); ok {
				t.add(" ", a)
			}
			c.int()
		case "SCHEMA_CHANGE":
			t.schemaChange(c)
		}
	case opResult:
		switch c.int() {
		case resultVoid:
			t.add("Response type = VOID")
		case resultRows:
			cols, count := c.metadata(e.version, false)
			rows := int(c.int())
			names := make([][]byte, len(cols))
			for i, col := range cols {
				names[i] = col.name
			}
			t.rows(count, names, rows)
			r.noMetadata, r.ncols, r.nrows = count > 0 && len(cols) == 0, count, rows
		case resultSetKeyspace:
			t.add("Response type = SET_KEYSPACE\nKeyspace = ")
			t.addBytes(c.str())
		case resultPrepared:
			id := c.shortBytes()
			if e.version >= 5 {
				c.shortBytes()
			}
			cols, _ := c.metadata(e.version, true)
			t.add("Response type = PREPARED\nPrepared id = ", hexBytes(id))
			if !c.bad {
				r.preparedID = append(r.preparedID[:0], id...)
				r.types = r.types[:0]
				for _, col := range cols {
					r.types = append(r.types, col.typ)
				}
				results, _ := c.metadata(e.version, false)
				if !c.bad {
					for _, col := range results {
						r.results = append(r.results, append([]byte(nil), col.name...))
					}
				}
				c.bad = false // the result metadata is optional here
			}
		case resultSchemaChange:
			t.add("Response type = SCHEMA_CHANGE\n")
			t.schemaChange(c)
		default:
			c.bad = true
		}
	}
	r.body = t.b
	return !c.bad
}

// rows appends a Rows result: its column count, names and row count.
func (t *text) rows(ncols int, names [][]byte, nrows int) {
	t.add("Response type = ROWS\nNumber of columns = ", strconv.Itoa(ncols), "\n")
	t.strings(names)
	t.add("\nNumber of rows = ", strconv.Itoa(nrows))
}
