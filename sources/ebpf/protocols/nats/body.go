package nats

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// appendBody appends the body column of m: a JSON object of the
// command's fields, keys in alphabetical order as Pixie writes them;
// the JSON object itself for INFO and CONNECT (credentials hidden);
// nothing for PING, PONG, +OK and -ERR.
func appendBody(b []byte, m *message) []byte {
	a := m.args[:m.nargs]
	switch m.kind {
	case kInfo, kConnect:
		return appendOptions(b, a[0], m.kind == kConnect)
	case kPub, kHPub:
		// PUB <subject> [reply-to]
		o := object{b: b}
		o.headers(m)
		o.payload(m)
		if len(a) == 2 {
			o.str("reply-to", a[1])
		}
		o.status(m)
		o.str("subject", a[0])
		return o.end()
	case kMsg, kHMsg:
		// MSG <subject> <sid> [reply-to]
		o := object{b: b}
		o.headers(m)
		o.payload(m)
		if len(a) == 3 {
			o.str("reply-to", a[2])
		}
		o.str("sid", a[1])
		o.status(m)
		o.str("subject", a[0])
		return o.end()
	case kSub:
		// SUB <subject> [queue group] <sid>
		o := object{b: b}
		if len(a) == 3 {
			o.str("queue group", a[1])
		}
		o.str("sid", a[len(a)-1])
		o.str("subject", a[0])
		return o.end()
	case kUnsub:
		// UNSUB <sid> [max_msgs]
		o := object{b: b}
		if len(a) == 2 {
			o.str("max_msgs", a[1])
		}
		o.str("sid", a[0])
		return o.end()
	}
	return b
}

// object appends a JSON object's members.
type object struct {
	b []byte
	n int
}

func (o *object) key(k string) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = wire.AppendJSONString(o.b, []byte(k))
	o.b = append(o.b, ':')
}

func (o *object) str(k string, v []byte) {
	o.key(k)
	o.b = wire.AppendJSONString(o.b, v)
}

func (o *object) end() []byte {
	if o.n == 0 {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

// payload adds the kept payload and its full size.
func (o *object) payload(m *message) {
	o.str("payload", m.payload)
	o.key("payload_size")
	o.b = strconv.AppendInt(o.b, int64(m.size), 10)
}

// headers adds the header block of an HPUB or HMSG ("NATS/1.0",
// optionally a status, then "Name: value" lines) as an object; a name
// given more than once has its values joined by commas.
func (o *object) headers(m *message) {
	if m.kind != kHPub && m.kind != kHMsg {
		return
	}
	o.key("headers")
	_, rest, _ := bytes.Cut(m.hdr, []byte("\r\n")) // the version line
	type kv struct{ k, v []byte }
	var fields [16]kv
	list := fields[:0]
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok || len(k) == 0 {
			continue
		}
		v = bytes.TrimSpace(v)
		merged := false
		for i := range list {
			if bytes.Equal(list[i].k, k) {
				// Joined in a scratch copy: the header bytes stay as read.
				list[i].v = append(append(append([]byte(nil), list[i].v...), ','), v...)
				merged = true
				break
			}
		}
		if !merged {
			list = append(list, kv{k, v})
		}
	}
	o.b = append(o.b, '{')
	for i, f := range list {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = wire.AppendJSONString(o.b, f.k)
		o.b = append(o.b, ':')
		o.b = wire.AppendJSONString(o.b, f.v)
	}
	o.b = append(o.b, '}')
}

// status adds the status code of a header block's version line
// ("NATS/1.0 503": no responders), when it has one.
func (o *object) status(m *message) {
	if m.kind != kHPub && m.kind != kHMsg {
		return
	}
	first, _, _ := bytes.Cut(m.hdr, []byte("\r\n"))
	f := bytes.Fields(first)
	if len(f) >= 2 {
		o.str("status", f[1])
	}
}

// secretOptions are the CONNECT options that hold credentials; their
// values are not kept.
var secretOptions = map[string]bool{"pass": true, "auth_token": true}

// appendOptions appends the JSON object of an INFO or a CONNECT, its
// keys sorted, with the credentials of a CONNECT replaced by "<hidden>";
// text that is not a JSON object is kept as a JSON string.
func appendOptions(b, text []byte, connect bool) []byte {
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(text, &opts); err != nil || opts == nil {
		return wire.AppendJSONString(b, text)
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	start := len(b)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, []byte(k))
		b = append(b, ':')
		if connect && secretOptions[k] {
			b = append(b, `"<hidden>"`...)
			continue
		}
		w := bytes.NewBuffer(b)
		if err := json.Compact(w, opts[k]); err != nil {
			return wire.AppendJSONString(b[:start], text)
		}
		b = w.Bytes()
	}
	return append(b, '}')
}

// verboseOption reports whether a CONNECT's options ask for verbose mode
// (a +OK after every command).
func verboseOption(text []byte) bool {
	var opts struct {
		Verbose bool `json:"verbose"`
	}
	return json.Unmarshal(text, &opts) == nil && opts.Verbose
}
