package realclient

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	Port, Pid int
}

func (s *server) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// startNATS runs nats-server on a free port of 127.0.0.1 with a
// configuration of one user, and stops it when the test ends.
func startNATS(t testing.TB) *server {
	t.Helper()
	bin := dbtest.Need(t, "nats-server", "/usr/sbin")
	dir := t.TempDir()
	s := &server{Port: dbtest.FreePort(t)}
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
	s.Pid = dbtest.StartCommand(t, s.Port, exec.Command(bin, "-c", conf)).Pid()
	return s
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
