// Package procfs reads the few /proc files pxq needs: a process's stat,
// command line and cgroups, and the boot time. The /proc sampler and the
// host metadata provider both read through it.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TickNS is the length of a clock tick (USER_HZ = 100 on every Linux
// architecture pxq supports), the unit of times in /proc/PID/stat.
const TickNS = 10_000_000

// Stat holds the fields of /proc/PID/stat that pxq uses. Times are in
// clock ticks.
type Stat struct {
	Comm           string
	PPID           int
	MinFlt, MajFlt int64
	UTime, STime   int64
	Threads        int64
	Start          uint64 // since boot
	VSize          int64
	RSSPages       int64
}

// StartNS returns the start time in ns since boot, whole ticks: the low
// word of the process's UPID.
func (s Stat) StartNS() uint64 { return s.Start * TickNS }

// ParseStat parses /proc/PID/stat. comm may hold spaces and parentheses,
// so fields are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return s, errors.New("malformed stat")
	}
	s.Comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state).
	if len(f) < 22 {
		return s, errors.New("short stat")
	}
	num := func(field int) int64 {
		v, _ := strconv.ParseInt(f[field-3], 10, 64)
		return v
	}
	s.PPID = int(num(4))
	s.MinFlt, s.MajFlt = num(10), num(12)
	s.UTime, s.STime = num(14), num(15)
	s.Threads = num(20)
	s.Start = uint64(num(22))
	s.VSize = num(23)
	s.RSSPages = num(24)
	return s, nil
}

// ReadStat reads /proc/PID/stat under root.
func ReadStat(root string, pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", root, pid))
	if err != nil {
		return Stat{}, err
	}
	s, err := ParseStat(b)
	if err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	return s, nil
}

// Cmdline returns a process's arguments joined by spaces ("" for kernel
// threads).
func Cmdline(root string, pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", root, pid))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")), nil
}

// Cgroup returns the text of /proc/PID/cgroup.
func Cgroup(root string, pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", root, pid))
	return string(b), err
}

// BootNS returns the boot time in ns since the epoch, from the btime line
// of /proc/stat (whole seconds).
func BootNS(root string) (int64, error) {
	b, err := os.ReadFile(root + "/stat")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("btime: %w", err)
			}
			return s * 1e9, nil
		}
	}
	return 0, errors.New("no btime in stat")
}
