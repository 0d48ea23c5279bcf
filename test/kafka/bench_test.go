package kafkatest

// BenchmarkProduce: the tracer's cost to a Kafka producer at its maximum
// rate. Each round runs a child process (this test binary again) with
// kfake and a franz-go producer sending small records as fast as it can
// for a few seconds; rounds alternate with the tracer paused and
// tracing the child, so both see the same machine. A fresh child per
// round means fresh connections: the tracer never meets one mid-stream.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"golang.org/x/sys/unix"
)

const benchChildEnv = "PXQ_KAFKA_BENCH_CHILD"

// benchResult is what a child reports.
type benchResult struct {
	Port     int     // the broker's
	Messages int64   // records acknowledged
	Produces int64   // Produce requests the broker handled
	Seconds  float64 // the producing time
}

func TestMain(m *testing.M) {
	if d := os.Getenv(benchChildEnv); d != "" {
		produceChild(d)
		return
	}
	os.Exit(m.Run())
}

// produceChild waits for a line on stdin (the parent tracing its pid),
// then produces for the duration in arg ("3s", or "3s/single": one
// record in flight, so a Produce request per record) and prints a
// benchResult.
func produceChild(arg string) {
	d, mode, _ := strings.Cut(arg, "/")
	dur, err := time.ParseDuration(d)
	if err != nil {
		fail(err)
	}
	var produces atomic.Int64
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		fail(err)
	}
	defer c.Close()
	c.Control(func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r.Key() == 0 {
			produces.Add(1)
		}
		return nil, nil, false
	})
	addr := c.ListenAddrs()[0]
	bufio.NewReader(os.Stdin).ReadString('\n')
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.ClientID("bench-producer")}
	if mode == "single" {
		opts = append(opts, kgo.MaxBufferedRecords(1))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fail(err)
	}
	value := make([]byte, 100)
	var acked atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	start := time.Now()
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	cancel()
	secs := time.Since(start).Seconds()
	cl.Flush(context.Background())
	cl.Close()
	json.NewEncoder(os.Stdout).Encode(benchResult{Port: port(addr), Messages: acked.Load(), Produces: produces.Load(), Seconds: secs})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// runChild runs one round; trace, when not nil, is given the child's pid
// before it starts producing.
func runChild(b *testing.B, arg string, trace func(pid int)) benchResult {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchChildEnv+"="+arg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if trace != nil {
		trace(cmd.Process.Pid)
	}
	in.Write([]byte("go\n"))
	var res benchResult
	if err := json.NewDecoder(out).Decode(&res); err != nil {
		b.Fatalf("the child's result: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("child: %v", err)
	}
	return res
}

// BenchmarkProduce: "batched" is franz-go's default (as many records
// per request as its buffer holds), "single" one record per request.
func BenchmarkProduce(b *testing.B) {
	for _, mode := range []string{"batched", "single"} {
		b.Run(mode, func(b *testing.B) { benchProduce(b, mode) })
	}
}

func benchProduce(b *testing.B, mode string) {
	tr, store := ebpftest.Tracer(b, ebpf.Config{})
	// The kernel counts the programs' run time while this is open.
	if st, err := cebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
		defer st.Close()
	}
	arg := "3s/" + mode
	produceRows := func(p int) int {
		n := 0
		for _, r := range ebpftest.Rows(b, store, table_) {
			if r["req_cmd"] == int64(0) && r["local_port"] == int64(p) {
				n++
			}
		}
		return n
	}
	var ratios, cpuPerReq, bpfPerReq, captured []float64
	lost0 := tr.Stats().LostEvents
	for i := 0; i < 5; i++ {
		tr.Pause()
		off := runChild(b, arg, nil)
		if err := tr.Resume(); err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuNS()
		bpf0, _ := tr.ProgramStats()
		on := runChild(b, arg, func(pid int) {
			if err := tr.TracePID(uint32(pid)); err != nil {
				b.Fatal(err)
			}
		})
		time.Sleep(500 * time.Millisecond) // the last rows' flush
		cpu := cpuNS() - cpu0
		bpf1, _ := tr.ProgramStats()
		rows := produceRows(on.Port)
		offRate, onRate := float64(off.Messages)/off.Seconds, float64(on.Messages)/on.Seconds
		ratios = append(ratios, onRate/offRate)
		cpuPerReq = append(cpuPerReq, float64(cpu)/float64(on.Produces))
		bpfPerReq = append(bpfPerReq, float64(bpf1-bpf0)/float64(on.Produces))
		captured = append(captured, float64(rows)/float64(on.Produces))
		b.Logf("round %d: off %.0f msg/s (%d Produce), on %.0f msg/s (%d Produce, %d rows), tracer CPU %.0f ns/request, BPF %.0f ns/request",
			i, offRate, off.Produces, onRate, on.Produces, rows, float64(cpu)/float64(on.Produces), float64(bpf1-bpf0)/float64(on.Produces))
	}
	b.ReportMetric(median(ratios), "msgs_on/off")
	b.ReportMetric(median(cpuPerReq), "tracer_ns/req")
	b.ReportMetric(median(bpfPerReq), "bpf_ns/req")
	b.ReportMetric(median(captured), "captured/sent")
	b.ReportMetric(float64(tr.Stats().LostEvents-lost0), "lost_events")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// cpuNS is the CPU time (user and system) of this process: the tracer's,
// the producer and broker being in the child.
func cpuNS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
