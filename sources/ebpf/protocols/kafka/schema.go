package kafka

import "fmt"

// The message formats are declared as data (apis.go) and compiled, per API
// key, version and direction, into a program that the decoder (decode.go)
// runs over the bytes as they come: a field list per version, as the
// protocol's own message definitions are written.

// ftype is how a field is encoded.
type ftype uint8

const (
	tInt8 ftype = iota + 1
	tInt16
	tInt32
	tInt64
	tBool
	tUUID
	tString   // string or nullable string: int16 length, or compact (uvarint length+1) in flexible versions
	tBytes    // bytes, shown as their size
	tRecords  // a record set (message set or record batches), summarised
	tArray    // array of structs
	tList     // array of a primitive
	tSubscr   // bytes holding a consumer protocol subscription
	tAssign   // bytes holding a consumer protocol assignment
	tTags     // tagged fields (flexible versions), skipped
	tVersion  // the int16 version that starts an embedded consumer protocol structure
	tClientID // the request header's client id (always an int16-length nullable string)
)

// hook marks a field whose value the parser needs besides rendering it.
type hook uint8

const (
	hNone      hook = iota
	hAcks           // Produce acks: 0 means no response comes
	hTopicName      // a Metadata response's topic name
	hTopicID        // a Metadata response's topic id: remembered with the name before it
	hResolve        // a topic id elsewhere: shown with its name when a Metadata response told it
)

// field is one field of a message or of an array's elements.
type field struct {
	name     string
	t        ftype
	elem     ftype   // tList's element type
	fields   []field // tArray's element fields
	min, max int16   // versions the field is in; max -1: no upper bound
	hook     hook
}

func f(name string, t ftype) field { return field{name: name, t: t, max: -1} }

// a is an array of structs with the given fields.
func a(name string, fields ...field) field {
	return field{name: name, t: tArray, fields: fields, max: -1}
}

// l is an array of primitives.
func l(name string, elem ftype) field { return field{name: name, t: tList, elem: elem, max: -1} }

// from says the field exists from version v on.
func (x field) from(v int16) field { x.min = v; return x }

// upto says the field exists up to version v.
func (x field) upto(v int16) field { x.max = v; return x }

// only says the field exists in versions lo to hi.
func (x field) only(lo, hi int16) field { x.min, x.max = lo, hi; return x }

func (x field) with(h hook) field { x.hook = h; return x }

func (x field) in(v int16) bool { return v >= x.min && (x.max < 0 || v <= x.max) }

// api is one API key's request and response formats.
type api struct {
	key      int16
	name     string
	max      int16 // the highest version parsed
	flexible int16 // the first flexible version; -1 when none is
	req      []field
	resp     []field
}

func (p *api) isFlexible(v int16) bool { return p.flexible >= 0 && v >= p.flexible }

// op is one instruction of a compiled program.
type op struct {
	t       ftype
	name    string // JSON key; "" for a list's element
	hook    hook
	compact bool  // flexible encoding of lengths
	elem    *prog // tArray, tList: the element program
}

// prog is a compiled field list: a message's body, or an array's element.
type prog struct {
	ops []op
	// object: the element is rendered as a JSON object (a struct);
	// otherwise it is one bare value (a list's element).
	object bool
}

// compile builds the program of fields at version v. Each struct of a
// flexible version ends with its tagged fields.
func compile(fields []field, v int16, flexible bool) *prog {
	p := &prog{object: true}
	for _, x := range fields {
		if !x.in(v) {
			continue
		}
		o := op{t: x.t, name: x.name, hook: x.hook, compact: flexible}
		switch x.t {
		case tArray:
			o.elem = compile(x.fields, v, flexible)
			if len(o.elem.ops) == 0 {
				panic(fmt.Sprintf("kafka: array %s has no fields at v%d", x.name, v))
			}
		case tList:
			o.elem = &prog{ops: []op{{t: x.elem, compact: flexible}}}
		}
		p.ops = append(p.ops, o)
	}
	if flexible {
		p.ops = append(p.ops, op{t: tTags})
	}
	return p
}

// programs are the compiled programs of one API key, by version.
type programs struct {
	api  *api
	req  []*prog // request bodies, after the header's fixed fields
	resp []*prog // response bodies, after the correlation id
}

// apis holds every parsed API key's programs, by key.
var apis = map[int16]*programs{}

// The embedded consumer protocol structures, by version (never flexible;
// a newer version than these is read as the newest, its extra bytes
// skipped, as the protocol asks of readers).
var subscrProgs, assignProgs []*prog

func init() {
	for i := range apiList {
		p := &apiList[i]
		ps := &programs{api: p}
		for v := int16(0); v <= p.max; v++ {
			flex := p.isFlexible(v)
			// The request header's client id, and its tagged fields in
			// flexible versions, come before the body.
			head := []op{{t: tClientID}}
			if flex {
				head = append(head, op{t: tTags})
			}
			req := compile(p.req, v, flex)
			req.ops = append(head, req.ops...)
			resp := compile(p.resp, v, flex)
			// ApiVersions responses keep header v0 (no tagged fields),
			// so that a client can read them whatever version it asked.
			if flex && p.key != keyApiVersions {
				resp.ops = append([]op{{t: tTags}}, resp.ops...)
			}
			ps.req, ps.resp = append(ps.req, req), append(ps.resp, resp)
		}
		apis[p.key] = ps
	}
	for v := int16(0); v <= subscrMax; v++ {
		subscrProgs = append(subscrProgs, compile(subscription, v, false))
	}
	for v := int16(0); v <= assignMax; v++ {
		assignProgs = append(assignProgs, compile(assignment, v, false))
	}
}
