package mongodb

import (
	"encoding/binary"
	"math"
)

// The tests write their messages with these: a BSON document from keys
// and values (int32, int64, float64, string, bool, nil, d for a document,
// arr for an array, raw for bytes of a value of a given type), and
// messages of each opcode.

type kv struct {
	k string
	v any
}

type d []kv

type arr []any

// raw is a value given as its type and bytes.
type raw struct {
	t byte
	b []byte
}

func (doc d) bson() []byte {
	b := []byte{0, 0, 0, 0}
	for _, e := range doc {
		b = appendElem(b, e.k, e.v)
	}
	b = append(b, 0)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

func appendElem(b []byte, k string, v any) []byte {
	key := func(t byte) []byte { return append(append(append(b, t), k...), 0) }
	switch v := v.(type) {
	case int:
		return binary.LittleEndian.AppendUint32(key(tInt32), uint32(int32(v)))
	case int32:
		return binary.LittleEndian.AppendUint32(key(tInt32), uint32(v))
	case int64:
		return binary.LittleEndian.AppendUint64(key(tInt64), uint64(v))
	case float64:
		return binary.LittleEndian.AppendUint64(key(tDouble), math.Float64bits(v))
	case string:
		b = binary.LittleEndian.AppendUint32(key(tString), uint32(len(v)+1))
		return append(append(b, v...), 0)
	case bool:
		if v {
			return append(key(tBool), 1)
		}
		return append(key(tBool), 0)
	case nil:
		return key(tNull)
	case d:
		return append(key(tDocument), v.bson()...)
	case arr:
		var doc d
		for i, x := range v {
			doc = append(doc, kv{itoa(i), x})
		}
		return append(key(tArray), doc.bson()...)
	case raw:
		return append(key(v.t), v.b...)
	}
	panic("unknown type")
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// msgHeader prefixes payload with a header.
func msgHeader(reqID, respTo, op int32, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(headerLen+len(payload)))
	b = binary.LittleEndian.AppendUint32(b, uint32(reqID))
	b = binary.LittleEndian.AppendUint32(b, uint32(respTo))
	b = binary.LittleEndian.AppendUint32(b, uint32(op))
	return append(b, payload...)
}

// seq is an OP_MSG document sequence (kind 1).
type seq struct {
	ident string
	docs  []d
}

// opMsgBytes is an OP_MSG: its flags, body and sequences, and a checksum
// when the flags say so (its value is not checked).
func opMsgBytes(reqID, respTo int32, flags uint32, body d, seqs ...seq) []byte {
	p := binary.LittleEndian.AppendUint32(nil, flags)
	p = append(p, 0)
	p = append(p, body.bson()...)
	for _, s := range seqs {
		var docs []byte
		for _, x := range s.docs {
			docs = append(docs, x.bson()...)
		}
		p = append(p, 1)
		p = binary.LittleEndian.AppendUint32(p, uint32(4+len(s.ident)+1+len(docs)))
		p = append(append(append(p, s.ident...), 0), docs...)
	}
	if flags&flagChecksum != 0 {
		p = append(p, 0xde, 0xad, 0xbe, 0xef)
	}
	return msgHeader(reqID, respTo, opMsg, p)
}

// opQueryBytes is an OP_QUERY of coll.
func opQueryBytes(reqID int32, coll string, query d) []byte {
	p := binary.LittleEndian.AppendUint32(nil, 0)
	p = append(append(p, coll...), 0)
	p = binary.LittleEndian.AppendUint32(p, 0)
	p = binary.LittleEndian.AppendUint32(p, uint32(0xffffffff)) // numberToReturn -1
	return msgHeader(reqID, 0, opQuery, append(p, query.bson()...))
}

// opReplyBytes is an OP_REPLY of docs.
func opReplyBytes(reqID, respTo int32, docs ...d) []byte {
	p := make([]byte, 16)
	p = binary.LittleEndian.AppendUint32(p, uint32(len(docs)))
	for _, x := range docs {
		p = append(p, x.bson()...)
	}
	return msgHeader(reqID, respTo, opReply, p)
}
