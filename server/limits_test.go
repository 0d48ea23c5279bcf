package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
)

// startClients serves the public API of a runner and returns a Pixie
// client and a pxq client of it.
func startClients(t *testing.T, r *query.Runner) (*pixieClient, *client.Client) {
	t.Helper()
	pc, addr := startRunner(t, r)
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return pc, c
}

const allRows = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df[['time_', 'req_path']], 'rows')
px.display(df.groupby('req_path').agg(n=('latency', px.count)), 'paths')
`

func TestResultLimitOverTheWire(t *testing.T) {
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 5000, time.Now())
	pc, c := startClients(t, &query.Runner{Backend: eng, Limits: query.Limits{MaxRowsPerTable: -1, MaxResultRows: 3000}})
	ctx := context.Background()

	// pxq's service: the cut table and the one after it are flagged,
	// and a warning says why.
	res, err := c.Execute(ctx, client.Query{PxL: allRows, MaxRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 2 || res.Tables[0].Rows() != 3000 || !res.Tables[0].Truncated || !res.Tables[1].Truncated ||
		len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "3000 rows") {
		t.Fatalf("tables %v, warnings %v", res.Tables, res.Warnings)
	}

	// Pixie's: the rows come, then an error the client shows.
	resps, err := pc.execute(ctx, func(req *dynamicpb.Message) { setStr(req, "query_str", allRows) })
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "3000 rows") {
		t.Fatalf("Pixie client: %v", err)
	}
	var rows int64
	for _, r := range resps {
		if has(r, "data") && has(get(r, "data").Message(), "batch") {
			rows += get(r, "data.batch.num_rows").Int()
		}
	}
	if rows != 3000 {
		t.Fatalf("Pixie client got %d rows before the error, want 3000", rows)
	}
}

func TestBusyServer(t *testing.T) {
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 100, time.Now())
	gate := query.NewGate(1, -1)
	pc, c := startClients(t, &query.Runner{Backend: eng, Gate: gate})
	ctx := context.Background()

	// The one slot is taken.
	_, leave, err := gate.Enter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Execute(ctx, client.Query{PxL: allRows})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("pxq client: %v", err)
	}
	_, err = pc.execute(ctx, func(req *dynamicpb.Message) { setStr(req, "query_str", allRows) })
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("Pixie client: %v", err)
	}
	leave()
	if _, err := c.Execute(ctx, client.Query{PxL: allRows}); err != nil {
		t.Fatalf("after the slot is free: %v", err)
	}

	// A server shutting down says so.
	gate.Close()
	_, err = c.Execute(ctx, client.Query{PxL: allRows})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("shutting down: %v", err)
	}
}
