package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The external mode: programs nobody here wrote, nginx (Debian
// nginx-light) as the server and wrk as the load generator, as a new
// user would try the tracer.

// needPrograms installs the Debian packages of the programs the mode
// uses when they are absent.
func needPrograms(progs ...string) {
	pkg := map[string]string{"nginx": "nginx-light", "wrk": "wrk", "h2load": "nghttp2-client", "openssl": "openssl"}
	var missing []string
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, pkg[p])
		}
	}
	if len(missing) == 0 {
		return
	}
	log.Printf("installing %v", missing)
	cmd := exec.Command("apt-get", append([]string{"install", "-y"}, missing...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		log.Fatalf("apt-get install %v: %v", missing, err)
	}
}

// nginx is an nginx in the foreground, one process (no master), serving
// a file of -resp bytes at every path from a temporary directory: over
// HTTPS with -tls (a self-signed certificate made here), over HTTP/2 for
// h2load (h2 by ALPN with -tls, h2c with prior knowledge without), and
// its stub_status on a plain HTTP/1.1 port of its own (statusAddr), so
// that asking for its count costs the measured server no TLS.
type nginx struct {
	cmd        *exec.Cmd
	dir        string
	addr       string
	statusAddr string
}

// selfSigned writes a key and a self-signed certificate for localhost
// into dir.
func selfSigned(dir string) (cert, key string) {
	needPrograms("openssl")
	cert, key = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
		"-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		log.Fatalf("openssl req: %v: %s", err, out)
	}
	return cert, key
}

func startNginx(cpu string) *nginx {
	needPrograms("nginx")
	dir, err := os.MkdirTemp("", "pxq-bench-nginx")
	if err != nil {
		log.Fatal(err)
	}
	body := strings.Repeat("x", *respSize)
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		log.Fatal(err)
	}
	port, statusPort := freePort(), freePort()
	listen := ""
	if *useTLS {
		cert, key := selfSigned(dir)
		listen = fmt.Sprintf(" ssl;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s", cert, key)
	}
	if *client == "h2load" {
		// nginx 1.22 (Debian 12) takes http2 on the listen line; without
		// ssl it is h2c with prior knowledge, which is what h2load speaks
		// to an http:// URL.
		if listen == "" {
			listen = " http2"
		} else {
			listen = " http2" + listen
		}
		// (keepalive_requests bounds the streams of an HTTP/2
		// connection too.)
	}
	// sendfile off: a file sent with sendfile(2) passes no user buffer,
	// so the tracer sees its response heads but not its bodies.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile off;
	keepalive_requests 100000000;
	keepalive_timeout 60s;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d%[4]s;
		root %[1]s;
		location / { try_files /index.html =404; }
	}
	server {
		listen 127.0.0.1:%[3]d;
		location = /status { stub_status; }
	}
}
`, dir, port, statusPort, listen)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		log.Fatal(err)
	}
	n := &nginx{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), statusAddr: fmt.Sprintf("127.0.0.1:%d", statusPort)}
	// Started through this program so that it can be pinned first.
	n.cmd = exec.Command(os.Args[0], "-child", "exec", "-cpu", cpu, "--", "nginx", "-p", dir, "-c", confPath)
	n.cmd.Stderr = os.Stderr
	start, _ := n.cmd.StdinPipe()
	if err := n.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	start.Write([]byte("go\n"))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", n.statusAddr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			log.Fatalf("nginx does not listen on %s: %v", n.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// requests returns nginx's count of requests served, from stub_status
// (the status request itself included).
func (n *nginx) requests() int64 {
	resp, err := http.Get("http://" + n.statusAddr + "/status")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// "Active connections: 1 \nserver accepts handled requests\n 1 1 1 \n..."
	lines := strings.Split(string(b), "\n")
	if len(lines) < 3 {
		log.Fatalf("stub_status: %q", b)
	}
	f := strings.Fields(lines[2])
	v, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		log.Fatalf("stub_status: %q", b)
	}
	return v
}

func (n *nginx) close() {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	n.cmd.Wait()
	os.RemoveAll(n.dir)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runExec is the "exec" child: it pins itself, waits for a line on stdin
// (the bench has added its pid to the traced ones by then), and becomes
// the program named by its arguments, keeping its pid.
func runExec(args []string) {
	bufio.NewReader(os.Stdin).ReadString('\n')
	path, err := exec.LookPath(args[0])
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(syscall.Exec(path, args, os.Environ()))
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(ms|s|m)`)

// wrkDelay is a wrk script that waits between a connection's requests, so
// that -conns connections make about -rate requests per second (wrk has
// no rate of its own; the wait is whole milliseconds and starts when a
// response ends, so the rate reached is a little under -rate).
const wrkDelay = "function delay() return %d end\n"

// wrkRound runs wrk for d against url, with -conns keep-alive
// connections on one thread, started through the exec child so that
// trace (when not nil) can add its pid before it connects.
func wrkRound(url string, d time.Duration, cpu string, trace func(pid int)) result {
	needPrograms("wrk")
	args := []string{"-child", "exec", "-cpu", cpu, "--", "wrk", "-t1",
		"-c" + strconv.Itoa(*conns), "-d" + strconv.Itoa(int(d.Seconds()+0.5)) + "s"}
	if *rate > 0 {
		ms := (*conns*1000 + *rate/2) / *rate
		if ms < 1 {
			log.Fatalf("-rate %d with %d connections is under 1 ms between a connection's requests: raise -conns", *rate, *conns)
		}
		f, err := os.CreateTemp("", "pxq-bench-wrk-*.lua")
		if err != nil {
			log.Fatal(err)
		}
		defer os.Remove(f.Name())
		fmt.Fprintf(f, wrkDelay, ms)
		f.Close()
		args = append(args, "-s", f.Name())
	}
	cmd := exec.Command(os.Args[0], append(args, url)...)
	out := runCounted(cmd, trace)
	m := wrkRequests.FindSubmatch(out)
	if m == nil {
		log.Fatalf("wrk output: %s", out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	secs, _ := strconv.ParseFloat(string(m[2]), 64)
	if string(m[3]) == "ms" {
		secs /= 1000
	} else if string(m[3]) == "m" {
		secs *= 60
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{Requests: n, Seconds: secs, CPU: tv(ru.Utime) + tv(ru.Stime)}
}

// runCounted starts cmd (an exec child), lets trace add its pid, lets it
// run, and returns its output.
func runCounted(cmd *exec.Cmd, trace func(pid int)) []byte {
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	if trace != nil {
		trace(cmd.Process.Pid)
	}
	in.Write([]byte("go\n"))
	b, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		log.Fatalf("%s: %v: %s", cmd.Args[5], err, b)
	}
	return b
}

var (
	h2loadDone = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done`)
	h2loadTime = regexp.MustCompile(`finished in ([0-9.]+)(ms|s),`)
)

// h2loadRound runs h2load (nghttp2) for d against url: -conns HTTP/2
// connections on one thread, -streams concurrent streams each, h2 by
// ALPN for an https:// URL and h2c with prior knowledge for http://.
func h2loadRound(url string, d time.Duration, cpu string, trace func(pid int)) result {
	needPrograms("h2load")
	cmd := exec.Command(os.Args[0], "-child", "exec", "-cpu", cpu, "--", "h2load", "-t1",
		"-c"+strconv.Itoa(*conns), "-m"+strconv.Itoa(*streams), "-D"+strconv.Itoa(int(d.Seconds()+0.5)), url)
	out := runCounted(cmd, trace)
	done, secs := h2loadDone.FindSubmatch(out), h2loadTime.FindSubmatch(out)
	if done == nil || secs == nil {
		log.Fatalf("h2load output: %s", out)
	}
	n, _ := strconv.ParseInt(string(done[1]), 10, 64)
	t, _ := strconv.ParseFloat(string(secs[1]), 64)
	if string(secs[2]) == "ms" {
		t /= 1000
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{Requests: n, Seconds: t, CPU: tv(ru.Utime) + tv(ru.Stime)}
}

// privateLibssl copies the host's libssl.so.3 into a directory of its own
// and points the children's dynamic loader at it (LD_LIBRARY_PATH), and
// returns the copy. A uprobe belongs to a file, so another tracer's
// probes on the host's libssl (a test, an agent: this machine is shared)
// would trap in this run's nginx and wrk too, and an "off" round would
// not be untraced; the copy is a file only this run's tracer probes.
func privateLibssl() string {
	var src string
	for _, pat := range []string{"/usr/lib/*/libssl.so.3", "/lib/*/libssl.so.3", "/usr/lib/libssl.so.3"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			src = m[0]
			break
		}
	}
	if src == "" {
		log.Fatal("no libssl.so.3 to copy")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pxq-bench-lib")
	if err != nil {
		log.Fatal(err)
	}
	dst := filepath.Join(dir, "libssl.so.3")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		log.Fatal(err)
	}
	os.Setenv("LD_LIBRARY_PATH", dir)
	return dst
}

// foreignHolders returns the other processes that hold file open, as a
// pxq tracer does for the files it probes: with the private copy, none
// but this run's children should map it, and none hold it open.
func foreignHolders(file string) []string {
	self := os.Getpid()
	procs, _ := os.ReadDir("/proc")
	var who []string
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && target == file {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				who = append(who, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(string(comm))))
				break
			}
		}
	}
	return who
}
