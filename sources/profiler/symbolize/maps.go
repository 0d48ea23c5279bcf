package symbolize

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mapping is one executable mapping of /proc/PID/maps.
type mapping struct {
	start, end uint64
	offset     uint64 // file offset of start
	dev        string // "fd:01"
	inode      uint64
	path       string // "" for anonymous memory; "[vdso]" and the like for the kernel's
}

// parseMaps reads the executable mappings of a /proc/PID/maps text:
// "7f1c2a000000-7f1c2a021000 r-xp 00002000 fd:01 1234 /usr/lib/libc.so.6".
func parseMaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 5 || len(fields[1]) < 3 || fields[1][2] != 'x' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		var m mapping
		var err error
		if m.start, err = strconv.ParseUint(lo, 16, 64); err != nil {
			continue
		}
		if m.end, err = strconv.ParseUint(hi, 16, 64); err != nil {
			continue
		}
		if m.offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
			continue
		}
		m.dev = fields[3]
		m.inode, _ = strconv.ParseUint(fields[4], 10, 64)
		if len(fields) >= 6 {
			// The path is the rest of the line: it may hold spaces.
			m.path = strings.TrimSpace(line[strings.Index(line, fields[5]):])
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("symbolize: maps: %w", err)
	}
	return out, nil
}

// find returns the index of the mapping holding addr, or -1 (mappings are
// sorted by address).
func find(ms []mapping, addr uint64) int {
	lo, hi := 0, len(ms)
	for lo < hi {
		mid := (lo + hi) / 2
		switch {
		case addr < ms[mid].start:
			hi = mid
		case addr >= ms[mid].end:
			lo = mid + 1
		default:
			return mid
		}
	}
	return -1
}
