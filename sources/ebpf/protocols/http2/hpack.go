package http2

import (
	"golang.org/x/net/http2/hpack"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
)

// maxTableSize bounds the HPACK dynamic table a decoder keeps, and the
// length of one header name or value: a peer that advertises a larger
// SETTINGS_HEADER_TABLE_SIZE and has its encoder use it makes the decoder
// reset (the table is then unknown), which is safe, not wrong.
const maxTableSize = 64 << 10

// decoder is the HPACK decoder of one direction of a connection: the
// header blocks of every stream sent that way share one dynamic table, so
// it must see all of them, in order.
//
// When it cannot (bytes of a header block were lost, the connection was
// first seen mid-stream, a block did not decode), the decoder is replaced
// by a fresh one with an empty table. That table then holds exactly the
// entries added since, which are the newest of the peer's table, at the
// same indices: a block that refers only to the static table, to literals
// and to those entries decodes exactly; one that refers past them fails
// with an invalid index, and resets again. So a block is decoded right
// or not at all.
type decoder struct {
	dec *hpack.Decoder
	// known is set while the table is known from the connection's start.
	known bool
	// used is set when the decoder has seen bytes since it was made, so
	// that a reset that changes nothing is not counted.
	used bool

	fields   []http.Header // the block being decoded
	bytes    int           // name and value bytes in fields
	max      int           // bytes of fields kept per block
	overflow bool          // fields were dropped past max
}

func newDecoder(known bool, max int) *decoder {
	d := &decoder{max: max}
	d.reset(known)
	return d
}

// reset replaces the decoder by a fresh one. A decoder known from the
// connection's start has the initial table size (4096, RFC 7541 §4.2);
// a resynchronised one has the largest, so that it forgets as little as
// possible (holding entries the peer evicted is harmless: the peer never
// refers to them).
func (d *decoder) reset(known bool) {
	size := uint32(maxTableSize)
	if known {
		size = 4096
	}
	d.dec = hpack.NewDecoder(size, d.emit)
	d.dec.SetAllowedMaxDynamicTableSize(maxTableSize)
	d.dec.SetMaxStringLength(maxTableSize)
	d.known, d.used = known, false
	d.begin()
}

// begin starts a header block.
func (d *decoder) begin() {
	clear(d.fields)
	d.fields, d.bytes, d.overflow = d.fields[:0], 0, false
}

func (d *decoder) emit(f hpack.HeaderField) {
	n := len(f.Name) + len(f.Value)
	if d.bytes+n > d.max {
		d.overflow = true
		return
	}
	d.bytes += n
	d.fields = append(d.fields, http.Header{Name: f.Name, Value: f.Value})
}

// write decodes the next bytes of the block.
func (d *decoder) write(p []byte) error {
	d.used = true
	_, err := d.dec.Write(p)
	return err
}

// end ends the block; an error means it was cut short.
func (d *decoder) end() error { return d.dec.Close() }
