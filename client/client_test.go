package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/server"
	"github.com/pxq-dev/pxq/server/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClient(t *testing.T) {
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 3000, time.Now())
	opts, err := auth.ServerConfig{Token: "tok"}.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := server.New(server.Config{Runner: &query.Runner{Backend: eng}}).NewGRPCServer(opts...)
	go g.Serve(lis)
	defer g.Stop()

	c, err := client.Dial(lis.Addr().String(), client.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	res, err := c.Run(ctx, "px/http_request_stats", map[string]string{"start_time": "-10m"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := eng.Collect(ctx, engine.Query{Script: mustScript(t, "px/http_request_stats"), Args: map[string]string{"start_time": "-10m"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != len(want) || res.Tables[0].Rows() != want[0].Rows() || res.Tables[0].Relation.String() != want[0].Relation.String() {
		t.Fatalf("got %d tables (%v), want %d", len(res.Tables), res.Tables[0].Relation, len(want))
	}
	if res.QueryID == "" || res.ExecNS <= 0 {
		t.Fatalf("stats %+v", res.Stats)
	}
	// A semantic type survives the trip.
	if res.Tables[0].Relation[3].Semantic != want[0].Relation[3].Semantic {
		t.Fatalf("semantic %v, want %v", res.Tables[0].Relation[3].Semantic, want[0].Relation[3].Semantic)
	}

	res, err = c.RunScript(ctx, mustScript(t, "px/http_data"), map[string]string{"start_time": "-10m"})
	if err != nil || len(res.Tables) == 0 || res.Tables[0].Rows() == 0 {
		t.Fatalf("RunScript: %v", err)
	}

	_, err = c.Execute(ctx, client.Query{PxL: "import px\npx.display(px.DataFrame('http_events').nope, 'x')\n"})
	var ce *client.CompileError
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Fatalf("compile error: %v", err)
	}

	tables, _, err := c.Tables(ctx)
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables: %v", err)
	}
	sc, err := c.Scripts(ctx)
	if err != nil || len(sc) == 0 {
		t.Fatalf("scripts: %v", err)
	}

	bad, err := client.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Run(ctx, "px/http_data", nil); err == nil {
		t.Fatal("no token: the call went through")
	}
}

func mustScript(t *testing.T, name string) *scripts.Script {
	s, err := scripts.NewLibrary().Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
