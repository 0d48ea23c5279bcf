package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/server/auth"
)

// TestAgentAcceptsOnlyTheBroker secures an agent with mutual TLS and a
// token, and checks that only a broker with both gets an answer.
func TestAgentAcceptsOnlyTheBroker(t *testing.T) {
	certs := brokertest.NewCerts(t)
	opts, err := auth.ServerConfig{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA, Token: "agent-token"}.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 500, now)
	a := brokertest.StartAgent(t, eng, 1, opts...)
	good := auth.ClientConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, Token: "agent-token"}

	for _, tc := range []struct {
		name string
		dial auth.ClientConfig
		want string // in the error; "" for success
	}{
		{"broker", good, ""},
		{"no token", auth.ClientConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, "Unauthenticated"},
		{"wrong token", auth.ClientConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, Token: "guess"}, "invalid token"},
		{"no client certificate", auth.ClientConfig{CAFile: certs.CA, Token: "agent-token"}, "Unavailable"},
		{"client certificate of another CA", auth.ClientConfig{CAFile: certs.CA, CertFile: certs.RogueCert, KeyFile: certs.RogueKey, Token: "agent-token"}, "Unavailable"},
		{"plaintext", auth.ClientConfig{Token: "agent-token"}, "Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := broker.New(broker.Config{Agents: []string{a.Addr}, Dial: tc.dial})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c := &testCluster{broker: b, now: now}
			tables, _, err := c.runDistributed(context.Background(), engine.Query{Script: pxl(countScript), Now: now}, distOpts{})
			if tc.want == "" {
				if err != nil || tables[1].Rows() != 500 {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBindAddr(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		secured  bool
		want     string
		wantNote bool
	}{
		{":50051", false, "127.0.0.1:50051", true},
		{"0.0.0.0:50051", false, "127.0.0.1:50051", true},
		{"127.0.0.1:7", false, "127.0.0.1:7", true},
		{":50051", true, ":50051", false},
	} {
		got, note, err := auth.BindAddr(tc.addr, tc.secured, false)
		if err != nil || got != tc.want || (note != "") != tc.wantNote {
			t.Errorf("BindAddr(%q, %v) = %q, %q, %v", tc.addr, tc.secured, got, note, err)
		}
	}
}
