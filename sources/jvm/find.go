package jvm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/internal/procfs"
)

// Process is a running JVM with its hsperfdata file.
type Process struct {
	// PID is the process's pid as the /proc read sees it.
	PID int
	// NSPID is its pid in its own pid namespace, the name of its file.
	NSPID int
	// Path is the file, through /proc/PID/root: inside the process's
	// mount namespace, so that a container's private /tmp is read.
	Path string
	// Start is the process's start time in clock ticks since boot: a
	// process of the same pid and another start is another process.
	Start uint64
}

// finder finds JVMs among the processes of a procfs mount, listing each
// mount namespace's /tmp/hsperfdata_* folders once per pass.
type finder struct {
	root string
	// dirs maps a namespace and root (see nsKey) to the files of its
	// hsperfdata folders: file name (a pid) → paths below /tmp.
	dirs map[string]map[string][]string
}

func newFinder(root string) *finder {
	return &finder{root: root, dirs: map[string]map[string][]string{}}
}

// Find lists the JVMs running under the procfs mount root (normally
// /proc): the processes whose /proc/PID/root/tmp/hsperfdata_*/NSPID
// exists and is mapped by the process (a file left behind by a JVM that
// was killed is not taken for a process that reuses its pid).
func Find(root string) ([]Process, error) {
	return newFinder(root).find()
}

func (f *finder) find() ([]Process, error) {
	ents, err := os.ReadDir(f.root)
	if err != nil {
		return nil, fmt.Errorf("jvm: %w", err)
	}
	clear(f.dirs)
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := f.process(pid); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// process returns pid's JVM, if it is one. Every failure (a process that
// exited, a kernel thread) means it is not.
func (f *finder) process(pid int) (Process, bool) {
	nspid, err := nsPID(f.root, pid)
	if err != nil {
		return Process{}, false
	}
	key, err := nsKey(f.root, pid)
	if err != nil {
		return Process{}, false
	}
	files, ok := f.dirs[key]
	if !ok {
		files = listPerfDirs(filepath.Join(f.root, strconv.Itoa(pid), "root", "tmp"))
		f.dirs[key] = files
	}
	cands := files[strconv.Itoa(nspid)]
	if len(cands) == 0 {
		return Process{}, false
	}
	mapped, err := mappedFiles(f.root, pid)
	if err != nil {
		return Process{}, false
	}
	st, err := procfs.ReadStat(f.root, pid)
	if err != nil {
		return Process{}, false
	}
	for _, rel := range cands {
		if mapped[rel] {
			path := filepath.Join(f.root, strconv.Itoa(pid), "root", "tmp", rel)
			return Process{PID: pid, NSPID: nspid, Path: path, Start: st.Start}, true
		}
	}
	return Process{}, false
}

// nsPID returns pid's pid in its innermost pid namespace: the last
// field of the NSpid line of /proc/PID/status.
func nsPID(root string, pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return 0, fmt.Errorf("jvm: no NSpid in %s/%d/status", root, pid)
}

// nsKey names what /proc/PID/root/tmp shows: the mount namespace and the
// root (a chroot shares its namespace but not its /tmp).
func nsKey(root string, pid int) (string, error) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	mnt, err := os.Readlink(filepath.Join(dir, "ns", "mnt"))
	if err != nil {
		return "", err
	}
	r, err := os.Readlink(filepath.Join(dir, "root"))
	if err != nil {
		return "", err
	}
	return mnt + " " + r, nil
}

// listPerfDirs lists the files of the hsperfdata_* folders of tmp, by
// name, with their paths below tmp ("hsperfdata_USER/NAME").
func listPerfDirs(tmp string) map[string][]string {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil
	}
	var files map[string][]string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "hsperfdata_") {
			continue
		}
		fs, err := os.ReadDir(filepath.Join(tmp, e.Name()))
		if err != nil {
			continue
		}
		for _, fe := range fs {
			if files == nil {
				files = map[string][]string{}
			}
			files[fe.Name()] = append(files[fe.Name()], e.Name()+"/"+fe.Name())
		}
	}
	return files
}

// mappedFiles returns the hsperfdata files pid maps, as paths below its
// /tmp ("hsperfdata_USER/NAME"): a JVM maps its own for as long as it
// runs.
func mappedFiles(root string, pid int) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, []byte("/hsperfdata_"))
		if i < 0 {
			continue
		}
		out[string(line[i+1:])] = true
	}
	return out, sc.Err()
}
