package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// This is a small /proc reader of its own so that metadata, which funcs
// and everything above it import, does not depend on sources/proc (and
// through it on the table store). It reads what sources/proc.Info reads;
// TODO(dedup): move both onto one internal procfs package.

// tickNS is the length of a clock tick (USER_HZ = 100 on every Linux
// architecture pxq supports), the unit of start times in /proc/PID/stat.
const tickNS = 10_000_000

// procEntry is what /proc says of one process.
type procEntry struct {
	startNS uint64 // since boot, whole ticks: a UPID's low word
	cmdline string
	cgroup  CgroupInfo
}

// readStartNS reads field 22 (starttime) of /proc/PID/stat, in ns since
// boot. comm may hold spaces and parentheses, so fields are counted from
// the last ')'.
func readStartNS(root string, pid uint32) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", root, pid))
	if err != nil {
		return 0, err
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 { // f[0] is field 3 (state), f[19] field 22
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: start time: %w", pid, err)
	}
	return ticks * tickNS, nil
}

// readProc reads one process. It fails when the process is gone or its
// start time is not wantStart (the pid was reused).
func readProc(root string, pid uint32, wantStart uint64) (procEntry, error) {
	start, err := readStartNS(root, pid)
	if err != nil {
		return procEntry{}, err
	}
	if start != wantStart {
		return procEntry{}, errPIDReused
	}
	e := procEntry{startNS: start}
	if b, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", root, pid)); err == nil {
		e.cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", root, pid)); err == nil {
		e.cgroup = ParseProcCgroup(string(b))
	}
	// Read the start time again: had the pid been reused meanwhile, the
	// cmdline and cgroup could be the new process's.
	if again, err := readStartNS(root, pid); err != nil || again != start {
		return procEntry{}, errPIDReused
	}
	return e, nil
}

var errPIDReused = errors.New("pid belongs to another process")

// readBootNS returns the boot time in ns since the epoch from the btime
// line of /proc/stat (whole seconds).
func readBootNS(root string) (int64, error) {
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
