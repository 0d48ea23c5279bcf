package tls_test

import (
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// BenchmarkTLSClientOverhead is what tracing costs an OpenSSL client: its
// CPU time (user + system, from its rusage) and wall time per run, in
// three modes interleaved round by round: no tracer attached ("off"), the
// socket tracer without the TLS uprobes ("socket": the ciphertext is
// copied and left unparsed), and with them ("tls": the plaintext is
// captured and parsed, the ciphertext only counted). Two clients: curl
// making 300 keep-alive requests on one connection, and sslclient
// (testdata) making 30 requests on a connection each, mostly handshakes.
// The server is Go's, in this process, which the tracers do not trace.
// The metrics are medians over the rounds of each round's ratio to "off".
//
//	go test -run XXX -bench TLSClientOverhead -benchtime 1x ./sources/ebpf/tls/
func BenchmarkTLSClientOverhead(b *testing.B) {
	testenv.RequireRoot(b, "load BPF programs")
	curl := need(b, "curl")
	url, port := httpsServer(b)
	static := sslClient(b, true)
	tracer := func(cfg ebpf.Config) (*ebpf.Tracer, *table.Store) {
		store := table.NewStore(256 << 20)
		tr, err := ebpf.New(cfg, store)
		if err != nil {
			testenv.SkipOrFailf(b, "cannot load the tracer here: %v", err)
		}
		tr.Start(b.Context())
		if err := tr.WaitTLSScan(b.Context()); err != nil {
			b.Fatal(err)
		}
		tr.Pause()
		b.Cleanup(func() { tr.Close() })
		return tr, store
	}
	socket, _ := tracer(ebpf.Config{DisableTLS: true})
	tls, store := tracer(ebpf.Config{})

	const rounds = 9
	clients := []struct {
		name     string
		requests int
		cmd      func() *exec.Cmd
	}{
		{"curl", 300, func() *exec.Cmd {
			return exec.Command(curl, "-k", "-s", "--http1.1", "-o", "/dev/null", url+"/hello?[1-300]")
		}},
		{"sslclient", 30, func() *exec.Cmd {
			return exec.Command(static, strconv.Itoa(port), "/hello", "30", "0")
		}},
	}
	modes := []string{"off", "socket", "tls"}
	for _, c := range clients {
		cpu := map[string][]float64{}
		wall := map[string][]float64{}
		var captured []int
		for r := 0; r < rounds; r++ {
			for _, mode := range modes {
				var on *ebpf.Tracer
				switch mode {
				case "socket":
					on = socket
				case "tls":
					on = tls
				}
				if on != nil {
					if err := on.Resume(); err != nil {
						b.Fatal(err)
					}
				}
				cmd := c.cmd()
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v: %s", c.name, err, out)
				}
				wall[mode] = append(wall[mode], time.Since(start).Seconds())
				ps := cmd.ProcessState
				cpu[mode] = append(cpu[mode], (ps.UserTime() + ps.SystemTime()).Seconds())
				if on != nil {
					on.Pause() // reads what the ring holds first
				}
				if on == tls {
					pid := uint32(cmd.Process.Pid)
					rows := ebpftest.WaitRows(b, store, "http_events", c.requests, 2*time.Second, func(r map[string]any) bool {
						return r["upid"].(types.UInt128Value).PID() == pid
					})
					captured = append(captured, len(rows))
				}
			}
		}
		for _, mode := range modes[1:] {
			b.ReportMetric(medianRatio(cpu[mode], cpu["off"]), c.name+"-cpu-"+mode+"/off")
			b.ReportMetric(medianRatio(wall[mode], wall["off"]), c.name+"-wall-"+mode+"/off")
		}
		b.ReportMetric(medianRatio(cpu["tls"], cpu["socket"]), c.name+"-cpu-tls/socket")
		b.Logf("%s, %d requests a run, medians of %d rounds: CPU off %.1f ms, socket %.1f ms, tls %.1f ms; wall off %.1f ms, socket %.1f ms, tls %.1f ms; rows captured per tls run %v",
			c.name, c.requests, rounds, 1e3*median(cpu["off"]), 1e3*median(cpu["socket"]), 1e3*median(cpu["tls"]),
			1e3*median(wall["off"]), 1e3*median(wall["socket"]), 1e3*median(wall["tls"]), captured)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// medianRatio is the median of the rounds' ratios a[i]/b[i].
func medianRatio(a, b []float64) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return median(r)
}
