package agent_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/agent"
	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

const count = "import px\npx.display(px.DataFrame(table='http_events', start_time='-10m').agg(n=('latency', px.count)), 'n')\n"

// TestGateRefusesFragments: an agent whose gate is full refuses a
// fragment as busy; its broker names it in a warning.
func TestGateRefusesFragments(t *testing.T) {
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 100, time.Now())
	gate := query.NewGate(1, -1)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	agentpb.RegisterAgentServiceServer(g, agent.New(agent.Config{Engine: eng, Hostname: "node-1", ASID: 1, Gate: gate}))
	go g.Serve(lis)
	defer g.Stop()

	sc := &scripts.Script{Name: "count", Path: "count.pxl", PXL: []byte(count)}
	p, err := engine.Compile(engine.Query{Script: sc, Now: time.Now()}, eng.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	d, err := planner.Split(p)
	if err != nil {
		t.Fatal(err)
	}
	frag, err := planner.ToProto(d.Node)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	execute := func() error {
		s, err := agentpb.NewAgentServiceClient(conn).Execute(context.Background(), &agentpb.ExecuteRequest{QueryId: "q", Fragment: frag})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
	}

	_, leave, err := gate.Enter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := execute(); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("a fragment past the gate: %v", err)
	}
	b, err := broker.New(broker.Config{Agents: []string{lis.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, res, err := (&query.Runner{Backend: b}).Collect(context.Background(), query.Request{Script: sc})
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "server busy") {
		t.Fatalf("through the broker: %v, warnings %v", err, res.Warnings)
	}
	leave()
	if err := execute(); err != nil {
		t.Fatalf("with room: %v", err)
	}
}
