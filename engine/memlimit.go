package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// MemoryOverhead is what a pxq process holds on the Go heap besides its
// table store: the tracer's connection state and the rows it is
// building, the queries' working sets, gRPC buffers, metadata caches
// and the garbage the GC has not reclaimed yet. The Go memory limit is
// the store's bound plus this (MemoryLimit).
const MemoryOverhead = 256 << 20

// ContainerHeadroom is the share of a container's memory limit left to
// memory the Go runtime does not count: BPF maps and ring buffers,
// thread stacks, the binary's text. The Go limit is at most the rest.
const ContainerHeadroom = 0.10

// MemoryLimit returns the Go memory limit (runtime/debug.SetMemoryLimit)
// of a process whose store is bounded to storeBytes (0: unbounded), in a
// cgroup limited to cgroupBytes (0: none): storeBytes + MemoryOverhead,
// and at most 90% of the cgroup's limit. It returns 0 when neither bound
// is known (no limit to set).
func MemoryLimit(storeBytes, cgroupBytes int64) int64 {
	var limit int64
	if storeBytes > 0 {
		limit = storeBytes + MemoryOverhead
	}
	if cgroupBytes > 0 {
		room := int64(float64(cgroupBytes) * (1 - ContainerHeadroom))
		if limit == 0 || room < limit {
			limit = room
		}
	}
	return limit
}

// MemorySetting says what SetMemoryLimit did.
type MemorySetting struct {
	// Limit is the Go memory limit in force (math.MaxInt64: none).
	Limit int64
	// FromEnv is set when GOMEMLIMIT chose it, not pxq.
	FromEnv bool
	// Cgroup is the memory limit of the process's cgroup (0: none found).
	Cgroup int64
	// Warning, when not "", says that the store does not fit in the
	// cgroup's limit: the process would be killed before the store fills.
	Warning string
}

// SetMemoryLimit sets the Go memory limit from the store's bound and the
// cgroup's (MemoryLimit), unless GOMEMLIMIT is set: the user's choice
// stands. With a limit the GC collects before the heap passes it instead
// of letting it grow to twice what is live (GOGC=100), which is what
// keeps a full store's RSS near its bound.
func SetMemoryLimit(storeBytes int64) (MemorySetting, error) {
	cg, err := CgroupMemoryMax()
	s := MemorySetting{Cgroup: cg}
	if cg > 0 && storeBytes > 0 && storeBytes+MemoryOverhead > int64(float64(cg)*(1-ContainerHeadroom)) {
		s.Warning = fmt.Sprintf("the store's bound (%d MiB) plus pxq's overhead (%d MiB) does not fit in 90%% of this cgroup's memory limit (%d MiB): "+
			"the store is cut short by the Go memory limit's GC, or the process killed; give the container at least %d MiB or the store less",
			storeBytes>>20, MemoryOverhead>>20, cg>>20, (storeBytes+MemoryOverhead)*10/9>>20+1)
	}
	s.Limit = debug.SetMemoryLimit(-1) // reads the limit in force
	if os.Getenv("GOMEMLIMIT") != "" {
		s.FromEnv = true
		return s, err
	}
	if l := MemoryLimit(storeBytes, cg); l > 0 {
		debug.SetMemoryLimit(l)
		s.Limit = l
	}
	return s, err
}

// CgroupMemoryMax returns the memory limit of the cgroup this process
// runs in: the smallest memory.max (cgroup v2) or memory.limit_in_bytes
// (the v1 memory controller) of its cgroup and the cgroup's ancestors
// within the mounted hierarchy, 0 when none is set or no hierarchy with
// a memory controller is mounted.
func CgroupMemoryMax() (int64, error) {
	return cgroupMemoryMax("/proc/self/mountinfo", "/proc/self/cgroup", "")
}

// cgroupMemoryMax is CgroupMemoryMax reading its files from the given
// paths, and the hierarchies under root (for tests; "" in use).
func cgroupMemoryMax(mountinfo, cgroupFile, root string) (int64, error) {
	mounts, err := os.ReadFile(mountinfo)
	if err != nil {
		return 0, fmt.Errorf("cgroup memory limit: %w", err)
	}
	groups, err := os.ReadFile(cgroupFile)
	if err != nil {
		return 0, fmt.Errorf("cgroup memory limit: %w", err)
	}
	// "hierarchy-id:controllers:path": v2 is "0::path", the v1 memory
	// controller "N:memory:path" (maybe beside others: "memory,cpu").
	var v1Path, v2Path string
	haveV1, haveV2 := false, false
	for _, line := range strings.Split(string(groups), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2Path, haveV2 = parts[2], true
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1Path, haveV1 = parts[2], true
		}
	}
	var limit int64
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		// "id parent dev root mountpoint options … - fstype source superoptions"
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) {
			continue
		}
		mroot, point, fstype := f[3], root+f[4], f[sep+1]
		var cg, file string
		switch {
		case fstype == "cgroup2" && haveV2:
			cg, file = v2Path, "memory.max"
		case fstype == "cgroup" && haveV1 && slices.Contains(strings.Split(f[sep+3], ","), "memory"):
			cg, file = v1Path, "memory.limit_in_bytes"
		default:
			continue
		}
		rel, ok := within(mroot, cg)
		if !ok {
			continue // the mount shows another part of the hierarchy
		}
		if l := smallestLimit(point, rel, file); l > 0 && (limit == 0 || l < limit) {
			limit = l
		}
	}
	return limit, sc.Err()
}

// within returns cg relative to the mount's root mroot, if it is inside.
func within(mroot, cg string) (string, bool) {
	if mroot == "/" {
		return cg, true
	}
	if cg == mroot || strings.HasPrefix(cg, mroot+"/") {
		return strings.TrimPrefix(cg, mroot), true
	}
	return "", false
}

// smallestLimit returns the smallest limit in file of the cgroup rel of
// the hierarchy mounted at point and of its ancestors, 0 for none.
func smallestLimit(point, rel, file string) int64 {
	var limit int64
	dir := filepath.Clean("/" + rel)
	for {
		b, err := os.ReadFile(filepath.Join(point, dir, file))
		if err == nil {
			if l := parseLimit(string(b)); l > 0 && (limit == 0 || l < limit) {
				limit = l
			}
		}
		if dir == "/" {
			return limit
		}
		dir = filepath.Dir(dir)
	}
}

// parseLimit reads a memory limit: bytes, or "max" (v2) or a value near
// 2^63 (v1) for none.
func parseLimit(s string) int64 {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}
