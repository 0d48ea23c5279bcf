package metadata

import (
	"errors"

	"github.com/pxq-dev/pxq/internal/procfs"
)

// procEntry is what /proc says of one process.
type procEntry struct {
	startNS uint64 // since boot, whole ticks: a UPID's low word
	cmdline string
	cgroup  CgroupInfo
	path    string // the cgroup path entities are named from (ProcCgroupPath)
}

// readStartNS reads a process's start time in ns since boot.
func readStartNS(root string, pid uint32) (uint64, error) {
	s, err := procfs.ReadStat(root, int(pid))
	if err != nil {
		return 0, err
	}
	return s.StartNS(), nil
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
	e.cmdline, _ = procfs.Cmdline(root, int(pid))
	if cg, err := procfs.Cgroup(root, int(pid)); err == nil {
		e.cgroup = ParseProcCgroup(cg)
		e.path = ProcCgroupPath(cg)
	}
	// Read the start time again: had the pid been reused meanwhile, the
	// cmdline and cgroup could be the new process's.
	if again, err := readStartNS(root, pid); err != nil || again != start {
		return procEntry{}, errPIDReused
	}
	return e, nil
}

var errPIDReused = errors.New("pid belongs to another process")

// readBootNS returns the boot time in ns since the epoch.
func readBootNS(root string) (int64, error) { return procfs.BootNS(root) }
