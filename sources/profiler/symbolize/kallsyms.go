package symbolize

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// kernelSyms are the kernel's text symbols from /proc/kallsyms, sorted by
// address.
type kernelSyms struct {
	addrs []uint64
	names []string
}

// readKallsyms reads the text symbols of path (the format of
// /proc/kallsyms: "ffffffff81000000 T _stext [module]").
func readKallsyms(path string) (*kernelSyms, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbolize: %w", err)
	}
	defer f.Close()
	return parseKallsyms(f)
}

func parseKallsyms(r io.Reader) (*kernelSyms, error) {
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		switch fields[1] {
		case "t", "T", "w", "W":
		default:
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		syms = append(syms, sym{addr, fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("symbolize: kallsyms: %w", err)
	}
	if len(syms) == 0 {
		// kptr_restrict hides the addresses from this process.
		return nil, fmt.Errorf("symbolize: kallsyms has no addresses (kernel.kptr_restrict, or not root)")
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	k := &kernelSyms{addrs: make([]uint64, len(syms)), names: make([]string, len(syms))}
	for i, s := range syms {
		k.addrs[i], k.names[i] = s.addr, s.name
	}
	return k, nil
}

// lookup returns the symbol holding addr: the last one at or below it.
func (k *kernelSyms) lookup(addr uint64) (string, bool) {
	i := sort.Search(len(k.addrs), func(i int) bool { return k.addrs[i] > addr }) - 1
	if i < 0 {
		return "", false
	}
	return k.names[i], true
}
