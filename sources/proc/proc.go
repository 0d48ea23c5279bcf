// Package proc reads process metadata and counters from /proc, and samples
// them into process_stats and network_stats.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/types"
)

// Root is the procfs mount read by this package. Tests may point it at a
// fake tree.
var Root = "/proc"

// TickNS is the length of a clock tick, the unit of times in
// /proc/PID/stat.
const TickNS = procfs.TickNS

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

func readStat(pid int) (procfs.Stat, error) {
	s, err := procfs.ReadStat(Root, pid)
	if err != nil {
		return s, fmt.Errorf("proc: %w", err)
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
	return s.StartNS(), nil
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
	info := ProcessInfo{PID: pid, PPID: s.PPID, StartNS: s.StartNS(), Comm: s.Comm}
	info.Cmdline, _ = procfs.Cmdline(Root, pid)
	if cg, err := procfs.Cgroup(Root, pid); err == nil {
		info.CgroupPath = cgroupPath(cg)
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
