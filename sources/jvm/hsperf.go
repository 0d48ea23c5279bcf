package jvm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The hsperfdata format, as HotSpot writes it (perfMemory.hpp): a
// 32-byte prologue, then entries, each a 20-byte header followed by its
// NUL-terminated name and its data, at offsets relative to the entry.
const (
	magic        = 0xcafec0c0 // the file's first four bytes, in either byte order
	prologueSize = 32
	entryHdrSize = 20

	orderBig    = 0
	orderLittle = 1
)

// Basic types of entries (HotSpot's field descriptor characters).
const (
	TypeLong = 'J' // int64
	TypeByte = 'B' // byte, in vectors: strings
)

// Units of an entry's value.
type Units uint8

const (
	UnitsNone   Units = 1
	UnitsBytes  Units = 2
	UnitsTicks  Units = 3 // sun.os.hrt.frequency per second
	UnitsEvents Units = 4
	UnitsString Units = 5
	UnitsHertz  Units = 6
)

// Variability says whether an entry's value changes.
type Variability uint8

const (
	Constant  Variability = 1
	Monotonic Variability = 2
	Variable  Variability = 3
)

// ErrNotReady is returned for a file whose JVM has not finished writing
// it (the prologue's accessible flag is clear).
var ErrNotReady = errors.New("hsperfdata: not accessible yet")

// Entry is one counter of a file.
type Entry struct {
	Name        string
	Type        byte // TypeLong, TypeByte or another descriptor character
	Units       Units
	Variability Variability
	// Long is the value of a scalar TypeLong entry.
	Long int64
	// Data is the value of any other entry (a vector), as stored (it
	// aliases the parsed buffer); for a TypeByte vector, a NUL-padded
	// string.
	Data []byte
}

// String returns a TypeByte vector as a string, up to its first NUL.
func (e Entry) String() string {
	for i, c := range e.Data {
		if c == 0 {
			return string(e.Data[:i])
		}
	}
	return string(e.Data)
}

// PerfData is a parsed hsperfdata file.
type PerfData struct {
	Major, Minor int
	// ModTime is when the JVM last added an entry, in hrt ticks.
	ModTime int64
	Entries []Entry
	index   map[string]int
}

// Long returns the scalar long entry name.
func (p *PerfData) Long(name string) (int64, bool) {
	i, ok := p.index[name]
	if !ok || p.Entries[i].Type != TypeLong || p.Entries[i].Data != nil {
		return 0, false
	}
	return p.Entries[i].Long, true
}

// Str returns the string entry name.
func (p *PerfData) Str(name string) (string, bool) {
	i, ok := p.index[name]
	if !ok || p.Entries[i].Type != TypeByte {
		return "", false
	}
	return p.Entries[i].String(), true
}

// Parse parses an hsperfdata file. It returns ErrNotReady for a file
// that is still being initialized, and an error for anything malformed:
// it never reads outside b.
func Parse(b []byte) (*PerfData, error) {
	if len(b) < prologueSize {
		return nil, fmt.Errorf("hsperfdata: %d bytes, shorter than the prologue", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != magic {
		return nil, fmt.Errorf("hsperfdata: bad magic %#x", m)
	}
	var bo binary.ByteOrder
	switch b[4] {
	case orderBig:
		bo = binary.BigEndian
	case orderLittle:
		bo = binary.LittleEndian
	default:
		return nil, fmt.Errorf("hsperfdata: bad byte order %d", b[4])
	}
	p := &PerfData{Major: int(b[5]), Minor: int(b[6])}
	if p.Major != 2 {
		return nil, fmt.Errorf("hsperfdata: version %d.%d, want 2.x", p.Major, p.Minor)
	}
	if b[7] == 0 {
		return nil, ErrNotReady
	}
	used := int64(int32(bo.Uint32(b[8:])))
	p.ModTime = int64(bo.Uint64(b[16:]))
	off := int64(int32(bo.Uint32(b[24:])))
	n := int64(int32(bo.Uint32(b[28:])))
	// The entries end at used, which the JVM bumps as it adds them.
	if used < prologueSize || used > int64(len(b)) {
		return nil, fmt.Errorf("hsperfdata: used size %d outside the file's %d bytes", used, len(b))
	}
	if n < 0 || off < prologueSize || off > used || n > (used-off)/entryHdrSize {
		return nil, fmt.Errorf("hsperfdata: %d entries at %d do not fit in %d bytes", n, off, used)
	}
	b = b[:used]
	p.Entries = make([]Entry, 0, n)
	p.index = make(map[string]int, n)
	for i := int64(0); i < n; i++ {
		e, size, err := parseEntry(b[off:], bo)
		if err != nil {
			return nil, fmt.Errorf("hsperfdata: entry %d at %d: %w", i, off, err)
		}
		p.index[e.Name] = len(p.Entries)
		p.Entries = append(p.Entries, e)
		off += size
	}
	return p, nil
}

// parseEntry parses the entry at the start of b and returns it with its
// length.
func parseEntry(b []byte, bo binary.ByteOrder) (Entry, int64, error) {
	if len(b) < entryHdrSize {
		return Entry{}, 0, fmt.Errorf("%d bytes left, shorter than an entry header", len(b))
	}
	size := int64(int32(bo.Uint32(b)))
	nameOff := int64(int32(bo.Uint32(b[4:])))
	vlen := int64(int32(bo.Uint32(b[8:])))
	dataOff := int64(int32(bo.Uint32(b[16:])))
	if size < entryHdrSize || size > int64(len(b)) {
		return Entry{}, 0, fmt.Errorf("length %d outside the %d bytes left", size, len(b))
	}
	b = b[:size]
	e := Entry{Type: b[12], Units: Units(b[14]), Variability: Variability(b[15])}
	if nameOff < entryHdrSize || nameOff >= size {
		return Entry{}, 0, fmt.Errorf("name offset %d outside the entry's %d bytes", nameOff, size)
	}
	name := b[nameOff:]
	end := -1
	for i, c := range name {
		if c == 0 {
			end = i
			break
		}
	}
	if end <= 0 {
		return Entry{}, 0, fmt.Errorf("name at %d is empty or not terminated", nameOff)
	}
	e.Name = string(name[:end])
	if dataOff < entryHdrSize || dataOff > size {
		return Entry{}, 0, fmt.Errorf("%s: data offset %d outside the entry's %d bytes", e.Name, dataOff, size)
	}
	data := b[dataOff:]
	switch {
	case vlen < 0:
		return Entry{}, 0, fmt.Errorf("%s: vector length %d", e.Name, vlen)
	case vlen == 0 && e.Type == TypeLong:
		if len(data) < 8 {
			return Entry{}, 0, fmt.Errorf("%s: long at %d past the entry's end", e.Name, dataOff)
		}
		e.Long = int64(bo.Uint64(data))
	case vlen == 0:
		// A scalar of a type HotSpot does not write: kept, without value.
	default:
		elem := int64(1)
		if e.Type == TypeLong {
			elem = 8
		}
		if vlen > int64(len(data))/elem {
			return Entry{}, 0, fmt.Errorf("%s: vector of %d past the entry's end", e.Name, vlen)
		}
		e.Data = data[: vlen*elem : vlen*elem]
	}
	return e, size, nil
}
