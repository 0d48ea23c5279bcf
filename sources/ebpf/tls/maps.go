package tls

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileKey identifies a file on the node: its device (as stat reports it)
// and inode. A uprobe belongs to an inode, so probed files are keyed by it,
// whatever path or mount namespace a process names them by.
type FileKey struct {
	Dev, Ino uint64
}

// Mapping is an executable file mapping of a process.
type Mapping struct {
	Start, End uint64
	Key        FileKey
	Path       string // as the process's mount namespace names it
}

// MapFile is the path of the mapped file itself, valid in any mount
// namespace and for a deleted file while the process lives (reading it
// needs CAP_SYS_ADMIN).
func (m Mapping) MapFile(pid uint32) string {
	return fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End)
}

// Mappings returns the executable file mappings of process pid, one per
// file (the first).
func Mappings(pid uint32) ([]Mapping, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	var out []Mapping
	seen := map[FileKey]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m, ok := parseMapping(sc.Text())
		if !ok || seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		out = append(out, m)
	}
	return out, sc.Err()
}

// parseMapping parses one line of /proc/PID/maps,
//
//	7f3c1a200000-7f3c1a265000 r-xp 00035000 fe:01 1234567   /usr/lib/x86_64-linux-gnu/libssl.so.3
//
// and reports whether it maps a file executable.
func parseMapping(line string) (Mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || len(f[1]) < 3 || f[1][2] != 'x' {
		return Mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return Mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	maj, min, ok := strings.Cut(f[3], ":")
	if !ok || err1 != nil || err2 != nil {
		return Mapping{}, false
	}
	major, err1 := strconv.ParseUint(maj, 16, 32)
	minor, err2 := strconv.ParseUint(min, 16, 32)
	ino, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || ino == 0 {
		return Mapping{}, false
	}
	path := afterFields(line, 5) // the path may hold spaces
	if !strings.HasPrefix(path, "/") {
		return Mapping{}, false
	}
	return Mapping{
		Start: start,
		End:   end,
		Key:   FileKey{Dev: unix.Mkdev(uint32(major), uint32(minor)), Ino: ino},
		Path:  path,
	}, true
}

// afterFields returns what follows the first n space-separated fields of
// line, without its leading spaces.
func afterFields(line string, n int) string {
	for ; n > 0; n-- {
		line = strings.TrimLeft(line, " \t")
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return ""
		}
		line = line[i:]
	}
	return strings.TrimLeft(line, " \t")
}
