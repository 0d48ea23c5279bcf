package realclient

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"

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
	Port, Pid int
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// startFerretDB runs this test binary again as a FerretDB server on a
// free port of 127.0.0.1, its data in a temporary folder, and stops it
// when the test ends: the server is a process of its own, so that a
// tracer of the test's process alone sees the client's side only.
func startFerretDB(t testing.TB) *server {
	t.Helper()
	s := &server{Port: dbtest.FreePort(t)}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+s.addr(), dirEnv+"="+t.TempDir())
	s.Pid = dbtest.StartCommand(t, s.Port, cmd).Pid()
	return s
}
