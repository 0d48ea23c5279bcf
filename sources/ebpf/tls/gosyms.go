package tls

import (
	"bytes"
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// The Go functions probed. handshakeContext moves no data, but its entry
// tells the BPF side that the socket carries TLS before the handshake's
// records go over it.
const (
	GoFuncWrite     = "crypto/tls.(*Conn).Write"
	GoFuncRead      = "crypto/tls.(*Conn).Read"
	GoFuncHandshake = "crypto/tls.(*Conn).handshakeContext"
)

// GoFuncs lists the probed Go functions; GoFuncHandshake is optional.
var GoFuncs = []string{GoFuncWrite, GoFuncRead, GoFuncHandshake}

// errNotGoTLS says that a file is not a Go program that uses crypto/tls.
var errNotGoTLS = errors.New("not a Go program with crypto/tls")

// GoFunc is a probed function of a Go binary: the file offsets of its
// entry and of each of its RET instructions.
type GoFunc struct {
	Entry   uint64
	Returns []uint64
}

// GoOffsets are the byte offsets the BPF side follows from a *tls.Conn
// to the socket's fd: tls.Conn.conn (a net.Conn interface, whose data
// word is a *net.TCPConn), net.conn.fd in it (a *netFD), and
// netFD.pfd.Sysfd.
type GoOffsets struct {
	Conn, FD, Sysfd uint64
}

// GoBinary is what the Go probes of an executable need.
type GoBinary struct {
	Version     string // the toolchain, as runtime.Version says it
	Stripped    bool   // no ELF symbol table: functions from .gopclntab
	Funcs       map[string]GoFunc
	Offsets     GoOffsets
	OffsetsFrom string // "dwarf" or "table"
}

// goOffsetTable is the fd chain's layout in the Go versions it lists.
// It has been the same since internal/poll appeared (Go 1.9): conn is
// tls.Conn's first field, fd net.conn's only one, pfd netFD's first,
// and Sysfd follows poll.FD's 16-byte fdMutex. TestGoOffsetsDWARF checks
// it against the DWARF of every Go version the tests build with; a
// version past the last one listed is read from its DWARF, or refused
// rather than guessed.
var goOffsetTable = struct {
	min, max int // Go 1.min to 1.max
	off      GoOffsets
}{17, 27, GoOffsets{Conn: 0, FD: 0, Sysfd: 16}}

// goMinor returns the minor version of a Go toolchain name such as
// "go1.26.8", "go1.22rc1" or "devel go1.27-abcdef".
func goMinor(v string) (int, bool) {
	v = strings.TrimPrefix(v, "devel ")
	rest, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil
}

// ReadGo returns the Go probes' needs of the executable r, or an error
// wrapping errNotGoTLS for a file that is not a Go program using
// crypto/tls. Other errors say why a Go TLS program cannot be probed.
func ReadGo(r io.ReaderAt) (*GoBinary, error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotGoTLS, err)
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotGoTLS, err)
	}
	defer f.Close()
	funcs, stripped, err := goFuncRanges(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bi.GoVersion, err)
	}
	if _, ok := funcs[GoFuncWrite]; !ok {
		return nil, errNotGoTLS
	}
	b := &GoBinary{Version: bi.GoVersion, Stripped: stripped, Funcs: map[string]GoFunc{}}
	minor, ok := goMinor(bi.GoVersion)
	if !ok || minor < 17 {
		return b, fmt.Errorf("%s: Go before 1.17 passes arguments on the stack: not supported", bi.GoVersion)
	}
	if f.Machine != elf.EM_X86_64 {
		return b, fmt.Errorf("%s: Go probes are for amd64 binaries, not %v", bi.GoVersion, f.Machine)
	}
	if b.Offsets, b.OffsetsFrom, err = goOffsets(f, minor); err != nil {
		return b, fmt.Errorf("%s: %w", bi.GoVersion, err)
	}
	for _, name := range GoFuncs {
		rng, ok := funcs[name]
		if !ok {
			if name == GoFuncHandshake {
				continue
			}
			return b, fmt.Errorf("%s: no %s", bi.GoVersion, name)
		}
		fn, err := goFunc(f, rng)
		if err != nil {
			return b, fmt.Errorf("%s: %s: %w", bi.GoVersion, name, err)
		}
		b.Funcs[name] = fn
	}
	return b, nil
}

// addrRange is a function's virtual addresses, [lo, hi).
type addrRange struct{ lo, hi uint64 }

// goFuncRanges returns the address ranges of the probed functions, from
// the ELF symbol table or, in a stripped binary, from .gopclntab.
func goFuncRanges(f *elf.File) (map[string]addrRange, bool, error) {
	out := map[string]addrRange{}
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			for _, name := range GoFuncs {
				if s.Name == name && s.Size > 0 {
					out[name] = addrRange{s.Value, s.Value + s.Size}
				}
			}
		}
		if len(syms) > 0 {
			return out, false, nil
		}
	}
	sec := f.Section(".gopclntab")
	text := f.Section(".text")
	if sec == nil || text == nil {
		return nil, true, errors.New("no symbol table and no .gopclntab")
	}
	if sec.Size > maxTableBytes {
		return nil, true, fmt.Errorf(".gopclntab of %d bytes", sec.Size)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, true, fmt.Errorf("read .gopclntab: %w", err)
	}
	// Most Go programs do not use crypto/tls: its function names are
	// looked for before the whole table is parsed.
	if !bytes.Contains(data, []byte(GoFuncWrite)) {
		return out, true, nil
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, true, fmt.Errorf("parse .gopclntab: %w", err)
	}
	for _, name := range GoFuncs {
		if fn := tab.LookupFunc(name); fn != nil && fn.End > fn.Entry {
			out[name] = addrRange{fn.Entry, fn.End}
		}
	}
	return out, true, nil
}

// maxFuncBytes bounds the code read of one function.
const maxFuncBytes = 1 << 20

// goFunc reads the function at rng and finds its RET instructions; it
// returns file offsets.
func goFunc(f *elf.File, rng addrRange) (GoFunc, error) {
	if rng.hi-rng.lo > maxFuncBytes {
		return GoFunc{}, fmt.Errorf("%d bytes of code", rng.hi-rng.lo)
	}
	var prog *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && rng.lo >= p.Vaddr && rng.hi <= p.Vaddr+p.Filesz {
			prog = p
			break
		}
	}
	if prog == nil {
		return GoFunc{}, fmt.Errorf("%#x is in no executable segment", rng.lo)
	}
	code := make([]byte, rng.hi-rng.lo)
	if _, err := prog.ReadAt(code, int64(rng.lo-prog.Vaddr)); err != nil {
		return GoFunc{}, fmt.Errorf("read code: %w", err)
	}
	rets := Returns(code)
	if len(rets) == 0 {
		return GoFunc{}, errors.New("no RET instruction found")
	}
	off := rng.lo - prog.Vaddr + prog.Off
	fn := GoFunc{Entry: off}
	for _, r := range rets {
		fn.Returns = append(fn.Returns, off+r)
	}
	return fn, nil
}

// Returns returns the offsets of the RET instructions in the amd64 code
// of one function. Go puts no data in its code, so decoding from the
// start finds every instruction; the padding after the function (INT3)
// decodes too.
func Returns(code []byte) []uint64 {
	var out []uint64
	for i := 0; i < len(code); {
		inst, err := x86asm.Decode(code[i:], 64)
		if err != nil || inst.Len == 0 {
			i++ // not an instruction: go on at the next byte
			continue
		}
		if inst.Op == x86asm.RET {
			out = append(out, uint64(i))
		}
		i += inst.Len
	}
	return out
}

// goOffsets returns the fd chain's offsets: goOffsetTable's for the Go
// versions it covers, or else the binary's DWARF. The table comes first
// because reading DWARF means inflating a Go binary's compressed debug
// sections, 0.1–0.5 s of CPU and tens of MB for each new Go program a
// host runs (a profile of the agent beside `go test` runs showed it as
// a quarter of its CPU); TestReadGo checks the table against the DWARF
// of every toolchain the tests build with.
func goOffsets(f *elf.File, minor int) (GoOffsets, string, error) {
	if minor >= goOffsetTable.min && minor <= goOffsetTable.max {
		return goOffsetTable.off, "table", nil
	}
	if d, err := f.DWARF(); err == nil {
		off, err := dwarfOffsets(d)
		if err == nil && off.Conn < 1<<16 && off.FD < 1<<16 && off.Sysfd < 1<<16 {
			return off, "dwarf", nil
		}
	}
	return GoOffsets{}, "", fmt.Errorf("no known struct offsets for Go 1.%d (known: 1.%d to 1.%d), and none in its DWARF",
		minor, goOffsetTable.min, goOffsetTable.max)
}

// dwarfOffsets reads the fd chain's field offsets from DWARF.
func dwarfOffsets(d *dwarf.Data) (GoOffsets, error) {
	want := map[string]string{
		"crypto/tls.Conn":  "conn",
		"net.conn":         "fd",
		"net.netFD":        "pfd",
		"internal/poll.FD": "Sysfd",
	}
	found := map[string]uint64{}
	rd := d.Reader()
	for len(found) < len(want) {
		e, err := rd.Next()
		if err != nil {
			return GoOffsets{}, fmt.Errorf("read DWARF: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			if e.Tag != dwarf.TagCompileUnit {
				rd.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		field, ok := want[name]
		if !ok || !e.Children {
			rd.SkipChildren()
			continue
		}
		for {
			c, err := rd.Next()
			if err != nil || c == nil || c.Tag == 0 {
				break
			}
			if c.Tag == dwarf.TagMember && c.Val(dwarf.AttrName) == field {
				if off, ok := c.Val(dwarf.AttrDataMemberLoc).(int64); ok {
					found[name] = uint64(off)
				}
			}
			if c.Children {
				rd.SkipChildren()
			}
		}
	}
	if len(found) < len(want) {
		return GoOffsets{}, fmt.Errorf("DWARF has %d of the %d struct fields", len(found), len(want))
	}
	return GoOffsets{
		Conn:  found["crypto/tls.Conn"],
		FD:    found["net.conn"],
		Sysfd: found["net.netFD"] + found["internal/poll.FD"],
	}, nil
}

// cookie is the BPF side's cookie of a probe of kind on a binary with
// offsets off (see gotls.c).
func (off GoOffsets) cookie(kind uint8) uint64 {
	return uint64(kind) | off.Conn<<8 | off.FD<<24 | off.Sysfd<<40
}
