package symbolize

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
)

// kernelSyms are the kernel's text symbols from /proc/kallsyms, sorted by
// address, their names in one string.
type kernelSyms struct {
	addrs []uint64
	offs  []uint32 // of each name in names; the name ends at the next one
	names string
}

// kallsyms holds every kallsyms file read by this process, by path: the
// kernel's symbols are read once, however many symbolizers there are.
// Modules loaded later are named [kernel+0xaddr].
var kallsyms struct {
	sync.Mutex
	byPath map[string]*kallsymsOnce
}

type kallsymsOnce struct {
	once sync.Once
	syms *kernelSyms
	err  error
}

// readKallsyms returns the text symbols of path (the format of
// /proc/kallsyms: "ffffffff81000000 T _stext [module]"), read on first
// use.
func readKallsyms(path string) (*kernelSyms, error) {
	kallsyms.Lock()
	if kallsyms.byPath == nil {
		kallsyms.byPath = map[string]*kallsymsOnce{}
	}
	k := kallsyms.byPath[path]
	if k == nil {
		k = &kallsymsOnce{}
		kallsyms.byPath[path] = k
	}
	kallsyms.Unlock()
	k.once.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			k.err = fmt.Errorf("symbolize: %w", err)
			return
		}
		defer f.Close()
		k.syms, k.err = parseKallsyms(f)
	})
	return k.syms, k.err
}

func parseKallsyms(r io.Reader) (*kernelSyms, error) {
	type sym struct {
		addr     uint64
		off, end uint32
	}
	var syms []sym
	var names []byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// "addr type name [module]"
		line := sc.Bytes()
		addrText, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(rest) < 3 || rest[1] != ' ' {
			continue
		}
		switch rest[0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		name := rest[2:]
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name = name[:i]
		}
		addr, err := strconv.ParseUint(string(addrText), 16, 64)
		if err != nil || addr == 0 || len(name) == 0 {
			continue
		}
		off := uint32(len(names))
		names = append(names, name...)
		syms = append(syms, sym{addr, off, uint32(len(names))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("symbolize: kallsyms: %w", err)
	}
	if len(syms) == 0 {
		// kptr_restrict hides the addresses from this process.
		return nil, fmt.Errorf("symbolize: kallsyms has no addresses (kernel.kptr_restrict, or not root)")
	}
	slices.SortStableFunc(syms, func(a, b sym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	// The names again in address order, so that one name ends where the
	// next starts.
	k := &kernelSyms{addrs: make([]uint64, len(syms)), offs: make([]uint32, len(syms)+1)}
	sorted := make([]byte, 0, len(names))
	for i, s := range syms {
		k.addrs[i], k.offs[i] = s.addr, uint32(len(sorted))
		sorted = append(sorted, names[s.off:s.end]...)
	}
	k.offs[len(syms)] = uint32(len(sorted))
	k.names = string(sorted)
	return k, nil
}

// lookup returns the symbol holding addr: the last one at or below it.
func (k *kernelSyms) lookup(addr uint64) (string, bool) {
	i, found := slices.BinarySearch(k.addrs, addr)
	if found {
		for i+1 < len(k.addrs) && k.addrs[i+1] == addr {
			i++ // the last of aliases, as a search for the last at or below
		}
	} else {
		i--
	}
	if i < 0 {
		return "", false
	}
	return k.name(i), true
}

func (k *kernelSyms) name(i int) string { return k.names[k.offs[i]:k.offs[i+1]] }
