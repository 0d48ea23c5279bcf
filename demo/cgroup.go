package demo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Slice is the cgroup, named like a systemd slice, that holds the demo's
// processes when StartProcesses can make cgroups: each runs in
// Slice/NAME.service, so that pxq names it as it names a systemd service
// (metadata.EntityOf): pod and service "pxq-demo.slice/catalog.service"
// in namespace "pxq-demo.slice". Without it every process would be the
// entity of the pxq binary, "host/pxq".
const Slice = "pxq-demo.slice"

// UnitOf is the cgroup unit the demo runs the process name in.
func UnitOf(name string) string { return name + ".service" }

// cgroups makes, fills and removes the demo's cgroups in the cgroup v2
// hierarchy.
type cgroups struct {
	slice string   // the slice's folder
	units []string // the unit folders made so far
	// noClone is set once the kernel refused to start a process inside
	// a cgroup (CLONE_INTO_CGROUP is Linux 5.7): processes are then
	// moved into theirs right after they start.
	noClone bool
}

// cgroupMagic is the f_type of a cgroup v2 file system.
const cgroupMagic = unix.CGROUP2_SUPER_MAGIC

// cgroupOptions say where StartProcesses makes its cgroups.
type cgroupOptions struct {
	root    string // the cgroup v2 mount; "" to find it
	slice   string // default Slice
	noClone bool   // move every process, as before Linux 5.7
}

// newCgroups makes the slice's folder in the cgroup v2 hierarchy.
func newCgroups(o cgroupOptions) (*cgroups, error) {
	root := o.root
	if root == "" {
		var err error
		if root, err = cgroup2Mount("/proc/self/mountinfo"); err != nil {
			return nil, err
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("cgroup v2 at %s: %w", root, err)
	}
	if st.Type != cgroupMagic {
		return nil, fmt.Errorf("%s is not a cgroup v2 file system", root)
	}
	if o.slice == "" {
		o.slice = Slice
	}
	g := &cgroups{slice: filepath.Join(root, o.slice), noClone: o.noClone}
	// A folder left by a demo that was killed is reused.
	if err := os.Mkdir(g.slice, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return g, nil
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on most hosts, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - FSTYPE SOURCE OPTIONS
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && len(fields) > 4 {
				if fields[i+1] == "cgroup2" {
					return unescapeMount(fields[4]), nil
				}
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unit makes the cgroup of the process name and returns its folder.
func (g *cgroups) unit(name string) (string, error) {
	dir := filepath.Join(g.slice, UnitOf(name))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	g.units = append(g.units, dir)
	return dir, nil
}

// openUnit opens a unit's folder for SysProcAttr.CgroupFD, or returns -1
// when processes must be moved instead.
func (g *cgroups) openUnit(dir string) (int, error) {
	if g.noClone {
		return -1, nil
	}
	return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// move puts the process pid into the unit's cgroup.
func (g *cgroups) move(dir string, pid int) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// remove removes the units and the slice. Their processes must have been
// waited for: a cgroup that holds a process cannot be removed. A cgroup
// still busy (another demo runs in it) is left to whoever uses it.
func (g *cgroups) remove() error {
	var errs []error
	for _, dir := range append(g.units, g.slice) {
		if err := rmdirCgroup(dir); err != nil && !errors.Is(err, syscall.EBUSY) && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	g.units = nil
	return errors.Join(errs...)
}

// rmdirCgroup removes a cgroup, waiting a little for the kernel to see
// its last process leave.
func rmdirCgroup(dir string) error {
	var err error
	for range 20 {
		if err = unix.Rmdir(dir); !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}
