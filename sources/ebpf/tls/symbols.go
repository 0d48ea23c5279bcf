// Package tls finds the TLS libraries of traced processes and attaches
// the socket tracer's uprobes to them, so that the plaintext of TLS
// connections reaches the same pipeline as socket data.
//
// OpenSSL and its forks (BoringSSL, LibreSSL) are found by symbol: a file
// is probed when it defines SSL_write or SSL_read, whether it is libssl.so
// or a program that links the library statically. A uprobe is set on a
// file, not a process: every process that maps the file, now or later,
// runs it. So each file is attached once, and the attach set is bounded by
// the files, not the processes, of a node.
//
// The Prober examines the executable mappings of a process
// (/proc/PID/maps): those already running when the tracer starts, and each
// process that executes or maps a file the BPF side has not seen before
// (Watch). See "TLS plaintext" in docs/sources.md.
package tls

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// The functions probed. SSL_do_handshake's calls are not data, but the
// syscalls made inside them tell the BPF side that the socket carries TLS
// before the first SSL_write.
const (
	FuncWrite     = "SSL_write"
	FuncWriteEx   = "SSL_write_ex"
	FuncRead      = "SSL_read"
	FuncReadEx    = "SSL_read_ex"
	FuncHandshake = "SSL_do_handshake"
)

// Funcs lists the probed functions.
var Funcs = []string{FuncWrite, FuncWriteEx, FuncRead, FuncReadEx, FuncHandshake}

// ErrNotELF is returned by Symbols for a file that is not an ELF object.
var ErrNotELF = errors.New("not an ELF file")

// Symbols returns the file offsets of the probed functions that the ELF
// object r defines, from its dynamic symbol table and its symbol table
// (.dynsym, .symtab): a shared library exports them, a program that links
// OpenSSL statically has them in .symtab unless stripped. The result is
// empty for a file that only imports them (a program using libssl.so).
func Symbols(r io.ReaderAt) (map[string]uint64, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%w: %v", ErrNotELF, err)
		}
		return nil, err
	}
	defer f.Close()
	found := map[string]uint64{}
	for _, typ := range []elf.SectionType{elf.SHT_DYNSYM, elf.SHT_SYMTAB} {
		if err := symbols(f, typ, found); err != nil {
			return nil, err
		}
		if len(found) == len(Funcs) {
			break
		}
	}
	return found, nil
}

// maxTableBytes bounds a symbol or string table read (a 100 MB program
// with debug information has tables of a few MB).
const maxTableBytes = 256 << 20

// symbols adds to found the probed functions defined in the symbol table
// of type typ.
func symbols(f *elf.File, typ elf.SectionType, found map[string]uint64) error {
	sec := f.SectionByType(typ)
	if sec == nil || sec.Link == 0 || int(sec.Link) >= len(f.Sections) {
		return nil
	}
	strs := f.Sections[sec.Link]
	if sec.Size > maxTableBytes || strs.Size > maxTableBytes {
		return fmt.Errorf("symbol table %s too large (%d bytes)", sec.Name, sec.Size)
	}
	// Most files name none of the functions: their tables are not read
	// whole (a Go program's are megabytes).
	if named, err := namesAny(strs.Open(), "SSL_write\x00", "SSL_read\x00"); err != nil || !named {
		return err
	}
	names, err := strs.Data()
	if err != nil {
		return fmt.Errorf("read %s: %w", strs.Name, err)
	}
	data, err := sec.Data()
	if err != nil {
		return fmt.Errorf("read %s: %w", sec.Name, err)
	}
	size := 24
	if f.Class == elf.ELFCLASS32 {
		size = 16
	}
	bo := f.ByteOrder
	for off := size; off+size <= len(data); off += size { // entry 0 is the null symbol
		e := data[off : off+size]
		var name uint32
		var info uint8
		var shndx uint16
		var value uint64
		if f.Class == elf.ELFCLASS32 {
			name, value = bo.Uint32(e), uint64(bo.Uint32(e[4:]))
			info, shndx = e[12], bo.Uint16(e[14:])
		} else {
			name, info, shndx, value = bo.Uint32(e), e[4], bo.Uint16(e[6:]), bo.Uint64(e[8:])
		}
		if elf.ST_TYPE(info) != elf.STT_FUNC || elf.SectionIndex(shndx) == elf.SHN_UNDEF || value == 0 {
			continue
		}
		fn := probed(names, name)
		if fn == "" {
			continue
		}
		if _, ok := found[fn]; ok {
			continue
		}
		if off, ok := fileOffset(f, value); ok {
			found[fn] = off
		}
	}
	return nil
}

// namesAny reports whether r holds one of the strings, reading it in
// chunks.
func namesAny(r io.Reader, strs ...string) (bool, error) {
	const chunk = 64 << 10
	keep := 0
	for _, s := range strs {
		keep = max(keep, len(s)-1)
	}
	buf := make([]byte, keep+chunk)
	have := 0
	for {
		n, err := io.ReadFull(r, buf[have:])
		have += n
		for _, s := range strs {
			if bytes.Contains(buf[:have], []byte(s)) {
				return true, nil
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		// Keep the tail, which may begin one of the strings.
		have = copy(buf, buf[have-keep:have])
	}
}

// probed returns the probed function named at offset at of the string
// table, or "".
func probed(names []byte, at uint32) string {
	if int(at) >= len(names) || names[at] != 'S' {
		return ""
	}
	rest := names[at:]
	for _, fn := range Funcs {
		if len(rest) > len(fn) && rest[len(fn)] == 0 && string(rest[:len(fn)]) == fn {
			return fn
		}
	}
	return ""
}

// fileOffset converts a function's virtual address to its offset in the
// file, through the executable segment that holds it: uprobes are set at
// file offsets.
func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 {
			continue
		}
		if vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Memsz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}
