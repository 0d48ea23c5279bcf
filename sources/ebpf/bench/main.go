// Command bench measures what the socket tracer costs: a Go HTTP server and
// a bounded keep-alive load generator run in a child process on loopback,
// at full speed, in alternating rounds with the tracer off and on (tracing
// only the child). It prints medians as a Markdown table.
//
//	go run ./sources/ebpf/bench -rounds 8 -round 3s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/table"
)

var (
	rounds   = flag.Int("rounds", 8, "rounds per mode (off and on alternate)")
	roundDur = flag.Duration("round", 3*time.Second, "length of a round")
	conns    = flag.Int("conns", 8, "keep-alive client connections")
	respSize = flag.Int("resp", 512, "response body bytes")
	child    = flag.Bool("child", false, "internal: run server and load")
	cpuProf  = flag.String("cpuprofile", "", "write the tracer process's CPU profile here")
	rate     = flag.Int("rate", 0, "requests per second in all (0: as fast as possible); at a fixed rate the report compares CPU per request")
)

type result struct {
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	// CPU is the child's own CPU time (user+sys) during the round:
	// server and load generator, including in-kernel BPF time charged
	// to it.
	CPU float64 `json:"cpu"`
}

func main() {
	flag.Parse()
	if *cpuProf != "" && !*child {
		f, err := os.Create(*cpuProf)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *child {
		runChild()
		return
	}
	var off, on []float64
	var ratio, cpu, rss, captured []float64
	var cpuReqOff, cpuReqOn, tracerReq []float64
	var lost, sent, rows uint64
	for i := 0; i < 2**rounds; i++ {
		traced := i%2 == 1
		r, m := round(traced)
		rps := float64(r.Requests) / r.Seconds
		perReq := r.CPU / float64(r.Requests) * 1e6 // µs of the traced program's CPU per request
		if !traced {
			off = append(off, rps)
			cpuReqOff = append(cpuReqOff, perReq)
			continue
		}
		cpuReqOn = append(cpuReqOn, perReq)
		tracerReq = append(tracerReq, m.cpu*r.Seconds/float64(r.Requests)*1e6)
		on = append(on, rps)
		cpu = append(cpu, m.cpu)
		rss = append(rss, m.rssMiB)
		captured = append(captured, float64(m.rows)/2/float64(r.Requests))
		lost += m.lost
		sent += uint64(r.Requests)
		rows += m.rows
		if len(off) > 0 {
			ratio = append(ratio, rps/off[len(off)-1])
		}
		log.Printf("round %d: off %.0f req/s, on %.0f req/s, tracer CPU %.2f cores, rows %d for %d requests, lost %d",
			len(on), off[len(off)-1], rps, m.cpu, m.rows, r.Requests, m.lost)
	}
	fmt.Printf("| measure | median of %d rounds |\n|---|---|\n", *rounds)
	fmt.Printf("| req/s, tracer off | %.0f |\n", median(off))
	fmt.Printf("| req/s, tracer on | %.0f |\n", median(on))
	fmt.Printf("| throughput on/off (paired rounds) | %.3f |\n", median(ratio))
	fmt.Printf("| requests captured (rows/2 ÷ requests sent) | %.4f |\n", median(captured))
	fmt.Printf("| lost events, all rounds | %d |\n", lost)
	fmt.Printf("| tracer CPU (cores, user+sys) | %.2f |\n", median(cpu))
	fmt.Printf("| tracer RSS at end of round (MiB) | %.0f |\n", median(rss))
	if *rate > 0 {
		off, on, trc := median(cpuReqOff), median(cpuReqOn), median(tracerReq)
		fmt.Printf("| traced program CPU per request, tracer off (µs) | %.1f |\n", off)
		fmt.Printf("| traced program CPU per request, tracer on (µs) | %.1f |\n", on)
		fmt.Printf("| in-process overhead (on/off − 1) | %.1f %% |\n", (on/off-1)*100)
		fmt.Printf("| tracer CPU per request (µs) | %.1f |\n", trc)
		fmt.Printf("| total CPU overhead ((on + tracer)/off − 1) | %.1f %% |\n", ((on+trc)/off-1)*100)
	}
	fmt.Printf("\nrequests sent while traced: %d, http_events rows: %d (client and server side each)\n", sent, rows)
}

type metrics struct {
	cpu    float64
	rssMiB float64
	rows   uint64
	lost   uint64
}

// round runs one child; with traced, a tracer in this process traces it.
func round(traced bool) (result, metrics) {
	cmd := exec.Command(os.Args[0], "-child", "-round", roundDur.String(),
		"-conns", strconv.Itoa(*conns), "-resp", strconv.Itoa(*respSize), "-rate", strconv.Itoa(*rate))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	var tr *ebpf.Tracer
	var store *table.Store
	if traced {
		store = table.NewStore(0)
		var err error
		tr, err = ebpf.New(ebpf.Config{OnlyPIDs: []uint32{uint32(cmd.Process.Pid)}, MaxBodyBytes: 1024}, store)
		if err != nil {
			log.Fatal(err)
		}
		tr.Start(context.Background())
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	io.WriteString(in, "go\n")
	var r result
	if err := json.NewDecoder(bufio.NewReader(out)).Decode(&r); err != nil {
		log.Fatal(err)
	}
	cmd.Wait()
	var m metrics
	if traced {
		time.Sleep(200 * time.Millisecond) // let the last events be read
		var ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		wall := time.Since(t0).Seconds()
		m.cpu = (tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)) / wall
		m.rssMiB = rssMiB()
		s := tr.Stats()
		m.lost = s.LostEvents
		tr.Close()
		if t := store.Table("http_events"); t != nil {
			m.rows = uint64(t.Stats().Rows)
		}
	}
	return r, m
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

// runChild serves and loads itself for one round after "go" on stdin, and
// prints the result as JSON.
func runChild() {
	body := strings.Repeat("x", *respSize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/bench?q=1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, DisableCompression: true}}
	bufio.NewReader(os.Stdin).ReadString('\n')

	var n atomic.Int64
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	stop := time.Now().Add(*roundDur)
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
				resp, err := client.Get(url)
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
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	json.NewEncoder(os.Stdout).Encode(result{Requests: n.Load(), Seconds: time.Since(t0).Seconds(), CPU: cpu})
}
