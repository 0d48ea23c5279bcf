package mongodb

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// A section of an OP_MSG: kind 0 is the command's (or reply's) document,
// kind 1 a sequence of documents that belongs to it under a name
// (insert's "documents", update's "updates", delete's "deletes").
type section struct {
	ident []byte // kind 1's name; nil for kind 0
	docs  []byte // kind 0's document, kind 1's documents one after the other
}

// splitSections splits the sections of an OP_MSG's payload (after its
// flags; without its checksum when the message is whole). It returns the
// kind 0 body, the kind 1 sequences, and whether the bytes ended inside
// a section (a prefix was kept).
func splitSections(b []byte, seqs []section) (body []byte, _ []section, short bool, err error) {
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if len(b) < 4 {
			return body, seqs, true, nil
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		switch kind {
		case 0:
			if n < 5 || body != nil {
				return nil, seqs, false, errBad
			}
			if n > len(b) {
				return b, seqs, true, nil
			}
			body, b = b[:n], b[n:]
		case 1:
			if n < 4+1 {
				return nil, seqs, false, errBad
			}
			s, rest, ok := wire.Take(b[4:], n-4)
			short = !ok
			ident, docs, ok := wire.CString(s)
			if !ok {
				if short {
					return body, seqs, true, nil
				}
				return nil, seqs, false, errBad
			}
			seqs = append(seqs, section{ident: ident, docs: docs})
			if short {
				return body, seqs, true, nil
			}
			b = rest
		default:
			return nil, seqs, false, errBad
		}
	}
	return body, seqs, false, nil
}

// decoded is what a message gave for its row.
type decoded struct {
	first []byte // the first key of its document: the command
	ok    []byte // the type and value of its "ok" element; nil when none
	flags uint32 // OP_MSG's flag bits
}

// decoder turns messages into JSON for the rows, within a budget.
type decoder struct {
	w    jsonOut
	seqs []section
}

// opMsg decodes the payload of an OP_MSG (what follows the header): the
// body with its document sequences under their names, as one JSON
// object. whole says the payload was kept whole.
func (dc *decoder) opMsg(b []byte, whole bool, max int) (decoded, error) {
	var out decoded
	if len(b) < 4 {
		return out, errBad
	}
	out.flags = binary.LittleEndian.Uint32(b)
	if out.flags&flagsRequired != 0 {
		return out, errBad
	}
	b = b[4:]
	if whole && out.flags&flagChecksum != 0 {
		if len(b) < 4 {
			return out, errBad
		}
		b = b[:len(b)-4]
	}
	body, seqs, short, err := splitSections(b, dc.seqs[:0])
	dc.seqs = seqs[:0]
	if err != nil || (whole && (short || body == nil)) {
		return out, errBad
	}
	w := &dc.w
	w.reset(max)
	d := bsonDoc{w: w}
	w.begin(true)
	if body != nil {
		_, err = d.elements(body, 0, false)
	}
	for _, s := range seqs {
		if err != nil || w.cut {
			break
		}
		err = d.sequence(s)
	}
	if err == errBad || (err == errShort && whole) {
		return out, errBad
	}
	if !whole {
		w.cut = true // what was not kept is not shown
	}
	d.finish(err)
	out.first, out.ok = d.first, d.ok
	return out, nil
}

// sequence writes a kind 1 section as a member of the open object: its
// name, and its documents in an array.
func (d *bsonDoc) sequence(s section) error {
	w := d.w
	if !w.member(s.ident, false, 2) {
		return nil
	}
	w.begin(false)
	depth := len(w.open)
	for b := s.docs; len(b) > 0; {
		if !w.member(nil, true, 2) {
			break
		}
		w.begin(true)
		rest, err := d.elements(b, 1, false)
		if err != nil {
			return err
		}
		w.end()
		b = rest
	}
	if !w.cut && len(w.open) == depth {
		w.end()
	}
	return nil
}

// opQuery decodes the payload of an OP_QUERY: flags, the collection's
// full name, skip and return counts, the query document. Only commands
// (to a database's "$cmd", as drivers send their handshake) are parsed;
// cmd reports whether it is one.
func (dc *decoder) opQuery(b []byte, whole bool, max int) (out decoded, cmd bool, err error) {
	if len(b) < 4 {
		return out, false, errBad
	}
	coll, rest, ok := wire.CString(b[4:])
	if !ok || len(rest) < 8 {
		return out, false, errBad
	}
	if !bytes.HasSuffix(coll, []byte(".$cmd")) {
		return out, false, nil
	}
	w := &dc.w
	w.reset(max)
	d := bsonDoc{w: w}
	_, err = d.document(rest[8:])
	if err == errBad || (err == errShort && whole) {
		return out, true, errBad
	}
	out.first, out.ok = d.first, d.ok
	if string(out.first) == "$query" || string(out.first) == "query" {
		// The command wrapped with its read preference: the command's
		// name is the first key of the wrapped document.
		if k := innerFirstKey(rest[8:]); k != nil {
			out.first = k
		}
	}
	return out, true, nil
}

// innerFirstKey returns the first key of the document that is the value
// of the first element of doc, or nil.
func innerFirstKey(doc []byte) []byte {
	if len(doc) < 5 || doc[4] != tDocument {
		return nil
	}
	_, v, ok := wire.CString(doc[5:])
	if !ok || len(v) < 6 || v[4] == 0 {
		return nil
	}
	k, _, ok := wire.CString(v[5:])
	if !ok {
		return nil
	}
	return k
}

// opReply decodes the payload of an OP_REPLY: flags, cursor id, starting
// position, the number of documents, and the documents: one document as
// it is, several in an array.
func (dc *decoder) opReply(b []byte, whole bool, max int) (decoded, error) {
	var out decoded
	if len(b) < 20 {
		return out, errBad
	}
	n := int32(binary.LittleEndian.Uint32(b[16:]))
	docs := b[20:]
	if n < 0 || (n == 0 && len(docs) > 0) {
		return out, errBad
	}
	w := &dc.w
	w.reset(max)
	d := bsonDoc{w: w}
	if n == 1 {
		rest, err := d.document(docs)
		if err == errBad || (err == errShort && whole) || (err == nil && whole && len(rest) != 0) {
			return out, errBad
		}
	} else {
		w.begin(false)
		var err error
		for i := int32(0); i < n && err == nil && !w.cut; i++ {
			if !w.member(nil, true, 2) {
				break
			}
			w.begin(true)
			depth := 1
			if i == 0 {
				depth = 0 // the first document's keys make the status
			}
			docs, err = d.elements(docs, depth, false)
			if err == nil {
				w.end()
			}
		}
		if err == errBad || (err == errShort && whole) {
			return out, errBad
		}
		d.finish(err)
	}
	out.first, out.ok = d.first, d.ok
	return out, nil
}

// status is a reply's resp_status, as Pixie shows it: the first key of
// the reply when it is a cursor's ("cursor": find, aggregate, getMore)
// or a command's name, else "ok: N" with the value of its "ok" element
// as an integer; "" when the reply has none (or it was not kept).
func status(d decoded) string {
	switch string(d.first) {
	case "cursor", "insert", "update", "delete", "find":
		return string(d.first)
	}
	if len(d.ok) == 0 {
		return ""
	}
	v := d.ok[1:]
	var n int64
	switch d.ok[0] {
	case tDouble:
		f := math.Float64frombits(binary.LittleEndian.Uint64(v))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return ""
		}
		n = int64(f)
	case tInt32:
		n = int64(int32(binary.LittleEndian.Uint32(v)))
	case tInt64:
		n = int64(binary.LittleEndian.Uint64(v))
	case tBool:
		n = int64(v[0])
	default:
		return ""
	}
	return "ok: " + strconv.FormatInt(n, 10)
}
