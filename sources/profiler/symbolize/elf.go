package symbolize

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
	"sort"
)

// objectFile is what one ELF file says about its code: how file offsets
// map to its virtual addresses, and the names of its functions.
type objectFile struct {
	buildID string
	loads   []elf.ProgHeader // PT_LOAD segments
	syms    []elfSym         // functions of .symtab and .dynsym, by address
	gofuncs *goFuncs         // Go's pclntab, when the file is a Go binary
}

type elfSym struct {
	addr, size uint64
	name       string
}

// readObject reads the file's segments and symbols. A Go binary is named
// from its .gopclntab, which survives `-ldflags=-s -w`; other files from
// their ELF symbol tables (.symtab, else the exported .dynsym).
func readObject(r io.ReaderAt) (*objectFile, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := &objectFile{buildID: buildID(f)}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			o.loads = append(o.loads, p.ProgHeader)
		}
	}
	sec := f.Section(".gopclntab")
	if sec != nil {
		o.gofuncs = goTable(f, sec)
		// A Go binary's ELF symbols only add something for the C code
		// of a cgo binary, which is linked dynamically.
		if o.gofuncs != nil && !dynamic(f) {
			return o, nil
		}
	}
	for _, list := range [][]elf.Symbol{symbols(f.Symbols), symbols(f.DynamicSymbols)} {
		for _, s := range list {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || s.Section == elf.SHN_UNDEF {
				continue
			}
			o.syms = append(o.syms, elfSym{addr: s.Value, size: s.Size, name: s.Name})
		}
	}
	sort.SliceStable(o.syms, func(i, j int) bool { return o.syms[i].addr < o.syms[j].addr })
	return o, nil
}

func symbols(read func() ([]elf.Symbol, error)) []elf.Symbol {
	s, _ := read() // a file without the table: none
	return s
}

// goTable reads Go's function table. Function entries are relative to
// runtime.text: the start of .text, where the Go linker puts it (and an
// external linker, which keeps the Go objects' .text first).
func goTable(f *elf.File, sec *elf.Section) *goFuncs {
	data, err := sec.Data()
	if err != nil {
		return nil
	}
	t := f.Section(".text")
	if t == nil {
		return nil
	}
	return newGoFuncs(data, t.Addr)
}

// dynamic says f is linked dynamically (it names an interpreter).
func dynamic(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// vaddr converts a file offset to the virtual address the file's code was
// linked at, through the PT_LOAD segment holding it.
func (o *objectFile) vaddr(off uint64) (uint64, bool) {
	for _, p := range o.loads {
		if off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// name returns the function holding the virtual address pc.
func (o *objectFile) name(pc uint64) (string, bool) {
	if o.gofuncs != nil {
		if name, ok := o.gofuncs.name(pc); ok {
			return name, true
		}
	}
	i := sort.Search(len(o.syms), func(i int) bool { return o.syms[i].addr > pc }) - 1
	if i < 0 {
		return "", false
	}
	s := o.syms[i]
	if s.size > 0 && pc >= s.addr+s.size {
		return "", false // between functions
	}
	return s.name, true
}

// buildID returns the GNU build id in hex, else Go's build id, else "".
func buildID(f *elf.File) string {
	if sec := f.Section(".note.gnu.build-id"); sec != nil {
		if desc, ok := noteDesc(sec, 3 /* NT_GNU_BUILD_ID */); ok {
			return "gnu:" + hex.EncodeToString(desc)
		}
	}
	if sec := f.Section(".note.go.buildid"); sec != nil {
		if desc, ok := noteDesc(sec, 4 /* Go's build id note */); ok {
			return "go:" + string(desc)
		}
	}
	return ""
}

// noteDesc returns the descriptor of the first note of type typ in sec.
func noteDesc(sec *elf.Section, typ uint32) ([]byte, bool) {
	b, err := sec.Data()
	if err != nil {
		return nil, false
	}
	le := binary.LittleEndian
	align := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, t := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:])
		start := 12 + align(namesz)
		end := start + descsz
		if uint64(end) > uint64(len(b)) {
			return nil, false
		}
		if t == typ {
			return b[start:end], true
		}
		b = b[min(uint64(start+align(descsz)), uint64(len(b))):]
	}
	return nil, false
}
