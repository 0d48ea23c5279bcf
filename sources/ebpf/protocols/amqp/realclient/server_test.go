package realclient

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// broker is a rabbitmq-server started for a test.
type broker struct {
	Port int
	Pid  int // the Erlang VM's, which does the broker's I/O
	log  *bytes.Buffer
}

func (b *broker) url() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", b.Port) }

// startRabbitMQ runs rabbitmq-server (as root, which it accepts) on a
// free port of 127.0.0.1, its node's database and logs in a temporary
// folder and its own epmd (Erlang's port mapper) on another free port,
// and stops both when the test ends. The user guest, password guest, may
// connect from the loopback.
func startRabbitMQ(t testing.TB) *broker {
	t.Helper()
	server := dbtest.Need(t, "rabbitmq-server", "/usr/lib/rabbitmq/bin")
	if !strings.HasPrefix(server, "/usr/lib/rabbitmq/") {
		// Debian's /usr/sbin wrapper runs the server as the rabbitmq
		// user with its files in /var/lib/rabbitmq: run the real script.
		if p := "/usr/lib/rabbitmq/bin/rabbitmq-server"; exists(p) {
			server = p
		}
	}
	epmd := dbtest.Need(t, "epmd", "/usr/bin", "/usr/lib/erlang/bin")
	dir := t.TempDir()
	b := &broker{Port: dbtest.FreePort(t), log: &bytes.Buffer{}}
	epmdPort, distPort := dbtest.FreePort(t), dbtest.FreePort(t)
	for _, f := range []struct{ name, text string }{
		{"enabled_plugins", "[].\n"},
		{"rabbitmq.conf", "loopback_users.guest = true\nlog.console = true\nlog.file = false\n"},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(),
		"HOME="+dir,
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"RABBITMQ_NODENAME=pxq"+strconv.Itoa(b.Port)+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(b.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
	)
	run := func(name string, args ...string) (*exec.Cmd, chan struct{}) {
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Dir = env, dir
		cmd.Stdout, cmd.Stderr = b.log, b.log
		// Its own process group, so that the Erlang VM and its helpers
		// stop with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
		return cmd, exited
	}
	// Cleanups run last first: the broker stops before its epmd.
	run(epmd, "-address", "127.0.0.1", "-port", strconv.Itoa(epmdPort))
	cmd, exited := run(server)
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.Port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("rabbitmq-server exited\n%s", b.log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rabbitmq-server does not accept connections on %d\n%s", b.Port, b.log)
		}
	}
	b.Pid = beamPid(t, cmd.Process.Pid)
	return b
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// beamPid finds the Erlang VM (beam.smp) in the process group pgid.
func beamPid(t testing.TB, pgid int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if strings.TrimSpace(string(comm)) != "beam.smp" {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			return pid
		}
	}
	t.Fatalf("no beam.smp in process group %d", pgid)
	return 0
}

// settle waits until the tracer has read and parsed what the traffic so
// far made (its counts of events and rows stop changing over 200 ms, or
// 10 s pass), and returns its counters then.
func settle(tr *ebpf.Tracer) ebpf.Stats {
	last := tr.Stats()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		st := tr.Stats()
		if st.Events == last.Events && st.Rows == last.Rows {
			return st
		}
		last = st
	}
	return last
}
