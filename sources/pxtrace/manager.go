package pxtrace

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// DefaultTTL is how long a tracepoint runs when its upsert gives no TTL.
const DefaultTTL = 10 * time.Minute

// RetryFailed is how long an upsert of a program that failed reports the
// failure instead of starting the program again.
var RetryFailed = 10 * time.Second

// State is a tracepoint's life-cycle state, named as Pixie's
// LifeCycleState.
type State uint8

const (
	Pending State = iota + 1
	Running
	Failed
	Terminated
)

func (s State) String() string {
	switch s {
	case Pending:
		return "PENDING_STATE"
	case Running:
		return "RUNNING_STATE"
	case Failed:
		return "FAILED_STATE"
	case Terminated:
		return "TERMINATED_STATE"
	}
	return "UNKNOWN_STATE"
}

// Spec is one upsert of a tracepoint.
type Spec struct {
	Name  string
	Table string
	// Programs are the bpftrace programs to choose from: the first whose
	// kernel range holds this node's kernel runs (pxtrace.TraceProgram's
	// min_kernel and max_kernel). They must print the same fields.
	Programs []Choice
	// TTL is how long the tracepoint runs after this upsert
	// (DefaultTTL when 0).
	TTL time.Duration
}

// Choice is one program of a Spec with the kernels it is meant for
// ("5.10", "" for any).
type Choice struct {
	Text                 string
	MinKernel, MaxKernel string
}

// Status describes one tracepoint of a node.
type Status struct {
	ID    types.UInt128Value
	Name  string
	Table string
	State State
	// Err says why the tracepoint failed (bpftrace's error).
	Err string
	// PID is bpftrace's process id while it runs.
	PID     int
	Expires time.Time
}

// ID returns the id of the tracepoint called name: the same on every
// node, so that a cluster's agents report one tracepoint.
func ID(name string) types.UInt128Value {
	h := sha256.Sum256([]byte("pxtrace:" + name))
	return types.UInt128Value{High: binary.BigEndian.Uint64(h[:8]), Low: binary.BigEndian.Uint64(h[8:16])}
}

// Config configures a Manager.
type Config struct {
	// Store receives the tracepoints' tables.
	Store *table.Store
	// ASID is this node's agent short id (the upid column carries it).
	ASID uint32
	// Bpftrace is the bpftrace binary ("bpftrace" in PATH when empty).
	Bpftrace string
	// Log receives a line when a tracepoint starts, fails or stops.
	Log *slog.Logger
}

// Manager runs the tracepoints of one node. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	mu      sync.Mutex
	tps     map[string]*tracepoint
	changed chan struct{} // closed and replaced when a state changes
	closed  bool
}

// NewManager returns a manager of no tracepoints.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{cfg: cfg, tps: map[string]*tracepoint{}, changed: make(chan struct{})}
}

// tracepoint is one running (or ended) bpftrace program.
type tracepoint struct {
	spec    Spec
	text    string // the chosen program
	prog    *Program
	state   State
	err     string
	pid     int
	expires time.Time
	timer   *time.Timer
	cmd     *exec.Cmd
	stopped bool          // stopped by pxq (TTL, delete, close), not by itself
	ended   time.Time     // when it failed or stopped
	done    chan struct{} // closed when bpftrace has exited and its rows are stored
}

// Upsert starts the tracepoint spec.Name, or, when it runs the same
// program into the same table, keeps it and restarts its TTL, so that
// the scripts that upsert one name share one program. A changed program
// replaces the running one. The error is the spec's mistake (a program
// with no printf fields, a table with other columns); a program bpftrace
// cannot run ends in the Failed state, with bpftrace's error.
func (m *Manager) Upsert(spec Spec) (Status, error) {
	if spec.Name == "" || spec.Table == "" {
		return Status{}, errors.New("a tracepoint needs a name and a table name")
	}
	if len(spec.Programs) == 0 {
		return Status{}, fmt.Errorf("tracepoint %s has no program", spec.Name)
	}
	if spec.TTL <= 0 {
		spec.TTL = DefaultTTL
	}
	text, err := choose(spec.Programs, kernelRelease())
	if err != nil {
		return Status{}, fmt.Errorf("tracepoint %s: %w", spec.Name, err)
	}
	prog, err := ParseProgram(text)
	if err != nil {
		return Status{}, fmt.Errorf("tracepoint %s: %w", spec.Name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Status{}, errors.New("the tracepoint manager is closed")
	}
	if old := m.tps[spec.Name]; old != nil && old.state == Failed && old.text == text && old.spec.Table == spec.Table && time.Since(old.ended) < RetryFailed {
		// Clients ask again while a tracepoint is not running (Pixie's
		// mutation flag): a program that just failed fails again.
		return old.status(), nil
	}
	if old := m.tps[spec.Name]; old != nil && (old.state == Pending || old.state == Running) {
		if old.text == text && old.spec.Table == spec.Table {
			old.expires = time.Now().Add(spec.TTL)
			old.timer.Reset(spec.TTL)
			return old.status(), nil
		}
		m.stopLocked(old)
	}
	t, err := m.cfg.Store.Create(spec.Table, prog.Columns, table.Options{Desc: fmt.Sprintf("rows of the dynamic tracepoint %s (pxtrace)", spec.Name)})
	if err != nil {
		return Status{}, fmt.Errorf("tracepoint %s: %w", spec.Name, err)
	}
	tp := &tracepoint{spec: spec, text: text, prog: prog, state: Pending, expires: time.Now().Add(spec.TTL), done: make(chan struct{})}
	m.tps[spec.Name] = tp
	tp.timer = time.AfterFunc(spec.TTL, func() { m.expire(tp) })
	if err := m.startLocked(tp, t); err != nil {
		tp.state, tp.err, tp.ended = Failed, err.Error(), time.Now()
		close(tp.done)
		tp.timer.Stop()
		m.cfg.Log.Warn("pxtrace: tracepoint failed", "name", spec.Name, "err", err)
	}
	m.notifyLocked()
	return tp.status(), nil
}

// Delete stops the tracepoint name and forgets it; it reports false when
// there is none. Its table and rows stay.
func (m *Manager) Delete(name string) (Status, bool) {
	m.mu.Lock()
	tp := m.tps[name]
	if tp == nil {
		m.mu.Unlock()
		return Status{}, false
	}
	m.stopLocked(tp)
	m.mu.Unlock()
	<-tp.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tps[name] == tp {
		delete(m.tps, name)
		m.notifyLocked()
	}
	return tp.status(), true
}

// Status returns every tracepoint's status, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.tps))
	for _, tp := range m.tps {
		out = append(out, tp.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Wait waits until none of the named tracepoints is pending, or ctx is
// done, and returns their statuses in the order of names (a name not
// known has the zero State).
func (m *Manager) Wait(ctx context.Context, names []string) []Status {
	for {
		m.mu.Lock()
		out := make([]Status, len(names))
		pending := false
		for i, n := range names {
			out[i] = Status{ID: ID(n), Name: n}
			if tp := m.tps[n]; tp != nil {
				out[i] = tp.status()
				pending = pending || tp.state == Pending
			}
		}
		ch := m.changed
		m.mu.Unlock()
		if !pending {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-ch:
		}
	}
}

// Close stops every tracepoint, waits for their programs to exit, and
// refuses further upserts.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.StopAll()
	return nil
}

// StopAll stops every tracepoint and waits for their programs to exit;
// later upserts start them again.
func (m *Manager) StopAll() {
	m.mu.Lock()
	var dones []chan struct{}
	for _, tp := range m.tps {
		m.stopLocked(tp)
		dones = append(dones, tp.done)
	}
	m.mu.Unlock()
	for _, d := range dones {
		<-d
	}
}

func (tp *tracepoint) status() Status {
	return Status{ID: ID(tp.spec.Name), Name: tp.spec.Name, Table: tp.spec.Table, State: tp.state, Err: tp.err, PID: tp.pid, Expires: tp.expires}
}

func (m *Manager) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *Manager) expire(tp *tracepoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tps[tp.spec.Name] == tp && time.Now().After(tp.expires.Add(-time.Millisecond)) {
		m.cfg.Log.Info("pxtrace: tracepoint expired", "name", tp.spec.Name)
		m.stopLocked(tp)
	}
}

// stopLocked asks bpftrace to stop (SIGINT detaches its probes); a
// program that does not exit within stopGrace is killed.
func (m *Manager) stopLocked(tp *tracepoint) {
	tp.timer.Stop()
	if tp.cmd == nil || tp.stopped {
		return
	}
	tp.stopped = true
	p := tp.cmd.Process
	_ = p.Signal(os.Interrupt)
	go func() {
		select {
		case <-tp.done:
		case <-time.After(stopGrace):
			_ = p.Kill()
		}
	}()
}

const stopGrace = 3 * time.Second

// readyMarker is what the BEGIN probe pxq adds prints: bpftrace runs BEGIN
// once every other probe is attached, so the marker says the program runs
// (bpftrace announces its probes before attaching them).
const readyMarker = "__pxq_tracepoint_attached__"

var beginProbe = regexp.MustCompile(`(?m)(^|[\s;}])BEGIN\s*\{`)

// withReadyMarker returns the program with a BEGIN probe that prints
// readyMarker, added to the program's own BEGIN when it has one.
func withReadyMarker(text string) string {
	stmt := `printf("` + readyMarker + `");`
	if loc := beginProbe.FindStringIndex(text); loc != nil {
		return text[:loc[1]] + " " + stmt + " " + text[loc[1]:]
	}
	return text + "\nBEGIN { " + stmt + " }\n"
}

// startLocked starts bpftrace for tp, writing its rows to t.
func (m *Manager) startLocked(tp *tracepoint, t *table.Table) error {
	bin := m.cfg.Bpftrace
	if bin == "" {
		bin = "bpftrace"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("bpftrace is not installed (%v): install Debian's package bpftrace (apt-get install bpftrace) to run pxtrace tracepoints", err)
	}
	if err := ensureTracefs(); err != nil {
		return err
	}
	cmd := exec.Command(path, "-f", "json", "-e", withReadyMarker(tp.text))
	// bpftrace must not outlive pxq: its probes would stay attached.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting bpftrace: %w", err)
	}
	tp.cmd, tp.pid = cmd, cmd.Process.Pid
	m.cfg.Log.Info("pxtrace: tracepoint started", "name", tp.spec.Name, "table", tp.spec.Table, "pid", tp.pid)
	go m.run(tp, t, stdout, stderr)
	return nil
}

// run reads bpftrace's output into t until it exits, then records how
// it ended.
func (m *Manager) run(tp *tracepoint, t *table.Table, stdout io.Reader, stderr *tailBuffer) {
	w := table.NewWriter(t)
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = w.Flush()
			}
		}
	}()
	offset := bootToWall()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var msg struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.Type != "printf" {
			continue
		}
		var line string
		if json.Unmarshal(msg.Data, &line) != nil {
			continue
		}
		if strings.TrimSpace(line) == readyMarker {
			m.setRunning(tp)
			continue
		}
		row, ok := tp.prog.Row(line)
		if !ok {
			continue
		}
		if tp.prog.printsTime {
			if ns, _ := row[tp.prog.timeField].(int64); ns != 0 {
				row[tp.prog.timeField] = ns + offset
			}
		} else {
			row[0] = time.Now().UnixNano()
		}
		if tp.prog.upid >= 0 {
			u := row[tp.prog.upid].(types.UInt128Value)
			u.High |= uint64(m.cfg.ASID) << 32
			row[tp.prog.upid] = u
		}
		_ = w.AppendRow(row...)
	}
	err := tp.cmd.Wait()
	close(stop)
	<-flushed
	_ = w.Flush()

	m.mu.Lock()
	defer m.mu.Unlock()
	tp.timer.Stop()
	switch {
	case tp.state == Pending:
		tp.state, tp.err = Failed, bpftraceError(stderr.String(), tp.text, err)
		m.cfg.Log.Warn("pxtrace: tracepoint failed", "name", tp.spec.Name, "err", tp.err)
	case tp.stopped || err == nil:
		tp.state = Terminated
		m.cfg.Log.Info("pxtrace: tracepoint stopped", "name", tp.spec.Name)
	default:
		tp.state, tp.err = Failed, bpftraceError(stderr.String(), tp.text, err)
		m.cfg.Log.Warn("pxtrace: tracepoint failed", "name", tp.spec.Name, "err", tp.err)
	}
	tp.pid, tp.ended = 0, time.Now()
	close(tp.done)
	m.notifyLocked()
}

func (m *Manager) setRunning(tp *tracepoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tp.state == Pending {
		tp.state = Running
		m.notifyLocked()
	}
}

// bpftraceError picks bpftrace's error lines out of its stderr (which
// also holds warnings, and the RLIMIT_MEMLOCK complaint that it makes
// before going on).
func bpftraceError(stderr, program string, exit error) string {
	var errs, all []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "RLIMIT_MEMLOCK") || strings.Trim(l, "~^ ") == "" ||
			strings.Contains(program, l) || strings.Contains(l, "WARNING") && len(errs) == 0 && strings.Contains(l, "attaching to it will likely fail") {
			// The memlock complaint, the program's text echoed under
			// an error, and the warning that the error repeats.
			continue
		}
		all = append(all, l)
		if strings.Contains(l, "ERROR") || strings.Contains(l, "rror:") {
			errs = append(errs, l)
		}
	}
	hint := ""
	if strings.Contains(stderr, "kprobe_events") {
		hint = " (this kernel has no kprobes: kprobe and kretprobe programs cannot attach; tracepoint, profile, interval and uprobe programs can)"
	}
	switch {
	case len(errs) > 0:
		// The lines before an error say where (the probe, the source).
		return "bpftrace: " + strings.Join(uniq(all), "; ") + hint
	case len(all) > 0:
		return "bpftrace: " + strings.Join(uniq(all), "; ") + fmt.Sprintf(" (%v)", exit)
	case exit != nil:
		return fmt.Sprintf("bpftrace exited: %v", exit)
	}
	return "bpftrace exited before attaching its probes"
}

func uniq(ls []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range ls {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// bootToWall returns what to add to a CLOCK_MONOTONIC time (bpftrace's
// nsecs) to get ns since the epoch.
func bootToWall() int64 {
	var mono, real unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	return real.Nano() - mono.Nano()
}

const tracefsPath = "/sys/kernel/tracing"

// ensureTracefs mounts tracefs when it is not, as bpftrace needs it for
// tracepoints and uprobes.
func ensureTracefs() error {
	for _, p := range []string{tracefsPath, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(p + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("nodev", tracefsPath, "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("tracefs is not mounted and mounting it at %s failed (pxq must be root): %w", tracefsPath, err)
	}
	return nil
}

// kernelRelease returns this kernel's release ("6.1.0-18-amd64").
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// choose returns the first program whose kernel range holds release.
func choose(cs []Choice, release string) (string, error) {
	have := kernelVersion(release)
	for _, c := range cs {
		if c.MinKernel != "" && cmpVersion(have, kernelVersion(c.MinKernel)) < 0 {
			continue
		}
		if c.MaxKernel != "" && cmpVersion(have, kernelVersion(c.MaxKernel)) > 0 {
			continue
		}
		return c.Text, nil
	}
	return "", fmt.Errorf("none of its %d programs is for this kernel (%s)", len(cs), release)
}

// kernelVersion reads "6.1.0-18-amd64" as [6 1 0].
func kernelVersion(s string) [3]int {
	var v [3]int
	for i, part := range strings.SplitN(s, ".", 3) {
		n := 0
		for _, c := range part {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		v[i] = n
	}
	return v
}

func cmpVersion(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
