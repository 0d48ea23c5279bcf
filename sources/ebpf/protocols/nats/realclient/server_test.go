package realclient

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// natsUser and natsPassword are the credentials of startNATS's server;
// the user may publish anywhere but to forbidden.>.
const (
	natsUser     = "pxq"
	natsPassword = "pxq-secret"
)

// server is a nats-server started for a test.
type server struct {
	Port int
	Pid  int
	log  *bytes.Buffer
}

func (s *server) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// startNATS runs nats-server on a free port of 127.0.0.1 with a
// configuration of one user, and stops it when the test ends.
func startNATS(t testing.TB) *server {
	t.Helper()
	bin := dbtest.Need(t, "nats-server", "/usr/sbin")
	dir := t.TempDir()
	s := &server{Port: dbtest.FreePort(t), log: &bytes.Buffer{}}
	conf := filepath.Join(dir, "nats.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
authorization {
  users = [
    {user: %q, password: %q, permissions: {publish: {deny: "forbidden.>"}}}
  ]
}
`, s.Port, natsUser, natsPassword)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	s.Pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-exited:
			t.Fatalf("nats-server exited: %v\n%s", err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server does not accept connections\n%s", s.log)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

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
