package realclient

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// serveEnv names the address a child test binary serves FerretDB on,
// and dirEnv its SQLite folder.
const (
	serveEnv = "PXQ_FERRETDB_ADDR"
	dirEnv   = "PXQ_FERRETDB_DIR"
)

// TestMain runs FerretDB instead of the tests when the binary was
// started as startFerretDB's server.
func TestMain(m *testing.M) {
	if addr := os.Getenv(serveEnv); addr != "" {
		if err := serve(addr, os.Getenv(dirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve runs FerretDB over SQLite in dir on addr until SIGTERM.
func serve(addr, dir string) error {
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return f.Run(ctx)
}

// server is a FerretDB process started for a test.
type server struct {
	Port int
	Pid  int
	log  *bytes.Buffer
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// startFerretDB runs this test binary again as a FerretDB server on a
// free port of 127.0.0.1, its data in a temporary folder, and stops it
// when the test ends: the server is a process of its own, so that a
// tracer of the test's process alone sees the client's side only.
func startFerretDB(t testing.TB) *server {
	t.Helper()
	s := &server{Port: dbtest.FreePort(t), log: &bytes.Buffer{}}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+s.addr(), dirEnv+"="+t.TempDir())
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ferretdb: %v", err)
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
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-exited:
			t.Fatalf("ferretdb exited: %v\n%s", err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferretdb does not accept connections\n%s", s.log)
		}
	}
}
