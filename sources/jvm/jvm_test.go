package jvm

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// jdk returns the folder holding testdata/Alloc.class, compiled for the
// test, and stops the test without a JDK.
func jdk(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"java", "javac", "jstat"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFailf(t, "no %s on $PATH: apt-get install -y default-jdk-headless", tool)
		}
	}
	dir := t.TempDir()
	out, err := exec.Command("javac", "-d", dir, filepath.Join("testdata", "Alloc.java")).CombinedOutput()
	if err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return dir
}

// javaProc is a running testdata/Alloc.
type javaProc struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

// startJava runs argv (a java command line, possibly wrapped) with
// Alloc's class folder as its class path and waits for its first "ok".
func startJava(t *testing.T, argv ...string) *javaProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j := &javaProc{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	j.wait()
	return j
}

// do runs one of Alloc's commands and waits for its end.
func (j *javaProc) do(cmd string) {
	j.t.Helper()
	if _, err := fmt.Fprintln(j.in, cmd); err != nil {
		j.t.Fatalf("%s: %v", cmd, err)
	}
	j.wait()
}

func (j *javaProc) wait() {
	j.t.Helper()
	if !j.out.Scan() {
		j.t.Fatalf("java exited: %v", j.out.Err())
	}
	if j.out.Text() != "ok" {
		j.t.Fatalf("java said %q", j.out.Text())
	}
}

// findPID returns the JVM of host pid pid among those Find lists.
func findPID(t *testing.T, pid int) Process {
	t.Helper()
	ps, err := Find("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.PID == pid {
			return p
		}
	}
	t.Fatalf("Find does not list pid %d (it lists %+v)", pid, ps)
	return Process{}
}

// jstat runs jstat -OPTION on pid and returns its columns by name.
func jstat(t *testing.T, option string, pid int, nsenter bool) map[string]float64 {
	t.Helper()
	argv := []string{"jstat", "-" + option, strconv.Itoa(pid)}
	if nsenter {
		// jstat of a JVM in other namespaces runs inside them.
		argv = []string{"nsenter", "-t", strconv.Itoa(pid), "-m", "-p", "jstat", "-" + option, "1"}
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%s said:\n%s", strings.Join(argv, " "), out)
	}
	names, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(names) != len(vals) {
		t.Fatalf("%s said:\n%s", strings.Join(argv, " "), out)
	}
	m := map[string]float64{}
	for i, n := range names {
		if v, err := strconv.ParseFloat(vals[i], 64); err == nil {
			m[n] = v
		}
	}
	return m
}

// readStats reads p's file.
func readStats(t *testing.T, p Process) Stats {
	t.Helper()
	b, err := os.ReadFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := StatsOf(pd)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kb is jstat's rounding of sizes: KB with one decimal.
const kb = 1024

// checkAgainstJstat compares s with jstat -gc and -gcutil of the same
// (stopped) JVM.
func checkAgainstJstat(t *testing.T, s Stats, gc, util map[string]float64) {
	t.Helper()
	if s.YoungGCs != int64(gc["YGC"]) || s.FullGCs != int64(gc["FGC"]) {
		t.Errorf("GCs: young %d full %d, jstat YGC %v FGC %v", s.YoungGCs, s.FullGCs, gc["YGC"], gc["FGC"])
	}
	if s.YoungGCs != int64(util["YGC"]) || s.FullGCs != int64(util["FGC"]) {
		t.Errorf("GCs: young %d full %d, jstat -gcutil YGC %v FGC %v", s.YoungGCs, s.FullGCs, util["YGC"], util["FGC"])
	}
	// jstat prints seconds with three decimals.
	for _, c := range []struct {
		name string
		d    time.Duration
	}{{"YGCT", s.YoungGCTime}, {"FGCT", s.FullGCTime}} {
		if diff := math.Abs(c.d.Seconds() - gc[c.name]); diff > 0.0005+1e-9 {
			t.Errorf("%s: %v, jstat %v s", c.name, c.d, gc[c.name])
		}
	}
	// Four spaces, each rounded to 0.1 KB.
	used := (gc["S0U"] + gc["S1U"] + gc["EU"] + gc["OU"]) * kb
	committed := (gc["S0C"] + gc["S1C"] + gc["EC"] + gc["OC"]) * kb
	if math.Abs(float64(s.UsedHeap)-used) > 4*0.05*kb+1 {
		t.Errorf("used heap %d, jstat S0U+S1U+EU+OU %.0f", s.UsedHeap, used)
	}
	if math.Abs(float64(s.CommittedHeap)-committed) > 4*0.05*kb+1 {
		t.Errorf("committed heap %d, jstat S0C+S1C+EC+OC %.0f", s.CommittedHeap, committed)
	}
	// -gcutil's O is the old generation's use in percent of its capacity.
	if o := 100 * gc["OU"] / gc["OC"]; gc["OC"] > 0 && math.Abs(o-util["O"]) > 0.01 {
		t.Errorf("jstat -gc and -gcutil disagree: O %.2f%%, %v%%", o, util["O"])
	}
}

// TestAgainstJstat runs a JVM under each of HotSpot's generational
// collectors, makes it collect a known number of times, and compares
// what the parser reads with what jstat reads of the same stopped JVM.
func TestAgainstJstat(t *testing.T) {
	classes := jdk(t)
	for _, gc := range []string{"G1", "Serial", "Parallel"} {
		t.Run(gc, func(t *testing.T) {
			const xmx = 128 << 20
			j := startJava(t, "java", "-Xmx128m", "-XX:+Use"+gc+"GC", "-cp", classes, "Alloc")
			pid := j.cmd.Process.Pid
			p := findPID(t, pid)
			if p.NSPID != pid || p.Path != fmt.Sprintf("/proc/%d/root/tmp/hsperfdata_%s/%d", pid, userName(t), pid) {
				t.Errorf("found %+v", p)
			}
			j.do("alloc 400")
			j.do("keep 24")
			j.do("gc 3")
			j.cmd.Process.Signal(syscall.SIGSTOP)
			s := readStats(t, p)
			gcs, util := jstat(t, "gc", pid, false), jstat(t, "gcutil", pid, false)
			capa := jstat(t, "gccapacity", pid, false)
			j.cmd.Process.Signal(syscall.SIGCONT)
			t.Logf("%+v", s)
			checkAgainstJstat(t, s, gcs, util)
			if s.YoungGCs == 0 || s.YoungGCTime == 0 {
				t.Errorf("400 MB allocated in a 128 MB heap and no young GC: %+v", s)
			}
			if s.FullGCs < 3 || s.UsedHeap < 24<<20 || s.CommittedHeap < s.UsedHeap {
				t.Errorf("after keeping 24 MB and 3 System.gc(): %+v", s)
			}
			// G1's generations may each take the whole heap; the others
			// split it.
			wantMax := (capa["NGCMX"] + capa["OGCMX"]) * kb
			if gc == "G1" {
				wantMax = xmx
			}
			if math.Abs(float64(s.MaxHeap)-wantMax) > 2*0.05*kb+32 || s.MaxHeap > xmx+32 {
				t.Errorf("max heap %d, want %.0f (-Xmx %d)", s.MaxHeap, wantMax, xmx)
			}

			// Two more full collections are counted as two.
			j.do("gc 2")
			j.cmd.Process.Signal(syscall.SIGSTOP)
			s2 := readStats(t, p)
			gcs, util = jstat(t, "gc", pid, false), jstat(t, "gcutil", pid, false)
			j.cmd.Process.Signal(syscall.SIGCONT)
			checkAgainstJstat(t, s2, gcs, util)
			if s2.FullGCs != s.FullGCs+2 || s2.FullGCTime <= s.FullGCTime {
				t.Errorf("after 2 more System.gc(): %+v, before %+v", s2, s)
			}
		})
	}
}

func userName(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("USER"); u != "" && os.Geteuid() != 0 {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	t.Fatal("no $USER")
	return ""
}

// jvmRows returns the jvm_stats rows of upid in store, as columns by
// name.
func jvmRows(t *testing.T, store *table.Store, upid types.UInt128Value) []map[string]int64 {
	t.Helper()
	var out []map[string]int64
	tb := store.Table("jvm_stats")
	rel := tb.Relation()
	for _, b := range tb.Snapshot(0, 0) {
		rec := b.Record
		upids := rec.Column(rel.Index("upid")).(*array.FixedSizeBinary)
		for i := 0; i < int(rec.NumRows()); i++ {
			if types.GetUInt128(upids.Value(i)) != upid {
				continue
			}
			row := map[string]int64{}
			for ci, c := range rel {
				switch col := rec.Column(ci).(type) {
				case *array.Int64:
					row[c.Name] = col.Value(i)
				case *array.Timestamp:
					row[c.Name] = int64(col.Value(i))
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// TestReader checks the rows the reader writes of a running JVM.
func TestReader(t *testing.T) {
	classes := jdk(t)
	j := startJava(t, "java", "-Xmx64m", "-XX:+UseSerialGC", "-cp", classes, "Alloc")
	j.do("alloc 100")
	j.do("gc 1")
	pid := j.cmd.Process.Pid
	store := table.NewStore(0)
	r, err := NewReader(Config{ASID: 9}, store)
	if err != nil {
		t.Fatal(err)
	}
	j.cmd.Process.Signal(syscall.SIGSTOP)
	now := time.Now()
	if err := r.Sample(now); err != nil {
		t.Fatal(err)
	}
	s := readStats(t, findPID(t, pid))
	j.cmd.Process.Signal(syscall.SIGCONT)
	st, err := procfs.ReadStat("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	rows := jvmRows(t, store, types.UPID(9, uint32(pid), st.StartNS()))
	if len(rows) != 1 {
		t.Fatalf("%d rows of the JVM, want 1", len(rows))
	}
	want := map[string]int64{
		"time_":           now.UnixNano(),
		"young_gc_time":   int64(s.YoungGCTime),
		"full_gc_time":    int64(s.FullGCTime),
		"used_heap_size":  s.UsedHeap,
		"total_heap_size": s.CommittedHeap,
		"max_heap_size":   s.MaxHeap,
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %d, want %d", k, rows[0][k], v)
		}
	}
	if s.FullGCTime == 0 || s.MaxHeap < 60<<20 || s.MaxHeap > 64<<20 {
		t.Errorf("stats %+v", s)
	}
	if c := r.Counters(); c.Samples != 1 || c.Rows < 1 || c.Malformed != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestExitMidRead checks that JVMs that exit between being found and
// being read (killed, leaving their file behind, or exiting, deleting
// it) are skipped and counted.
func TestExitMidRead(t *testing.T) {
	classes := jdk(t)
	for _, how := range []string{"kill", "exit"} {
		t.Run(how, func(t *testing.T) {
			j := startJava(t, "java", "-Xmx32m", "-cp", classes, "Alloc")
			pid := j.cmd.Process.Pid
			p := findPID(t, pid)
			r, err := NewReader(Config{}, table.NewStore(0))
			if err != nil {
				t.Fatal(err)
			}
			if how == "kill" {
				j.cmd.Process.Kill()
			} else {
				fmt.Fprintln(j.in, "exit")
			}
			j.cmd.Wait()
			_, statErr := os.Stat(fmt.Sprintf("/tmp/hsperfdata_%s/%d", userName(t), pid))
			if how == "exit" && statErr == nil {
				t.Errorf("the JVM exited and left its file")
			}
			if err := r.sample(time.Now(), []Process{p}); err != nil {
				t.Fatal(err)
			}
			if c := r.Counters(); c.Vanished != 1 || c.Rows != 0 || c.Malformed != 0 {
				t.Errorf("counters %+v, want one vanished JVM", c)
			}
			// A file left behind is not taken for a JVM of its pid.
			if ps, err := Find("/proc"); err == nil {
				for _, q := range ps {
					if q.PID == pid {
						t.Errorf("Find lists the exited JVM: %+v", q)
					}
				}
			}
			if statErr == nil {
				os.Remove(fmt.Sprintf("/tmp/hsperfdata_%s/%d", userName(t), pid))
			}
		})
	}
}

// TestStaleFile checks that a process that is not a JVM is not taken for
// one when an hsperfdata file carries its pid (a JVM of that pid was
// killed before).
func TestStaleFile(t *testing.T) {
	classes := jdk(t)
	j := startJava(t, "java", "-Xmx32m", "-cp", classes, "Alloc")
	b, err := os.ReadFile(findPID(t, j.cmd.Process.Pid).Path)
	if err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	dir, err := os.MkdirTemp("/tmp", "hsperfdata_pxqtest")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(sleep.Process.Pid)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFinder("/proc")
	if _, ok := f.process(sleep.Process.Pid); ok {
		t.Errorf("sleep taken for a JVM")
	}
	if _, ok := f.process(j.cmd.Process.Pid); !ok {
		t.Errorf("the JVM is not found")
	}
	if files := f.dirs; len(files) == 0 {
		t.Errorf("no /tmp listed")
	}
}

// TestPrivateTmp runs a JVM in its own mount and pid namespaces, with a
// tmpfs on /tmp, as in a container: it is found from the host through
// /proc/PID/root with its namespaced pid (1), and read as jstat reads it
// from inside.
func TestPrivateTmp(t *testing.T) {
	testenv.RequireRoot(t, "create mount and pid namespaces")
	classes := jdk(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		testenv.SkipOrFail(t, "no unshare: apt-get install -y util-linux")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal(err)
	}
	// The class folder is under the host's /tmp, which the tmpfs hides:
	// the class is opened before mounting and copied into the new /tmp.
	script := fmt.Sprintf("exec 3<%s/Alloc.class && mount -t tmpfs pxqtest /tmp && mkdir /tmp/c && cat <&3 >/tmp/c/Alloc.class && "+
		"exec %s -Xmx48m -XX:+UseSerialGC -cp /tmp/c Alloc", classes, java)
	j := startJava(t, "unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", script)
	pid := childOf(t, j.cmd.Process.Pid)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	j.do("alloc 60")
	j.do("gc 2")
	p := findPID(t, pid)
	if p.NSPID != 1 || p.Path != fmt.Sprintf("/proc/%d/root/tmp/hsperfdata_root/1", pid) {
		t.Errorf("found %+v", p)
	}
	if _, err := os.Stat(fmt.Sprintf("/tmp/hsperfdata_root/%d", pid)); err == nil {
		t.Errorf("the JVM's file is in the host's /tmp")
	}
	syscall.Kill(pid, syscall.SIGSTOP)
	s := readStats(t, p)
	gc, util := jstat(t, "gc", pid, true), jstat(t, "gcutil", pid, true)
	syscall.Kill(pid, syscall.SIGCONT)
	checkAgainstJstat(t, s, gc, util)
	if s.FullGCs < 2 {
		t.Errorf("stats %+v after 2 System.gc()", s)
	}
}

// childOf returns the only child of pid, waiting for it to exec java.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) != 1 {
			continue
		}
		c, _ := strconv.Atoi(f[0])
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); strings.TrimSpace(string(comm)) == "java" {
			return c
		}
	}
	t.Fatalf("no java child of %d", pid)
	return 0
}
