// Package dbtest runs the real database servers the database protocols'
// tests talk to (PostgreSQL, MariaDB, Redis, from Debian's packages), each
// on 127.0.0.1 with its data in a temporary folder, and a proxy that
// records the bytes of every connection through it as the client and
// the server exchanged them.
//
// A server that is not installed makes the test skip with the reason,
// or fail when CI=true (.ci/run installs them).
package dbtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// Skip stops a test that cannot run here: it skips with the reason,
// or fails under CI=true, where every dependency is installed and a skip
// would hide a failure (testenv.SkipOrFail).
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.SkipOrFailf(t, format, args...)
}

// Server is a database server started for a test.
type Server struct {
	Port int
	Dir  string // its data folder
	// Socket is its Unix socket (PostgreSQL's folder, MariaDB's path).
	Socket string
	cmd    *exec.Cmd
	log    *bytes.Buffer
}

// Addr is the server's TCP address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lookPath finds a program in PATH or in dirs.
func lookPath(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (apt-get install it)", name)
}

// Need returns the path of program name, skipping the test when it is
// not installed.
func Need(t testing.TB, name string, dirs ...string) string {
	t.Helper()
	p, err := lookPath(name, dirs...)
	if err != nil {
		Skip(t, "%v", err)
	}
	return p
}

// StartCommand runs cmd as a server that listens on 127.0.0.1:port (a
// FreePort), waits until the port accepts connections, and stops it
// when the test ends (the real-client modules' servers: nats-server,
// FerretDB in a test binary of its own).
func StartCommand(t testing.TB, port int, cmd *exec.Cmd) *Server {
	t.Helper()
	s := &Server{Port: port}
	s.start(t, cmd)
	return s
}

// Pid is the server process's pid.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// start runs the server command and waits until its port accepts
// connections.
func (s *Server) start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	s.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = mergeAttr(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-exited:
			// A server that died under a test is often why it failed.
			if t.Failed() {
				t.Logf("%s had exited before the test ended: %v\n%s", cmd.Path, err, s.log)
			}
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", cmd.Path, err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s\n%s", cmd.Path, s.Addr(), s.log)
		}
	}
}

func mergeAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a == nil {
		a = &syscall.SysProcAttr{}
	}
	// The server dies with the test binary if the test is killed.
	a.Pdeathsig = syscall.SIGKILL
	return a
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }

// asUser returns credentials of the named system user, for servers that
// refuse to run as root.
func asUser(t testing.TB, name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tempDir makes a temporary folder owned by cred (when not nil).
func tempDir(t testing.TB, cred *syscall.Credential) string {
	dir, err := os.MkdirTemp("", "pxq-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// PostgresBin is where Debian installs the PostgreSQL server programs.
func PostgresBin() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	return dirs
}

// PostgresPassword is the password of the user "pxq" of StartPostgres,
// whose connections over TCP authenticate with SCRAM-SHA-256.
const PostgresPassword = "pxq-secret"

// StartPostgres initialises a cluster in a temporary folder (as the
// system user postgres: the server refuses root) and starts it on a free
// port of 127.0.0.1. The superuser is "pxq"; TCP connections need its
// password (SCRAM), Unix socket connections are trusted.
func StartPostgres(t testing.TB) *Server {
	t.Helper()
	dirs := PostgresBin()
	initdb := Need(t, "initdb", dirs...)
	postgres := Need(t, "postgres", dirs...)
	cred, err := asUser(t, "postgres")
	if err != nil {
		Skip(t, "no postgres system user (apt-get install postgresql): %v", err)
	}
	dir := tempDir(t, cred)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(pw, int(cred.Uid), int(cred.Gid))
	data := filepath.Join(dir, "data")
	init := exec.Command(initdb, "-D", data, "-U", "pxq", "--pwfile", pw, "--auth-local=trust",
		"--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s := &Server{Port: FreePort(t), Dir: data, Socket: dir}
	cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(s.Port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	s.start(t, cmd)
	return s
}

// StartMariaDB initialises a MariaDB data folder and starts the server
// on a free port of 127.0.0.1, with a user "pxq" (password "pxq") that
// may do anything, and a database "pxq".
func StartMariaDB(t testing.TB) *Server {
	t.Helper()
	install := Need(t, "mariadb-install-db")
	server := Need(t, "mariadbd", "/usr/sbin")
	client := Need(t, "mariadb")
	dir := tempDir(t, nil)
	data := filepath.Join(dir, "data")
	init := exec.Command(install, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=socket", "--skip-test-db")
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	s := &Server{Port: FreePort(t), Dir: data, Socket: filepath.Join(dir, "sock")}
	cmd := exec.Command(server, "--no-defaults", "--datadir="+data, "--user=root",
		"--port="+strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--socket="+s.Socket,
		"--pid-file="+filepath.Join(dir, "pid"), "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--innodb-flush-log-at-trx-commit=0", "--skip-name-resolve")
	s.start(t, cmd)
	setup := exec.Command(client, "--no-defaults", "-S", s.Socket, "-u", "root", "-e",
		"CREATE USER 'pxq'@'%' IDENTIFIED BY 'pxq'; GRANT ALL ON *.* TO 'pxq'@'%'; CREATE DATABASE pxq;")
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("mariadb setup: %v\n%s", err, out)
	}
	return s
}

// StartRedis starts redis-server on a free port of 127.0.0.1, without
// persistence.
func StartRedis(t testing.TB) *Server {
	t.Helper()
	server := Need(t, "redis-server")
	dir := tempDir(t, nil)
	s := &Server{Port: FreePort(t), Dir: dir}
	cmd := exec.Command(server, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "no")
	s.start(t, cmd)
	return s
}

// Run runs a client program, failing the test with its output on error.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	return RunInput(t, env, "", name, args...)
}

// RunInput is Run with stdin as the program's input.
func RunInput(t testing.TB, env []string, stdin, name string, args ...string) string {
	t.Helper()
	out, err := RunInputErr(env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr runs a client program and returns its output and error.
func RunErr(env []string, name string, args ...string) (string, error) {
	return RunInputErr(env, "", name, args...)
}

// RunInputErr is RunErr with stdin as the program's input. The program
// gets 2 minutes.
func RunInputErr(env []string, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Chunk is the bytes of one read on one side of a proxied connection.
type Chunk struct {
	Conn     int  // the connection's number, from 0 in accept order
	ToServer bool // written by the client (false: by the server)
	TS       int64
	Data     []byte
}

// Proxy forwards connections from its port to a server's, handing each
// read to a callback before forwarding it: the callback sees what each
// side sent in the order the other side could read it.
type Proxy struct {
	Port int
	l    net.Listener
	mu   sync.Mutex
	n    int
	wg   sync.WaitGroup
	fn   func(Chunk)
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target,
// calling fn (serialised) with each read.
func NewProxy(t testing.TB, target string, fn func(Chunk)) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: l.Addr().(*net.TCPAddr).Port, l: l, fn: fn}
	go p.serve(target)
	t.Cleanup(p.Close)
	return p
}

// Close stops accepting and waits for the open connections to end.
func (p *Proxy) Close() {
	p.l.Close()
	p.wg.Wait()
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

func (p *Proxy) serve(target string) {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		id := p.n
		p.n++
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var both sync.WaitGroup
			both.Add(2)
			go func() { defer both.Done(); p.pipe(id, true, c, s) }()
			go func() { defer both.Done(); p.pipe(id, false, s, c) }()
			both.Wait()
			c.Close()
			s.Close()
		}()
	}
}

func (p *Proxy) pipe(id int, toServer bool, from, to net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.fn(Chunk{Conn: id, ToServer: toServer, TS: time.Now().UnixNano(), Data: append([]byte(nil), buf[:n]...)})
			p.mu.Unlock()
			if _, werr := to.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			// Half-close so the other side sees the end, then let its
			// own pipe finish.
			if tc, ok := to.(*net.TCPConn); ok {
				tc.CloseWrite()
			} else {
				to.Close()
			}
			if tc, ok := from.(*net.TCPConn); ok {
				tc.CloseRead()
			}
			return
		}
	}
}

// Segment is chunk c as the tracer would hand it to the parser of the
// side role of the connection: what the client wrote is egress on the
// client and ingress on the server.
func Segment(c Chunk, role protocols.Role) protocols.Segment {
	dir := protocols.Ingress
	if c.ToServer == (role == protocols.RoleClient) {
		dir = protocols.Egress
	}
	return protocols.Segment{Dir: dir, TS: c.TS, Data: c.Data}
}

// A recording is the chunks of one connection, as a file: per chunk a
// byte ('C' written by the client, 'S' by the server), its length
// (4 bytes, big-endian) and its bytes. Timestamps are not kept; Replay
// spaces the chunks 10 µs apart.

// Record writes the chunks of connection conn to path when the
// environment has PXQ_RECORD=1 (to refresh a package's testdata from
// the real client and server).
func Record(t testing.TB, path string, chunks []Chunk, conn int) {
	t.Helper()
	if os.Getenv("PXQ_RECORD") != "1" {
		return
	}
	var b []byte
	for _, c := range chunks {
		if c.Conn != conn {
			continue
		}
		d := byte('S')
		if c.ToServer {
			d = 'C'
		}
		b = append(b, d, byte(len(c.Data)>>24), byte(len(c.Data)>>16), byte(len(c.Data)>>8), byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d bytes)", path, len(b))
}

// Replay reads a recording.
func Replay(t testing.TB, path string) []Chunk {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := ParseRecording(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return chunks
}

// ParseRecording decodes the bytes of a recording.
func ParseRecording(b []byte) ([]Chunk, error) {
	var chunks []Chunk
	ts := int64(1_000_000)
	for len(b) > 0 {
		if len(b) < 5 || (b[0] != 'C' && b[0] != 'S') {
			return nil, fmt.Errorf("malformed recording at %d bytes from the end", len(b))
		}
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			return nil, fmt.Errorf("chunk of %d bytes cut short", n)
		}
		ts += 10_000
		chunks = append(chunks, Chunk{ToServer: b[0] == 'C', TS: ts, Data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return chunks, nil
}

// Held is a client program started but held before it runs, so that
// its pid can be given to a tracer (ebpf.Config.OnlyPIDs) before it
// connects: a shell waits for a line, then execs the program in its
// place (same pid).
type Held struct {
	Pid   int
	cmd   *exec.Cmd
	gate  *os.File
	stdin string
	out   *bytes.Buffer
}

// Hold starts name with args, held; stdin is what the program reads.
func Hold(t testing.TB, env []string, stdin string, name string, args ...string) *Held {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The first line of stdin releases the program, the rest is its
	// input.
	cmd := exec.Command("sh", append([]string{"-c", `read x; exec "$@"`, "sh", name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = r
	h := &Held{cmd: cmd, gate: w, stdin: stdin, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	h.Pid = cmd.Process.Pid
	t.Cleanup(func() { w.Close(); cmd.Process.Kill(); cmd.Wait() })
	return h
}

// Run releases the program, waits for it to end and returns its output.
func (h *Held) Run() (string, error) {
	go func() {
		io.WriteString(h.gate, "go\n"+h.stdin)
		h.gate.Close()
	}()
	err := h.cmd.Wait()
	return h.out.String(), err
}
