package symbolize

import (
	"bytes"
	"debug/gosym"
	"encoding/binary"
)

// goFuncs names the functions of a Go binary from its .gopclntab, read in
// place from the mapped file, without decoding the whole table: the function table is sorted by entry, so a
// lookup is a binary search and reads one name. Go 1.18 and later lay the
// table out this way (magic 0xfffffff0 and 0xfffffff1); older binaries go
// through debug/gosym, which decodes every function first.
type goFuncs struct {
	data      []byte
	text      uint64 // runtime.text
	nfunc     int
	functab   []byte // nfunc+1 pairs of (entry offset, func offset), uint32 each
	funcnames []byte
	old       *gosym.Table
}

func newGoFuncs(data []byte, text uint64) *goFuncs {
	le := binary.LittleEndian
	if len(data) >= 8 {
		switch le.Uint32(data) {
		case 0xfffffff0, 0xfffffff1:
			if g := parse118(data, text); g != nil {
				return g
			}
		}
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil || len(tab.Funcs) == 0 {
		return nil
	}
	return &goFuncs{old: tab}
}

// parse118 reads the header of a Go 1.18+ pclntab: magic, two pad bytes,
// the instruction size quantum, the pointer size, then nfunc, nfiles,
// textStart, and the offsets of funcnametab, cutab, filetab, pctab and
// the function table, each a pointer-sized word.
func parse118(data []byte, text uint64) *goFuncs {
	ptr := int(data[7])
	if ptr != 4 && ptr != 8 || data[4] != 0 || data[5] != 0 {
		return nil
	}
	word := func(i int) (uint64, bool) {
		off := 8 + i*ptr
		if off+ptr > len(data) {
			return 0, false
		}
		if ptr == 4 {
			return uint64(binary.LittleEndian.Uint32(data[off:])), true
		}
		return binary.LittleEndian.Uint64(data[off:]), true
	}
	// The header's textStart is runtime.text as linked, right also where
	// an external linker put C code before it in .text.
	if start, ok := word(2); ok && start != 0 {
		text = start
	}
	nfunc, ok1 := word(0)
	nameOff, ok2 := word(3)
	pclnOff, ok3 := word(7)
	if !ok1 || !ok2 || !ok3 || nameOff > uint64(len(data)) || pclnOff > uint64(len(data)) {
		return nil
	}
	functab := data[pclnOff:]
	if uint64(len(functab)) < (nfunc+1)*8 {
		return nil
	}
	return &goFuncs{data: data, text: text, nfunc: int(nfunc), functab: functab, funcnames: data[nameOff:]}
}

// textRange returns the addresses the table names: [runtime.text, end of
// the last function).
func (g *goFuncs) textRange() (lo, hi uint64) {
	if g.old != nil {
		if n := len(g.old.Funcs); n > 0 {
			return g.old.Funcs[0].Entry, g.old.Funcs[n-1].End
		}
		return 0, 0
	}
	return g.text, g.text + uint64(binary.LittleEndian.Uint32(g.functab[8*g.nfunc:]))
}

// name returns the function holding pc.
func (g *goFuncs) name(pc uint64) (string, bool) {
	if g.old != nil {
		if fn := g.old.PCToFunc(pc); fn != nil {
			return fn.Name, true
		}
		return "", false
	}
	if pc < g.text {
		return "", false
	}
	le := binary.LittleEndian
	off := pc - g.text
	entry := func(i int) uint64 { return uint64(le.Uint32(g.functab[8*i:])) }
	// The last entry is the end of the last function.
	if off >= entry(g.nfunc) {
		return "", false
	}
	lo, hi := 0, g.nfunc
	for lo < hi {
		mid := (lo + hi) / 2
		if entry(mid) <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	i := lo - 1
	if i < 0 {
		return "", false
	}
	// A _func starts with its entry offset, then its name's offset in
	// funcnametab.
	fo := uint64(le.Uint32(g.functab[8*i+4:]))
	if fo+8 > uint64(len(g.functab)) {
		return "", false
	}
	no := uint64(le.Uint32(g.functab[fo+4:]))
	if no >= uint64(len(g.funcnames)) {
		return "", false
	}
	name := g.funcnames[no:]
	if end := bytes.IndexByte(name, 0); end >= 0 {
		name = name[:end]
	}
	return string(name), true
}
