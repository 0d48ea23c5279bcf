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
	pkg := map[string]string{"nginx": "nginx-light", "wrk": "wrk"}
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
// a file of -resp bytes at every path from a temporary directory.
type nginx struct {
	cmd  *exec.Cmd
	dir  string
	addr string
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
	port := freePort()
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
		listen 127.0.0.1:%[2]d;
		root %[1]s;
		location / { try_files /index.html =404; }
		location = /status { stub_status; }
	}
}
`, dir, port)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		log.Fatal(err)
	}
	n := &nginx{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	// Started through this program so that it can be pinned first.
	n.cmd = exec.Command(os.Args[0], "-child", "exec", "-cpu", cpu, "--", "nginx", "-p", dir, "-c", confPath)
	n.cmd.Stderr = os.Stderr
	start, _ := n.cmd.StdinPipe()
	if err := n.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	start.Write([]byte("go\n"))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", n.addr)
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
	resp, err := http.Get("http://" + n.addr + "/status")
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

// wrkRound runs wrk for d against url, with -conns keep-alive
// connections on one thread, started through the exec child so that
// trace (when not nil) can add its pid before it connects.
func wrkRound(url string, d time.Duration, cpu string, trace func(pid int)) result {
	needPrograms("wrk")
	cmd := exec.Command(os.Args[0], "-child", "exec", "-cpu", cpu, "--", "wrk", "-t1",
		"-c"+strconv.Itoa(*conns), "-d"+strconv.Itoa(int(d.Seconds()+0.5))+"s", url)
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
		log.Fatalf("wrk: %v: %s", err, b)
	}
	m := wrkRequests.FindSubmatch(b)
	if m == nil {
		log.Fatalf("wrk output: %s", b)
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
