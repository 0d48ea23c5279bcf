// Package proc reads process metadata and counters from /proc, and samples
// them into process_stats and network_stats.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/types"
)

// Root is the procfs mount read by this package. Tests may point it at a
// fake tree.
var Root = "/proc"

// TickNS is the length of a clock tick (USER_HZ = 100 on every Linux
// architecture pxq supports), the unit of times in /proc/PID/stat.
const TickNS = 10_000_000

// ProcessInfo is the metadata of one process.
type ProcessInfo struct {
	PID  int
	PPID int
	// StartNS is the start time in ns since boot, rounded down to clock
	// ticks: the low word of the process's UPID.
	StartNS uint64
	Comm    string
	Cmdline string // arguments joined by spaces; empty for kernel threads
	// CgroupPath is the cgroup v2 path (or, on cgroup v1, the path of the
	// first controller listed), e.g. "/kubepods/burstable/pod…/<id>".
	CgroupPath string
}

// stat holds the fields of /proc/PID/stat that pxq uses.
type stat struct {
	comm           string
	ppid           int
	minflt, majflt int64
	utime, stime   int64 // ticks
	threads        int64
	start          uint64 // ticks since boot
	vsize          int64
	rssPages       int64
}

// parseStat parses /proc/PID/stat. comm may hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	var s stat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return s, errors.New("malformed stat")
	}
	s.comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state).
	if len(f) < 22 {
		return s, errors.New("short stat")
	}
	num := func(field int) int64 {
		v, _ := strconv.ParseInt(f[field-3], 10, 64)
		return v
	}
	s.ppid = int(num(4))
	s.minflt, s.majflt = num(10), num(12)
	s.utime, s.stime = num(14), num(15)
	s.threads = num(20)
	s.start = uint64(num(22))
	s.vsize = num(23)
	s.rssPages = num(24)
	return s, nil
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", Root, pid))
	if err != nil {
		return stat{}, err
	}
	s, err := parseStat(b)
	if err != nil {
		return s, fmt.Errorf("proc: pid %d: %w", pid, err)
	}
	return s, nil
}

// StartNS returns the start time of pid in ns since boot, in whole clock
// ticks, as UPIDs hold it.
func StartNS(pid int) (uint64, error) {
	s, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return s.start * TickNS, nil
}

// UPIDOf returns the UPID of a running process.
func UPIDOf(asid uint32, pid int) (types.UInt128Value, error) {
	start, err := StartNS(pid)
	if err != nil {
		return types.UInt128Value{}, err
	}
	return types.UPID(asid, uint32(pid), start), nil
}

// Info returns the metadata of pid.
func Info(pid int) (ProcessInfo, error) {
	s, err := readStat(pid)
	if err != nil {
		return ProcessInfo{}, err
	}
	info := ProcessInfo{PID: pid, PPID: s.ppid, StartNS: s.start * TickNS, Comm: s.comm}
	if b, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", Root, pid)); err == nil {
		info.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", Root, pid)); err == nil {
		info.CgroupPath = cgroupPath(string(b))
	}
	return info, nil
}

// cgroupPath picks the path from /proc/PID/cgroup: the v2 line ("0::/…")
// if any, else the first v1 line's path.
func cgroupPath(s string) string {
	first := ""
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if first == "" {
			first = parts[2]
		}
	}
	return first
}

// PIDs lists the processes in /proc.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir(Root)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
