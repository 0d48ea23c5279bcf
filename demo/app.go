package demo

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables that carry the demo's wiring to its child
// processes (so that their command lines stay short: `pxq demo-app
// catalog`).
const (
	envDNS      = "PXQ_DEMO_DNS"
	envPeer     = "PXQ_DEMO_"      // + upper-case service name
	envCert     = "PXQ_DEMO_CERT_" // + upper-case service name: base64 of the DER
	envRate     = "PXQ_DEMO_RATE"
	envDuration = "PXQ_DEMO_DURATION"
	envSeed     = "PXQ_DEMO_SEED"
)

// App is a running demo application.
type App struct {
	// Env names the DNS server and every service.
	Env Env
	// Target is the frontend's base URL.
	Target string
	// CgroupErr says why StartProcesses runs the processes without
	// cgroups of their own (nil when each has one, Slice/NAME.service):
	// they are then named after their executable, all "host/pxq".
	CgroupErr error

	procs  []*child
	cg     *cgroups
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// child is a demo process started by StartProcesses.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// PIDs returns the process ids of the app's child processes, the load
// generator's included once started (none when the app runs in-process).
func (a *App) PIDs() []uint32 {
	var out []uint32
	for _, c := range a.procs {
		out = append(out, uint32(c.cmd.Process.Pid))
	}
	return out
}

// StartInProcess runs the DNS server and every service as goroutines of
// this process, each on its own port of 127.0.0.1.
func StartInProcess(ctx context.Context) (*App, error) {
	ctx, cancel := context.WithCancel(ctx)
	a := &App{cancel: cancel, errs: make(chan error, len(Services)+1), Env: newEnv()}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("demo dns: %w", err)
	}
	a.Env.DNS = pc.LocalAddr().String()
	a.goServe(func() error { return ServeDNS(ctx, pc) })
	for _, name := range Services {
		ln, cert, err := Listen(name)
		if err != nil {
			a.Stop()
			return nil, err
		}
		a.Env.Peers[name] = hostPort(name, ln.Addr())
		if cert != nil {
			a.Env.Certs[name] = cert
		}
		env := a.Env.clone()
		a.goServe(func() error { return Serve(ctx, name, ln, env) })
	}
	a.Target = "http://" + a.Env.Peers[Frontend]
	return a, nil
}

func (a *App) goServe(f func() error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := f(); err != nil {
			a.errs <- err
		}
	}()
}

// newEnv returns an Env without peers.
func newEnv() Env {
	return Env{Peers: map[string]string{}, Certs: map[string]*x509.Certificate{}}
}

// clone copies e, so that a service started keeps the peers it was
// started with.
func (e Env) clone() Env {
	return Env{DNS: e.DNS, Peers: maps.Clone(e.Peers), Certs: maps.Clone(e.Certs)}
}

// hostPort names a service's address under Domain.
func hostPort(name string, addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	return net.JoinHostPort(name+"."+Domain, port)
}

// StartProcesses runs the DNS server and every service as child
// processes of the program exe (the pxq binary): `exe demo-app NAME`,
// each started in a cgroup v2 of its own, Slice/NAME.service, when this
// process may make cgroups (as root), else with CgroupErr set. They exit
// when Stop closes their standard input, or when this process dies.
func StartProcesses(ctx context.Context, exe string, stderr io.Writer) (*App, error) {
	return startProcesses(ctx, exe, stderr, cgroupOptions{})
}

// startProcesses is StartProcesses with its cgroups made as o says.
func startProcesses(ctx context.Context, exe string, stderr io.Writer, o cgroupOptions) (*App, error) {
	a := &App{Env: newEnv()}
	a.cg, a.CgroupErr = newCgroups(o)
	c, ready, err := a.startChild(ctx, exe, DNS, nil, stderr)
	if err != nil {
		a.Stop()
		return nil, err
	}
	a.procs = append(a.procs, c)
	if len(ready) == 0 {
		a.Stop()
		return nil, errors.New("demo: dns said ready without its address")
	}
	a.Env.DNS = ready[0]
	for _, name := range Services {
		c, ready, err := a.startChild(ctx, exe, name, a.environ(), stderr)
		if err != nil {
			a.Stop()
			return nil, err
		}
		a.procs = append(a.procs, c)
		if len(ready) == 0 {
			a.Stop()
			return nil, fmt.Errorf("demo: %s said ready without its address", name)
		}
		_, port, _ := net.SplitHostPort(ready[0])
		a.Env.Peers[name] = net.JoinHostPort(name+"."+Domain, port)
		if len(ready) > 1 {
			cert, err := parseCert(ready[1])
			if err != nil {
				a.Stop()
				return nil, fmt.Errorf("demo: %s said ready with a bad certificate: %w", name, err)
			}
			a.Env.Certs[name] = cert
		}
	}
	a.Target = "http://" + a.Env.Peers[Frontend]
	return a, nil
}

// environ returns the variables that tell a child where the others are.
func (a *App) environ() []string {
	env := []string{envDNS + "=" + a.Env.DNS}
	for name, addr := range a.Env.Peers {
		env = append(env, envPeer+strings.ToUpper(name)+"="+addr)
	}
	for name, cert := range a.Env.Certs {
		env = append(env, envCert+strings.ToUpper(name)+"="+base64.StdEncoding.EncodeToString(cert.Raw))
	}
	return env
}

// parseCert reads a certificate as environ and RunChild write it: the
// base64 of its DER.
func parseCert(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// startChild starts `exe demo-app name` and waits for its "ready" line,
// whose fields it returns: a server's address, then, for one that serves
// TLS, its certificate (base64 of the DER).
func (a *App) startChild(ctx context.Context, exe, name string, env []string, stderr io.Writer) (*child, []string, error) {
	newChild := func() (*child, error) {
		cmd := &exec.Cmd{
			Path:        exe,
			Args:        []string{"pxq", "demo-app", name},
			Env:         append(os.Environ(), env...),
			Stderr:      stderr,
			SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		return &child{name: name, cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}, nil
	}
	c, err := a.startIn(name, newChild)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: starting %s: %w", name, err)
	}
	line, err := readLine(ctx, c.out, 10*time.Second)
	if err != nil {
		c.stop()
		return nil, nil, fmt.Errorf("demo: %s did not start: %w", name, err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "ready" {
		c.stop()
		return nil, nil, fmt.Errorf("demo: %s said %q instead of ready", name, line)
	}
	return c, f[1:], nil
}

// startIn starts the child newChild makes in its cgroup: inside it from
// the start (clone3's CLONE_INTO_CGROUP), else, on kernels before 5.7,
// moved into it right after it starts, before pxq first looks its
// process up. Without cgroups, or once one could not be made or entered,
// the child runs in this process's cgroup and CgroupErr says why.
func (a *App) startIn(name string, newChild func() (*child, error)) (*child, error) {
	c, err := newChild()
	if err != nil {
		return nil, err
	}
	if a.cg == nil || a.CgroupErr != nil {
		return c, c.cmd.Start()
	}
	dir, err := a.cg.unit(name)
	if err != nil {
		a.noCgroups(err)
		return c, c.cmd.Start()
	}
	fd, err := a.cg.openUnit(dir)
	if err != nil {
		a.noCgroups(err)
		return c, c.cmd.Start()
	}
	if fd >= 0 {
		defer unix.Close(fd)
		c.cmd.SysProcAttr.UseCgroupFD, c.cmd.SysProcAttr.CgroupFD = true, fd
		if err := c.cmd.Start(); err == nil {
			return c, nil
		}
		// The kernel cannot start a process in a cgroup: from now on,
		// move them.
		a.cg.noClone = true
		if c, err = newChild(); err != nil {
			return nil, err
		}
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	if err := a.cg.move(dir, c.cmd.Process.Pid); err != nil {
		a.noCgroups(err)
	}
	return c, nil
}

// noCgroups stops using cgroups after the first failure, keeping its
// reason. Those made are still removed by Stop.
func (a *App) noCgroups(err error) {
	if a.CgroupErr == nil {
		a.CgroupErr = err
	}
}

// readLine reads one line from r within d.
func readLine(ctx context.Context, r *bufio.Reader, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case x := <-ch:
		if x.err != nil && x.s == "" {
			return "", x.err
		}
		return x.s, nil
	case <-time.After(d):
		return "", fmt.Errorf("no answer in %s", d)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// Stop stops every service, waits for them and removes their cgroups.
// The error is about the cgroups only: they could not all be removed.
func (a *App) Stop() error {
	for i := len(a.procs) - 1; i >= 0; i-- {
		a.procs[i].stop()
	}
	a.procs = nil
	if a.cancel != nil {
		a.cancel()
		a.wg.Wait()
	}
	if a.cg == nil {
		return nil
	}
	err := a.cg.remove()
	a.cg = nil
	if err != nil {
		return fmt.Errorf("demo: removing its cgroups: %w", err)
	}
	return nil
}

// Loadgen is a load generator child process, started and waiting for Go.
type Loadgen struct {
	c *child
}

// StartLoadgen starts `exe demo-app loadgen` aimed at the app's frontend.
// It waits for Go, so that a tracer can be set up for its pid first.
func (a *App) StartLoadgen(ctx context.Context, exe string, o LoadOptions, stderr io.Writer) (*Loadgen, error) {
	o = o.withDefaults()
	env := append(a.environ(),
		envRate+"="+strconv.Itoa(o.Rate),
		envDuration+"="+o.Duration.String(),
		envSeed+"="+strconv.FormatUint(o.Seed, 10))
	c, _, err := a.startChild(ctx, exe, LoadGen, env, stderr)
	if err != nil {
		return nil, err
	}
	a.procs = append(a.procs, c) // Stop ends it
	return &Loadgen{c: c}, nil
}

// PID returns the load generator's process id.
func (l *Loadgen) PID() uint32 { return uint32(l.c.cmd.Process.Pid) }

// Go lets the load generator send its traffic and waits for its report.
// The process stays until the app stops.
func (l *Loadgen) Go(ctx context.Context, timeout time.Duration) (Report, error) {
	if _, err := io.WriteString(l.c.stdin, "go\n"); err != nil {
		return Report{}, fmt.Errorf("demo loadgen: %w", err)
	}
	line, err := readLine(ctx, l.c.out, timeout)
	if err != nil {
		return Report{}, fmt.Errorf("demo loadgen: %w", err)
	}
	var rep Report
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		return Report{}, fmt.Errorf("demo loadgen: bad report %q: %w", line, err)
	}
	return rep, nil
}

// RunChild is the body of `pxq demo-app NAME`: it runs one part of the
// demo with the wiring of the PXQ_DEMO_* variables, says "ready" on
// stdout, and stops when stdin closes (a server) or after its traffic
// (the load generator, which first waits for a "go" line).
func RunChild(ctx context.Context, name string, stdin io.Reader, stdout io.Writer) error {
	env := newEnv()
	env.DNS = os.Getenv(envDNS)
	for _, s := range Services {
		if v := os.Getenv(envPeer + strings.ToUpper(s)); v != "" {
			env.Peers[s] = v
		}
		if v := os.Getenv(envCert + strings.ToUpper(s)); v != "" {
			cert, err := parseCert(v)
			if err != nil {
				return fmt.Errorf("demo %s: %s%s: %w", name, envCert, strings.ToUpper(s), err)
			}
			env.Certs[s] = cert
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := bufio.NewReader(stdin)
	switch name {
	case LoadGen:
		o := LoadOptions{Env: env, Target: "http://" + env.Peers[Frontend]}
		o.Rate, _ = strconv.Atoi(os.Getenv(envRate))
		o.Duration, _ = time.ParseDuration(os.Getenv(envDuration))
		o.Seed, _ = strconv.ParseUint(os.Getenv(envSeed), 10, 64)
		if env.Peers[Frontend] == "" {
			return errors.New("demo loadgen: " + envPeer + "FRONTEND is not set")
		}
		fmt.Fprintln(stdout, "ready")
		if l, err := in.ReadString('\n'); err != nil || strings.TrimSpace(l) != "go" {
			return nil // the parent gave up
		}
		rep, err := Drive(ctx, o)
		if err != nil {
			return err
		}
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
		// Stay until the parent is done, so that it can still read
		// this process's command line.
		io.Copy(io.Discard, in)
		return nil
	case DNS:
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo dns: %w", err)
		}
		fmt.Fprintln(stdout, "ready", pc.LocalAddr())
		go stopOnEOF(in, cancel)
		return ServeDNS(ctx, pc)
	default:
		if err := env.check(name); err != nil {
			return err
		}
		ln, cert, err := Listen(name)
		if err != nil {
			return err
		}
		if cert != nil {
			fmt.Fprintln(stdout, "ready", ln.Addr(), base64.StdEncoding.EncodeToString(cert.Raw))
		} else {
			fmt.Fprintln(stdout, "ready", ln.Addr())
		}
		go stopOnEOF(in, cancel)
		return Serve(ctx, name, ln, env)
	}
}

func stopOnEOF(r io.Reader, stop func()) {
	io.Copy(io.Discard, r)
	stop()
}
