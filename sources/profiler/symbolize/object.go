package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"

	"golang.org/x/sys/unix"
)

// object is one mapped file: identified (mapped, headers and build id
// read) when first seen, indexed (symbol tables sorted) when the read
// budget allows, then named from in place.
type object struct {
	key     fileKey
	buildID string
	data    []byte // the file, mapped read-only; nil once closed or failed
	order   binary.ByteOrder
	class   elf.Class
	dynamic bool // names an interpreter
	loads   []segment
	secs    sections

	state   objState
	cost    int64    // bytes indexing reads, against the budget
	gofuncs *goFuncs // Go's pclntab, when the file is a Go binary
	syms    symTable // .symtab, else .dynsym
	memo    map[uint64]string
	used    uint64 // the generation (drain) it was last used in
}

type objState uint8

const (
	identified objState = iota // tables not read yet
	ready                      // tables read
	failed                     // names nothing: not ELF, or its tables fault
	closed                     // evicted from the cache: open it again
)

// segment is a PT_LOAD program header.
type segment struct{ off, filesz, vaddr uint64 }

// section is where a section's bytes are in the file.
type section struct {
	off, size, addr uint64
	link            uint32
	ok              bool
}

type sections struct {
	pclntab, text, symtab, dynsym section
	symstr, dynstr                section
}

// headerCost is what identifying and indexing a file costs beyond the
// symbol tables it reads, in budget bytes, so that many small files are
// bounded too.
const headerCost = 16 << 10

var errNotELF = errors.New("not an ELF file")

// identify maps f and reads its headers and build id.
func identify(f *os.File, key fileKey) (*object, error) {
	if key.size <= 0 || key.size != int64(int(key.size)) {
		return nil, errNotELF
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(key.size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("symbolize: mapping %s: %w", f.Name(), err)
	}
	o := &object{key: key, data: data}
	if err := guard(func() error { return o.readHeaders() }); err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return o, nil
}

func (o *object) readHeaders() error {
	ef, err := elf.NewFile(bytes.NewReader(o.data))
	if err != nil {
		return errNotELF
	}
	o.order, o.class = ef.ByteOrder, ef.Class
	for _, p := range ef.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			o.loads = append(o.loads, segment{p.Off, p.Filesz, p.Vaddr})
		case elf.PT_INTERP:
			o.dynamic = true
		}
	}
	get := func(name string) section {
		s := ef.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 || s.Offset+s.Size > uint64(len(o.data)) {
			return section{}
		}
		return section{off: s.Offset, size: s.Size, addr: s.Addr, link: s.Link, ok: true}
	}
	link := func(s section) section {
		if !s.ok || int(s.link) >= len(ef.Sections) {
			return section{}
		}
		return get(ef.Sections[s.link].Name)
	}
	o.secs = sections{pclntab: get(".gopclntab"), text: get(".text"), symtab: get(".symtab"), dynsym: get(".dynsym")}
	o.secs.symstr, o.secs.dynstr = link(o.secs.symtab), link(o.secs.dynsym)
	o.buildID = o.readBuildID(get(".note.gnu.build-id"), get(".note.go.buildid"))
	o.cost = headerCost
	if t := o.symbolSection(); t.ok {
		o.cost += int64(t.size)
	}
	return nil
}

// symbolSection is the ELF symbol table that indexing reads: none for a
// static Go binary, whose pclntab names everything (a cgo binary, linked
// dynamically, has C code only its symbols name), else .symtab, else the
// exported .dynsym.
func (o *object) symbolSection() section {
	if o.secs.pclntab.ok && o.secs.text.ok && !o.dynamic {
		return section{}
	}
	if o.secs.symtab.ok && o.secs.symstr.ok {
		return o.secs.symtab
	}
	if o.secs.dynsym.ok && o.secs.dynstr.ok {
		return o.secs.dynsym
	}
	return section{}
}

func (o *object) bytes(s section) []byte { return o.data[s.off : s.off+s.size] }

// readBuildID returns the GNU build id in hex, else Go's, else "".
func (o *object) readBuildID(gnu, gob section) string {
	if gnu.ok {
		if desc, ok := noteDesc(o.bytes(gnu), o.order, 3 /* NT_GNU_BUILD_ID */); ok {
			return "gnu:" + hex.EncodeToString(desc)
		}
	}
	if gob.ok {
		if desc, ok := noteDesc(o.bytes(gob), o.order, 4 /* Go's build id note */); ok {
			return "go:" + string(desc)
		}
	}
	return ""
}

// noteDesc returns the descriptor of the first note of type typ in b.
func noteDesc(b []byte, order binary.ByteOrder, typ uint32) ([]byte, bool) {
	align := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, t := uint64(order.Uint32(b)), uint64(order.Uint32(b[4:])), order.Uint32(b[8:])
		start := 12 + align(namesz)
		end := start + descsz
		if end > uint64(len(b)) {
			return nil, false
		}
		if t == typ {
			return b[start:end], true
		}
		b = b[min(start+align(descsz), uint64(len(b))):]
	}
	return nil, false
}

// index reads the file's function tables: Go's pclntab in place, and the
// ELF symbols of symbolSection as a sorted table of (address, size, name
// offset) whose names stay in the file's string table.
func (o *object) index() error {
	return guard(func() error {
		if o.secs.pclntab.ok && o.secs.text.ok {
			o.gofuncs = newGoFuncs(o.bytes(o.secs.pclntab), o.secs.text.addr)
		}
		var lo, hi uint64 // Go's functions, which ELF symbols need not repeat
		if o.gofuncs != nil {
			lo, hi = o.gofuncs.textRange()
		}
		switch t := o.symbolSection(); {
		case !t.ok:
		case t == o.secs.symtab:
			o.syms = readSymbols(o.bytes(t), o.bytes(o.secs.symstr), o.class, o.order, lo, hi)
		default:
			o.syms = readSymbols(o.bytes(t), o.bytes(o.secs.dynstr), o.class, o.order, lo, hi)
		}
		o.state = ready
		return nil
	})
}

// vaddr converts a file offset to the virtual address the file's code was
// linked at, through the PT_LOAD segment holding it.
func (o *object) vaddr(off uint64) (uint64, bool) {
	for _, p := range o.loads {
		if off >= p.off && off < p.off+p.filesz {
			return off - p.off + p.vaddr, true
		}
	}
	return 0, false
}

// maxMemo bounds the names remembered per file; past it they start again.
const maxMemo = 1 << 16

// name returns the function holding the virtual address pc, from a ready
// object.
func (o *object) name(pc uint64) (string, bool) {
	if name, ok := o.memo[pc]; ok {
		return name, name != ""
	}
	var name string
	err := guard(func() error {
		if o.gofuncs != nil {
			if n, ok := o.gofuncs.name(pc); ok {
				name = n
				return nil
			}
		}
		name, _ = o.syms.lookup(pc)
		return nil
	})
	if err != nil {
		o.fail()
		return "", false
	}
	if o.memo == nil || len(o.memo) >= maxMemo {
		o.memo = map[uint64]string{}
	}
	o.memo[pc] = name
	return name, name != ""
}

// fail makes o name nothing from now on (its mapping faulted: the file
// was truncated). Frames named from it already keep their names.
func (o *object) fail() {
	o.state = failed
	o.gofuncs, o.syms, o.memo = nil, symTable{}, nil
	o.unmap()
}

func (o *object) unmap() {
	if o.data != nil {
		unix.Munmap(o.data)
		o.data = nil
	}
}

// symTable is a file's functions sorted by address, their names offsets
// into the file's string table.
type symTable struct {
	entries []symEntry
	names   []byte
}

type symEntry struct {
	addr uint64
	size uint32
	name uint32
}

// readSymbols reads the function symbols of an ELF symbol table, leaving
// out those in [skipLo, skipHi).
func readSymbols(tab, names []byte, class elf.Class, order binary.ByteOrder, skipLo, skipHi uint64) symTable {
	size := elf.Sym64Size
	if class == elf.ELFCLASS32 {
		size = elf.Sym32Size
	}
	var out []symEntry
	for off := size; off+size <= len(tab); off += size { // entry 0 is null
		e := tab[off : off+size]
		var name uint32
		var info byte
		var shndx uint16
		var value, sz uint64
		if class == elf.ELFCLASS32 {
			name, value, sz = order.Uint32(e), uint64(order.Uint32(e[4:])), uint64(order.Uint32(e[8:]))
			info, shndx = e[12], order.Uint16(e[14:])
		} else {
			name, info, shndx = order.Uint32(e), e[4], order.Uint16(e[6:])
			value, sz = order.Uint64(e[8:]), order.Uint64(e[16:])
		}
		if elf.ST_TYPE(info) != elf.STT_FUNC || value == 0 || shndx == uint16(elf.SHN_UNDEF) || int(name) >= len(names) {
			continue
		}
		if value >= skipLo && value < skipHi {
			continue
		}
		out = append(out, symEntry{addr: value, size: uint32(min(sz, 1<<32-1)), name: name})
	}
	// A total order (aliases by name offset), so an address is always
	// named alike.
	slices.SortFunc(out, func(a, b symEntry) int {
		if a.addr != b.addr {
			if a.addr < b.addr {
				return -1
			}
			return 1
		}
		return int(a.name) - int(b.name)
	})
	return symTable{entries: slices.Clip(out), names: names}
}

// lookup returns the function holding pc: the last symbol at or below it,
// unless pc is past that symbol's end.
func (t *symTable) lookup(pc uint64) (string, bool) {
	i, _ := slices.BinarySearchFunc(t.entries, pc+1, func(e symEntry, v uint64) int {
		if e.addr < v {
			return -1
		}
		return 1
	})
	i-- // the last entry below pc+1
	if i < 0 {
		return "", false
	}
	e := t.entries[i]
	if e.size > 0 && pc >= e.addr+uint64(e.size) {
		return "", false // between functions
	}
	return cstring(t.names[e.name:]), true
}

func cstring(b []byte) string {
	if end := bytes.IndexByte(b, 0); end >= 0 {
		b = b[:end]
	}
	return string(b)
}

// errFault is a fault on a mapped file: it was truncated under the
// mapping.
var errFault = errors.New("symbolize: mapped file changed under its mapping")

// guard runs f, turning a fault on mapped memory into errFault instead of
// a crash.
func guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = errFault
		}
	}()
	return f()
}
