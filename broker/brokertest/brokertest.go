// Package brokertest starts pxq agents on loopback sockets and fills
// their stores with generated rows, for tests and benchmarks of the
// broker and the public services.
package brokertest

import (
	"fmt"
	"math/rand"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/agent"
	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Agent is an agent service running in this process on a loopback port.
type Agent struct {
	Addr   string
	Engine *engine.Engine
	Server *grpc.Server
	lis    net.Listener
}

// StartAgent serves an agent of eng on 127.0.0.1 with the given server
// options; it stops when the test ends.
func StartAgent(t testing.TB, eng *engine.Engine, asid uint32, opts ...grpc.ServerOption) *Agent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	agentpb.RegisterAgentServiceServer(g, agent.New(agent.Config{Engine: eng, Hostname: fmt.Sprintf("node-%d", asid), ASID: asid}))
	go g.Serve(lis)
	a := &Agent{Addr: lis.Addr().String(), Engine: eng, Server: g, lis: lis}
	t.Cleanup(a.Stop)
	return a
}

// Stop stops the agent at once, breaking its streams.
func (a *Agent) Stop() { a.Server.Stop() }

// NewEngine returns an engine with the given metadata and an empty store
// of every source table.
func NewEngine(t testing.TB, meta metadata.Provider, asid uint32) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{Meta: meta, ASID: asid, Hostname: fmt.Sprintf("node-%d", asid)})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// Paths are the request paths of generated rows.
var Paths = []string{"/", "/api/cart", "/api/checkout", "/api/users", "/api/items", "/login", "/logout", "/static/app.js",
	"/static/app.css", "/healthz", "/metrics", "/api/orders", "/api/search", "/api/recommendations", "/favicon.ico", "/api/payments"}

var statuses = []int64{200, 200, 200, 200, 201, 204, 301, 404, 500, 503}
var methods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}

// FillHTTPEvents appends n generated http_events rows to the stores of
// every engine in engs, from the generator seeded with seed: rows of
// processes of agent asid, with times in the 5 minutes before now.
func FillHTTPEvents(t testing.TB, engs []*engine.Engine, asid uint32, seed int64, n int, now time.Time) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var ws []*table.Writer
	for _, e := range engs {
		w := table.NewWriter(e.Store().Table("http_events"))
		w.MaxRows = 32768
		ws = append(ws, w)
	}
	rel := tables.All["http_events"].Relation
	row := make([]any, len(rel))
	start := now.Add(-5 * time.Minute).UnixNano()
	for i := 0; i < n; i++ {
		pid := uint32(100 + r.Intn(8))
		for c, col := range rel {
			switch col.Name {
			case "time_":
				row[c] = start + r.Int63n(int64(5*time.Minute))
			case "upid":
				row[c] = types.UPID(asid, pid, uint64(pid)*1000)
			case "remote_addr":
				row[c] = fmt.Sprintf("10.0.%d.%d", asid, r.Intn(20))
			case "local_addr":
				row[c] = fmt.Sprintf("10.1.%d.1", asid)
			case "remote_port":
				row[c] = int64(30000 + r.Intn(1000))
			case "local_port":
				row[c] = int64(8080)
			case "trace_role":
				row[c] = int64(1 + r.Intn(2))
			case "req_method":
				row[c] = methods[r.Intn(len(methods))]
			case "req_path":
				row[c] = Paths[r.Intn(len(Paths))]
			case "resp_status":
				row[c] = statuses[r.Intn(len(statuses))]
			case "latency":
				row[c] = int64(r.ExpFloat64() * 5e6)
			case "req_body_size", "resp_body_size":
				row[c] = int64(r.Intn(5000))
			case "major_version":
				row[c] = int64(1)
			case "resp_message":
				row[c] = "OK"
			default:
				switch col.Type {
				case types.Int64:
					row[c] = int64(0)
				case types.Boolean:
					row[c] = false
				case types.String:
					row[c] = ""
				case types.Float64:
					row[c] = 0.0
				default:
					t.Fatalf("brokertest: no generator for column %s", col.Name)
				}
			}
		}
		for _, w := range ws {
			if err := w.AppendRow(row...); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range ws {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// Meta is metadata that every agent and the embedded engine share in
// tests: process pid p of agent a runs in pod "default/pod-a-(p%3)" of
// service "default/svc-(p%2)".
type Meta struct{ metadata.None }

// Process describes a generated process.
func (Meta) Process(u types.UInt128Value) *metadata.Process {
	return &metadata.Process{UPID: u, PID: int64(u.PID()), Cmdline: fmt.Sprintf("/bin/server-%d", u.PID()%4),
		PodUID: fmt.Sprintf("uid-%d-%d", u.ASID(), u.PID()%3), Hostname: fmt.Sprintf("node-%d", u.ASID())}
}

// Pod describes a generated pod.
func (Meta) Pod(uid string) *metadata.Pod {
	var a, p int
	if _, err := fmt.Sscanf(uid, "uid-%d-%d", &a, &p); err != nil {
		return nil
	}
	return &metadata.Pod{UID: uid, Name: fmt.Sprintf("pod-%d-%d", a, p), Namespace: "default", NodeName: fmt.Sprintf("node-%d", a),
		Phase: "Running", ServiceNames: []string{fmt.Sprintf("default/svc-%d", p%2)}, ServiceUIDs: []string{fmt.Sprintf("suid-%d", p%2)}}
}

// Service describes a generated service.
func (Meta) Service(uid string) *metadata.Service {
	var s int
	if _, err := fmt.Sscanf(uid, "suid-%d", &s); err != nil {
		return nil
	}
	return &metadata.Service{UID: uid, Name: fmt.Sprintf("svc-%d", s), Namespace: "default"}
}
