package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// TestTracedHops runs the demo's processes as pxq demo does, traces them
// with eBPF (both sides of each request, as pxq demo records them) while
// the load generator sends its mix, and checks the rows of checkout's
// two hops that are not plain HTTP/1.1 against the load generator's
// report: the charges to payments over HTTPS, decrypted (encrypted =
// true), and the Reserve calls to inventory over gRPC (HTTP/2 streams,
// grpc-status in the response headers).
func TestTracedHops(t *testing.T) {
	testenv.RequireRoot(t, "trace with eBPF, as pxq demo does")
	slice := fmt.Sprintf("pxqtest-demo-trace-%d.slice", os.Getpid())
	app := startTestProcesses(t, cgroupOptions{slice: slice})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lg, err := app.StartLoadgen(ctx, exe, LoadOptions{Rate: 50, Duration: 2 * time.Second, Seed: 3}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	// The processes run before the tracer starts, as in pxq demo, which
	// also waits for their crypto/tls to be probed (ebpftest.Tracer does).
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: app.PIDs(), AllClientSides: true})
	rep, err := lg.Go(ctx, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Failed != 0 || rep.Requests != 100 {
		t.Fatalf("want 100 requests answered: %s", rep)
	}
	reserves := 0
	for _, n := range rep.Reserves {
		reserves += n
	}
	if rep.Charges == 0 || rep.Reserves[codes.NotFound] == 0 || rep.Reserves[codes.ResourceExhausted] == 0 {
		t.Fatalf("the mix lacks charges or failed reserves: %s", rep)
	}
	payments, inventory := port(t, app.Env.Peers[Payments]), port(t, app.Env.Peers[Inventory])
	on := func(p int64) func(map[string]any) bool {
		return func(r map[string]any) bool { return r["local_port"] == p || r["remote_port"] == p }
	}
	// Each request is a row of its client (checkout) and one of its
	// server, and no other row is on these ports (no ciphertext parsed).
	https := ebpftest.WaitRows(t, store, "http_events", 2*rep.Charges, 10*time.Second, on(payments))
	grpcRows := ebpftest.WaitRows(t, store, "http_events", 2*reserves, 10*time.Second, on(inventory))
	time.Sleep(200 * time.Millisecond) // a row too many would come now
	https = ebpftest.WaitRows(t, store, "http_events", 0, 0, on(payments))
	grpcRows = ebpftest.WaitRows(t, store, "http_events", 0, 0, on(inventory))
	if len(https) != 2*rep.Charges {
		t.Errorf("%d rows on payments' port, want 2 × %d charges", len(https), rep.Charges)
	}
	if len(grpcRows) != 2*reserves {
		t.Errorf("%d rows on inventory's port, want 2 × %d Reserve calls", len(grpcRows), reserves)
	}

	// HTTPS: POST /charge, decrypted. Payments declines the declined
	// card (a 402 to the load generator) and fails every 11th charge with
	// a 503 (which checkout answers 502).
	statuses := map[int64]map[int64]int{} // trace role → status → rows
	for _, r := range https {
		ebpftest.Expect(t, r, map[string]any{"encrypted": true, "req_method": "POST", "req_path": "/charge", "major_version": int64(1)})
		role := r["trace_role"].(int64)
		if statuses[role] == nil {
			statuses[role] = map[int64]int{}
		}
		statuses[role][r["resp_status"].(int64)]++
	}
	want := map[int64]int{200: rep.Charges - rep.ByStatus[402] - rep.ByStatus[502], 402: rep.ByStatus[402], 503: rep.ByStatus[502]}
	for _, role := range []int64{1, 2} {
		for code, n := range want {
			if statuses[role][code] != n {
				t.Errorf("charges of trace role %d: statuses %v, want %v", role, statuses[role], want)
				break
			}
		}
	}

	// gRPC: one HTTP/2 stream per call, the status in grpc-status.
	calls := map[int64]map[codes.Code]int{}
	for _, r := range grpcRows {
		ebpftest.Expect(t, r, map[string]any{"encrypted": false, "req_method": "POST", "req_path": ReservePath,
			"major_version": int64(2), "content_type": int64(2), "resp_status": int64(200)})
		var h map[string]string
		if err := json.Unmarshal([]byte(r["resp_headers"].(string)), &h); err != nil {
			t.Fatalf("resp_headers %q: %v", r["resp_headers"], err)
		}
		code, err := strconv.Atoi(h["grpc-status"])
		if err != nil {
			t.Errorf("no grpc-status in %v", h)
			continue
		}
		if code != 0 && h["grpc-message"] == "" {
			t.Errorf("grpc-status %d without grpc-message: %v", code, h)
		}
		role := r["trace_role"].(int64)
		if calls[role] == nil {
			calls[role] = map[codes.Code]int{}
		}
		calls[role][codes.Code(code)]++
	}
	for _, role := range []int64{1, 2} {
		for code, n := range rep.Reserves {
			if calls[role][code] != n {
				t.Errorf("Reserve calls of trace role %d: %v, want %v", role, calls[role], rep.Reserves)
				break
			}
		}
	}
}

// port returns the port of host:port.
func port(t *testing.T, hostPort string) int64 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
