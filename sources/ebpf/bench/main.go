// Command bench measures what the socket tracer costs: a Go HTTP server
// and a bounded keep-alive load generator, each in its own child process,
// talk over loopback in alternating rounds with the tracer off and on. The
// tracer (in this process) traces the server, or with -trace both the load
// generator too, as on a node where both ends run. It prints medians as a
// Markdown table.
//
//	go run ./sources/ebpf/bench -rounds 8 -round 3s
//
// With -server nginx the server is nginx (Debian nginx-light) serving a
// file of -resp bytes, and with -client wrk the load generator is wrk (at
// saturation, or near -rate through a script; the Go load generator runs
// exact fixed rates against either server); both are installed when
// absent:
//
//	go run ./sources/ebpf/bench -server nginx -client wrk -trace both
//	go run ./sources/ebpf/bench -server nginx -trace both -resp 131072 -rate 6000
//
// With -tls nginx serves HTTPS (a self-signed certificate made for the
// run) and the plaintext is captured by the OpenSSL uprobes: wrk (which
// links libssl) over HTTP/1.1 keep-alive, at saturation or, with -rate,
// at about a fixed rate (a wrk script waits between a connection's
// requests), or h2load (nghttp2, libssl too) over HTTP/2 (h2 by ALPN; h2c
// without -tls). -server grpc is this program's gRPC server (the health
// service) with its own gRPC client, over h2c:
//
//	go run ./sources/ebpf/bench -server nginx -client wrk -tls -trace both
//	go run ./sources/ebpf/bench -server nginx -client wrk -tls -trace both -conns 20 -rate 10000
//	go run ./sources/ebpf/bench -server nginx -client h2load -tls -trace both
//	go run ./sources/ebpf/bench -server grpc -trace both
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	rtrace "runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/table"
)

var (
	rounds   = flag.Int("rounds", 8, "rounds per mode (off and on alternate)")
	roundDur = flag.Duration("round", 3*time.Second, "length of a round")
	conns    = flag.Int("conns", 8, "keep-alive client connections")
	respSize = flag.Int("resp", 512, "response body bytes")
	child    = flag.String("child", "", "internal: run as the server or load child")
	url      = flag.String("url", "", "internal: the load child's target")
	cpuProf  = flag.String("cpuprofile", "", "write the tracer process's CPU profile here")
	goTrace  = flag.String("gotrace", "", "write the tracer process's Go execution trace here (go tool trace)")
	rate     = flag.Int("rate", 0, "requests per second in all (0: as fast as possible)")
	traceArg = flag.String("trace", "server", "what the tracer traces: server, or both (server and load generator)")
	pin      = flag.Bool("pin", false, "run the server and load generator on CPU 0 and the tracer on CPU 1, so that the tracer's CPU does not come out of theirs")
	cpu      = flag.Int("cpu", -1, "internal: the child's CPU")
	ringSize = flag.Int("ring", 0, "ring buffer bytes (0: the tracer's default)")
	storeMiB = flag.Int("store", 32, "bound the table store to this many MiB, so that old batches are dropped and their memory reused as in a long-running agent (0: no bound, every row is kept)")
	work     = flag.Duration("work", 0, "CPU the server's handler spends per request (hashing), as a service that does some work would; 0: none, the cheapest possible server")
	warmup   = flag.Duration("warmup", 10*time.Second, "a first traced round, not counted, that brings the tracer to its steady state")
	bpfStats = flag.Bool("bpfstats", true, "count BPF program run time (costs two clock reads per program run)")
	server   = flag.String("server", "go", "the server: go (this program's), nginx, or grpc (this program's gRPC server and client, h2c)")
	client   = flag.String("client", "go", "the load generator: go (this program's, keep-alive, -rate), wrk (HTTP/1.1, -rate through a script) or h2load (HTTP/2, saturation only)")
	useTLS   = flag.Bool("tls", false, "nginx serves HTTPS, and wrk or h2load speak it (OpenSSL on both sides)")
	streams  = flag.Int("streams", 1, "h2load: concurrent streams per connection")
	wholeArg = flag.Bool("wholebodies", false, "copy whole bodies (Config.CopyWholeBodies)")
	nice     = flag.Int("nice", 0, "the reader thread's nice value (Config.ReaderNice; 0: the default, 20: unchanged)")
)

// pinTo moves every thread of this process to one CPU; threads started
// later inherit it.
func pinTo(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			log.Fatalf("pin thread %d to CPU %d: %v", tid, cpu, err)
		}
	}
}

// result is what the load child reports.
type result struct {
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	CPU      float64 `json:"cpu"` // the load generator's CPU seconds (user+sys)
}

// measures is one round's figures.
type measures struct {
	rps        float64
	serverCPU  float64 // µs of the server's CPU per request (BPF time charged to it included)
	loadCPU    float64 // µs of the load generator's CPU per request
	tracerCPU  float64 // µs of the tracer's CPU per request
	tracerRow  float64 // µs of the tracer's CPU per row written (lost events are not parsed)
	tracerCore float64 // cores
	bpfNS      float64 // ns of BPF program run time per request
	bpfRuns    float64 // BPF program runs per request
	rssMiB     float64
	faults     float64 // the tracer's minor page faults per request
	rows       uint64
	requests   uint64
	lost       uint64
}

func main() {
	flag.Parse()
	if *cpu >= 0 {
		pinTo(*cpu)
	}
	switch *child {
	case "server":
		runServer()
		return
	case "load":
		runLoad()
		return
	case "exec":
		runExec(flag.Args())
		return
	case "grpcserver":
		runGRPCServer()
		return
	case "grpcload":
		runLoadWith(grpcRound)
		return
	}
	if *server != "go" && *server != "nginx" && *server != "grpc" {
		log.Fatalf("-server is go, nginx or grpc, not %q", *server)
	}
	if *client != "go" && *client != "wrk" && *client != "h2load" {
		log.Fatalf("-client is go, wrk or h2load, not %q", *client)
	}
	if *client == "h2load" && *rate != 0 {
		log.Fatal("h2load has no fixed rate: use -client wrk with -rate")
	}
	if *server == "grpc" && *client != "go" {
		log.Fatal("-server grpc has its own client: leave -client go")
	}
	if *useTLS && (*server != "nginx" || *client == "go") {
		// Go's crypto/tls has probes of its own (sources/ebpf/tls's Go
		// side); this mode measures OpenSSL's.
		log.Fatal("-tls is nginx with wrk or h2load")
	}
	if *traceArg != "server" && *traceArg != "both" {
		log.Fatalf("-trace is server or both, not %q", *traceArg)
	}
	if *pin {
		pinTo(1)
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *goTrace != "" {
		f, err := os.Create(*goTrace)
		if err != nil {
			log.Fatal(err)
		}
		rtrace.Start(f)
		defer rtrace.Stop()
	}
	if *bpfStats {
		if st, err := cebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
			defer st.Close()
		} else {
			log.Printf("BPF run time statistics unavailable: %v", err)
		}
	}
	sides := 1.0
	if *traceArg == "both" {
		sides = 2
	}
	b := startBench()
	defer b.close()
	if *warmup > 0 {
		m := b.round(true, *warmup)
		log.Printf("warm-up (not counted): %.0f req/s traced, tracer %.1f µs/request", m.rps, m.tracerCPU)
	}
	var off, on []measures
	var ratio []float64
	foreign := 0 // off rounds run while another process held libssl open
	for i := 0; i < 2**rounds; i++ {
		traced := i%2 == 1
		if *useTLS && !traced {
			if who := foreignHolders(b.libssl); len(who) > 0 {
				foreign++
				log.Printf("off round %d: %s is held open by %v, whose uprobes (if any) trap in this round too", len(off)+1, b.libssl, who)
			}
		}
		m := b.round(traced, *roundDur)
		if !traced {
			off = append(off, m)
			continue
		}
		on = append(on, m)
		ratio = append(ratio, m.rps/off[len(off)-1].rps)
		log.Printf("round %d: off %.0f req/s, on %.0f req/s, tracer %.2f cores, rows %d for %d requests, lost %d",
			len(on), off[len(off)-1].rps, m.rps, m.tracerCore, m.rows, m.requests, m.lost)
	}
	med := func(ms []measures, f func(measures) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		return median(v)
	}
	var sent, rows, lost uint64
	for _, m := range on {
		sent += m.requests
		rows += m.rows
		lost += m.lost
	}
	srvOff, srvOn := med(off, func(m measures) float64 { return m.serverCPU }), med(on, func(m measures) float64 { return m.serverCPU })
	ldOff, ldOn := med(off, func(m measures) float64 { return m.loadCPU }), med(on, func(m measures) float64 { return m.loadCPU })
	trc := med(on, func(m measures) float64 { return m.tracerCPU })
	where := "server, load generator and tracer share both CPUs"
	if *pin {
		where = "server and load generator on CPU 0, tracer on CPU 1"
	}
	fmt.Printf("server %s, client %s, %s, %d connections, %d-byte responses; tracing: %s; rate: %s; handler work %s per request; %s; %d rounds of %s each way; load average %s\n\n",
		*server, *client, protoName(), *conns, *respSize, *traceArg, rateName(), *work, where, *rounds, *roundDur, loadAvg())
	if *useTLS {
		fmt.Printf("libssl: a private copy (%s); off rounds while another process held it open: %d of %d\n\n", b.libssl, foreign, *rounds)
	}
	fmt.Printf("| measure | median |\n|---|---|\n")
	fmt.Printf("| req/s, tracer off | %.0f |\n", med(off, func(m measures) float64 { return m.rps }))
	fmt.Printf("| req/s, tracer on | %.0f |\n", med(on, func(m measures) float64 { return m.rps }))
	fmt.Printf("| throughput on/off (paired rounds) | %.3f |\n", median(ratio))
	fmt.Printf("| server CPU/request off → on (µs) | %.1f → %.1f (%+.1f %%) |\n", srvOff, srvOn, (srvOn/srvOff-1)*100)
	fmt.Printf("| load generator CPU/request off → on (µs) | %.1f → %.1f (%+.1f %%) |\n", ldOff, ldOn, (ldOn/ldOff-1)*100)
	if *bpfStats {
		fmt.Printf("| BPF programs per request (ns, with their run-time statistics on) | %.0f in %.1f runs |\n",
			med(on, func(m measures) float64 { return m.bpfNS }), med(on, func(m measures) float64 { return m.bpfRuns }))
	}
	fmt.Printf("| tracer CPU/request (µs) | %.1f |\n", trc)
	fmt.Printf("| tracer CPU/row written (µs) | %.2f |\n", med(on, func(m measures) float64 { return m.tracerRow }))
	fmt.Printf("| tracer CPU (cores) | %.3f |\n", med(on, func(m measures) float64 { return m.tracerCore }))
	fmt.Printf("| tracer page faults per request | %.3f |\n", med(on, func(m measures) float64 { return m.faults }))
	fmt.Printf("| total CPU/request off → on (µs) | %.1f → %.1f (%+.1f %%) |\n", srvOff+ldOff, srvOn+ldOn+trc, ((srvOn+ldOn+trc)/(srvOff+ldOff)-1)*100)
	fmt.Printf("| tracer RSS (MiB) | %.0f |\n", med(on, func(m measures) float64 { return m.rssMiB }))
	fmt.Printf("| requests captured | %d of %d (%.4f) |\n", uint64(float64(rows)/sides), sent, float64(rows)/sides/float64(sent))
	fmt.Printf("| lost events | %d |\n", lost)
}

// protoName says what the client and server speak.
func protoName() string {
	p := "HTTP/1.1"
	switch {
	case *server == "grpc":
		p = "gRPC over h2c"
	case *client == "h2load" && *useTLS:
		p = "HTTP/2 over TLS (h2)"
	case *client == "h2load":
		p = "HTTP/2 cleartext (h2c)"
	case *useTLS:
		p = "HTTP/1.1 over TLS"
	}
	if *client == "h2load" {
		p += fmt.Sprintf(", %d streams per connection", *streams)
	}
	return p
}

// loadAvg returns the 1-, 5- and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func rateName() string {
	if *rate == 0 {
		return "saturation"
	}
	return fmt.Sprintf("%d req/s", *rate)
}

// bench is the run's long-lived parts: the server and load children, and
// with them the tracer and its store, which live through every round as
// in a long-running agent (warm heap, store at its bound). Off rounds
// pause the tracer, which detaches its programs.
type bench struct {
	srv, load     *exec.Cmd // load is nil with wrk, which runs anew each round
	srvIn, loadIn io.WriteCloser
	loadOut       *json.Decoder
	nginx         *nginx
	url           string
	childCPU      string
	libssl        string // with -tls: the private copy of libssl nginx and the client load
	tr            *ebpf.Tracer
	store         *table.Store
	stopRetention chan struct{}
}

// srvPid is the server's process.
func (b *bench) srvPid() int {
	if b.nginx != nil {
		return b.nginx.cmd.Process.Pid
	}
	return b.srv.Process.Pid
}

func startBench() *bench {
	childCPU := "-1"
	if *pin {
		childCPU = "0"
	}
	b := &bench{childCPU: childCPU}
	if *useTLS {
		b.libssl = privateLibssl()
	}
	var addr string
	if *server == "nginx" {
		b.nginx = startNginx(childCPU)
		addr = b.nginx.addr
	} else {
		kind := "server"
		if *server == "grpc" {
			kind = "grpcserver"
		}
		b.srv = exec.Command(os.Args[0], "-child", kind, "-resp", strconv.Itoa(*respSize), "-work", work.String(), "-cpu", childCPU)
		b.srv.Stderr = os.Stderr
		b.srvIn, _ = b.srv.StdinPipe()
		srvOut, _ := b.srv.StdoutPipe()
		if err := b.srv.Start(); err != nil {
			log.Fatal(err)
		}
		a, err := bufio.NewReader(srvOut).ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		addr = strings.TrimSpace(a)
	}
	scheme := "http://"
	if *useTLS {
		scheme = "https://"
	}
	b.url = scheme + addr + "/bench?q=1"
	if *server == "grpc" {
		b.url = addr
	}
	pids := []uint32{uint32(b.srvPid())}
	if *client == "go" {
		kind := "load"
		if *server == "grpc" {
			kind = "grpcload"
		}
		b.load = exec.Command(os.Args[0], "-child", kind, "-url", b.url, "-resp", strconv.Itoa(*respSize),
			"-conns", strconv.Itoa(*conns), "-rate", strconv.Itoa(*rate), "-cpu", childCPU)
		b.load.Stderr = os.Stderr
		b.loadIn, _ = b.load.StdinPipe()
		loadOut, _ := b.load.StdoutPipe()
		b.loadOut = json.NewDecoder(bufio.NewReader(loadOut))
		if err := b.load.Start(); err != nil {
			log.Fatal(err)
		}
		if *traceArg == "both" {
			pids = append(pids, uint32(b.load.Process.Pid))
		}
	}
	var err error
	b.store = table.NewStore(int64(*storeMiB) << 20)
	b.stopRetention = make(chan struct{})
	if *storeMiB > 0 {
		go b.store.RunRetention(time.Second, b.stopRetention)
	}
	b.tr, err = ebpf.New(ebpf.Config{OnlyPIDs: pids, MaxBodyBytes: 1024, RingBufferBytes: uint32(*ringSize), CopyWholeBodies: *wholeArg, ReaderNice: *nice,
		// Both sides traced: a row for each, as -trace both promises.
		AllClientSides: *traceArg == "both"}, b.store)
	if err != nil {
		log.Fatal(err)
	}
	b.tr.Pause()
	b.tr.Start(context.Background())
	return b
}

func (b *bench) close() {
	b.tr.Close()
	close(b.stopRetention)
	if b.load != nil {
		b.loadIn.Close()
		b.load.Wait()
	}
	if b.nginx != nil {
		b.nginx.close()
	} else {
		b.srvIn.Close()
		b.srv.Wait()
	}
	if b.libssl != "" {
		os.RemoveAll(filepath.Dir(b.libssl))
	}
}

// runLoad runs one round of load for d and returns what the load
// generator reports.
func (b *bench) runLoad(d time.Duration, traced bool) result {
	if b.load == nil {
		var trace func(int)
		if traced && *traceArg == "both" {
			trace = func(pid int) {
				if err := b.tr.TracePID(uint32(pid)); err != nil {
					log.Fatal(err)
				}
			}
		}
		if *client == "h2load" {
			return h2loadRound(b.url, d, b.childCPU, trace)
		}
		return wrkRound(b.url, d, b.childCPU, trace)
	}
	fmt.Fprintf(b.loadIn, "%s\n", d)
	var r result
	if err := b.loadOut.Decode(&r); err != nil {
		log.Fatal(err)
	}
	return r
}

// round runs the load for d, with the tracer on (traced) or paused. The
// load generator opens its connections anew each round and closes them at
// its end, so that a traced round sees every connection whole.
func (b *bench) round(traced bool, d time.Duration) measures {
	var st0 ebpf.Stats
	var bpf0 time.Duration
	var runs0 uint64
	if traced {
		if err := b.tr.Resume(); err != nil {
			log.Fatal(err)
		}
		st0 = b.tr.Stats()
		bpf0, runs0 = b.tr.ProgramStats()
	}
	var served0 int64
	if b.nginx != nil {
		served0 = b.nginx.requests()
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	srvCPU0 := procCPU(b.srvPid())
	t0 := time.Now()
	r := b.runLoad(d, traced)
	// The server has seen every request once the client has its
	// responses; the connections' ends follow within moments.
	time.Sleep(50 * time.Millisecond)
	srvCPU := procCPU(b.srvPid()) - srvCPU0

	m := measures{
		rps:       float64(r.Requests) / r.Seconds,
		requests:  uint64(r.Requests),
		serverCPU: srvCPU / float64(r.Requests) * 1e6,
		loadCPU:   r.CPU / float64(r.Requests) * 1e6,
	}
	if traced {
		time.Sleep(200 * time.Millisecond) // let the last events be read
		var ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		wall := time.Since(t0).Seconds()
		cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
		m.tracerCore = cpu / wall
		m.tracerCPU = cpu / float64(r.Requests) * 1e6
		m.faults = float64(ru1.Minflt-ru0.Minflt) / float64(r.Requests)
		m.rssMiB = rssMiB()
		bpf1, runs1 := b.tr.ProgramStats()
		m.bpfNS = float64((bpf1 - bpf0).Nanoseconds()) / float64(r.Requests)
		m.bpfRuns = float64(runs1-runs0) / float64(r.Requests)
		b.tr.Pause()
		if b.nginx != nil {
			// What nginx served, which may differ from what wrk counts
			// by the requests in flight when it stopped; less the
			// status request that asks.
			m.requests = uint64(b.nginx.requests() - served0 - 1)
		}
		st := b.tr.Stats()
		m.lost = st.LostEvents - st0.LostEvents
		m.rows = st.Rows - st0.Rows
		if m.rows > 0 {
			m.tracerRow = cpu / float64(m.rows) * 1e6
		}
		sides := uint64(1)
		if *traceArg == "both" {
			sides = 2
		}
		if m.rows != sides*m.requests {
			// Say where the rows went: the tracer's counters, and rows
			// per connection and side.
			js, _ := json.Marshal(st)
			log.Printf("rows %d, want %d; tracer stats: %s", m.rows, sides*m.requests, js)
			if *storeMiB == 0 {
				perConn(b.store)
			}
		}
	}
	return m
}

// perConn logs the http_events rows per (role, local port, remote port).
func perConn(store *table.Store) {
	count := map[string]int{}
	for _, b := range store.Table("http_events").Snapshot(0, 0) {
		r := b.Record
		idx := func(name string) int { return r.Schema().FieldIndices(name)[0] }
		role := r.Column(idx("trace_role")).(*array.Int64)
		lp := r.Column(idx("local_port")).(*array.Int64)
		rp := r.Column(idx("remote_port")).(*array.Int64)
		for i := 0; i < int(r.NumRows()); i++ {
			port := lp.Value(i)
			if role.Value(i) == 2 { // server: key by the client's port
				port = rp.Value(i)
			}
			count[fmt.Sprintf("client port %d role %d", port, role.Value(i))]++
		}
	}
	log.Printf("rows per connection and role: %v", count)
}

// procCPU returns a process's CPU seconds (user+sys) from /proc/PID/stat.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// runServer serves on a loopback port, prints it, and exits when stdin
// closes.
func runServer() {
	body := strings.Repeat("x", *respSize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	rounds := workRounds(*work)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		burn(rounds)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
}

var burnBuf [1024]byte

// burn hashes 1 KiB n times: the handler's stand-in for real work.
func burn(n int) {
	for i := 0; i < n; i++ {
		sum := sha256.Sum256(burnBuf[:])
		burnBuf[0] ^= sum[0]
	}
}

// workRounds returns how many burn rounds take about d of CPU here.
func workRounds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	const n = 20000
	t0 := time.Now()
	burn(n)
	per := time.Since(t0) / n
	return max(1, int(d/per))
}

// runLoad runs a round for each duration read from stdin, on fresh
// connections closed at its end, and prints each round's result as JSON.
func runLoad() { runLoadWith(loadRound) }

func runLoadWith(loadRound func(time.Duration) result) {
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		d, err := time.ParseDuration(in.Text())
		if err != nil {
			log.Fatal(err)
		}
		out.Encode(loadRound(d))
	}
}

func loadRound(d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var n atomic.Int64
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick *time.Ticker
			if *rate > 0 {
				tick = time.NewTicker(time.Duration(float64(time.Second) * float64(*conns) / float64(*rate)))
				defer tick.Stop()
			}
			for time.Now().Before(stop) {
				if tick != nil {
					<-tick.C
				}
				resp, err := client.Get(*url)
				if err != nil {
					log.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	tr.CloseIdleConnections()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	return result{Requests: n.Load(), Seconds: secs, CPU: cpu}
}
