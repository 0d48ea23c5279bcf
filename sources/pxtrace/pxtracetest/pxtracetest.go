// Package pxtracetest helps the tests of dynamic tracepoints: it says
// whether this machine can run bpftrace, and starts a child process that
// calls nanosleep(2) in a loop, for a tracepoint on
// syscalls:sys_enter_nanosleep to see.
//
// A test binary that imports it turns into the sleeper when started with
// PXQ_PXTRACE_SLEEP set (this package's init), so no other program is
// built.
package pxtracetest

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/testenv"
)

const sleepEnv = "PXQ_PXTRACE_SLEEP"

func init() {
	v := os.Getenv(sleepEnv)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		os.Exit(2)
	}
	// Explicit nanosleep calls: libc's sleep and Go's time.Sleep use
	// other syscalls (clock_nanosleep, futex).
	ts := unix.NsecToTimespec((10 * time.Millisecond).Nanoseconds())
	for end := time.Now().Add(d); time.Now().Before(end); {
		_ = unix.Nanosleep(&ts, nil)
	}
	os.Exit(0)
}

// Require stops the test (testenv.SkipOrFail) unless it runs as root
// with bpftrace installed, and returns bpftrace's path.
func Require(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t, "run bpftrace tracepoints")
	p, err := exec.LookPath("bpftrace")
	if err != nil {
		testenv.SkipOrFail(t, "bpftrace is not installed (apt-get install bpftrace)")
	}
	return p
}

// Sleeper starts a child that calls nanosleep every 10 ms for d, and
// returns it; the test's cleanup kills it.
func Sleeper(t testing.TB, d time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sleepEnv+"="+d.String())
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the sleeper: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// PID returns the process id of cmd as a column value.
func PID(cmd *exec.Cmd) int64 { return int64(cmd.Process.Pid) }
