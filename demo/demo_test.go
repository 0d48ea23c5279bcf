package demo

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// TestShop runs the services in-process, sends them the request mix and
// checks that every kind of answer the demo promises comes back.
func TestShop(t *testing.T) {
	ctx := context.Background()
	app, err := StartInProcess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	rep, err := Drive(ctx, LoadOptions{Target: app.Target, Env: app.Env, Rate: 100, Duration: 1500 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Requests != 150 {
		t.Errorf("sent %d requests, want 150 (rate × duration)", rep.Requests)
	}
	if rep.Failed != 0 {
		t.Errorf("%d requests got no answer", rep.Failed)
	}
	for _, code := range []int{200, 404} {
		if rep.ByStatus[code] == 0 {
			t.Errorf("no answer with status %d: %v", code, rep.ByStatus)
		}
	}
	if rep.ByStatus[402]+rep.ByStatus[502]+rep.ByStatus[400] == 0 {
		t.Errorf("no failed checkout: %v", rep.ByStatus)
	}
	for _, p := range []string{"GET /", "GET /product/{id}", "POST /cart/checkout", "GET /admin"} {
		if rep.ByPath[p] == 0 {
			t.Errorf("no %s in the mix: %v", p, rep.Paths())
		}
	}
}

// TestDriveBounded checks that the load generator stops on time even when
// the target never answers.
func TestDriveBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	rep, err := Drive(context.Background(), LoadOptions{Target: "http://" + ln.Addr().String(), Rate: 20, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 9*time.Second {
		t.Errorf("Drive took %s against a silent target", el)
	}
	if rep.Requests > 4 {
		t.Errorf("sent %d requests, want at most 4", rep.Requests)
	}
}

// dnsQuery builds a one-question query, as Go's resolver sends it.
func dnsQuery(name string, qtype uint16) []byte {
	q := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range splitDots(name) {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, qtype)
	return binary.BigEndian.AppendUint16(q, dnsClassIN)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func TestDNSAnswer(t *testing.T) {
	resp, ok := dnsAnswer(dnsQuery("catalog."+Domain, dnsTypeA))
	if !ok {
		t.Fatal("no answer")
	}
	if resp[0] != 0x12 || resp[1] != 0x34 || resp[2]&0x80 == 0 || resp[3]&0xf != 0 {
		t.Errorf("bad header % x", resp[:12])
	}
	if n := binary.BigEndian.Uint16(resp[6:]); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
	if ip := resp[len(resp)-4:]; net.IP(ip).String() != "127.0.0.1" {
		t.Errorf("answer %v", net.IP(ip))
	}
	resp, _ = dnsAnswer(dnsQuery("example.com", dnsTypeA))
	if resp[3]&0xf != 3 {
		t.Errorf("rcode %d for a foreign name, want NXDOMAIN", resp[3]&0xf)
	}
	resp, _ = dnsAnswer(dnsQuery("catalog."+Domain, dnsTypeAAAA))
	if resp[3]&0xf != 0 || binary.BigEndian.Uint16(resp[6:]) != 0 {
		t.Errorf("AAAA: want NOERROR with no answer, got % x", resp[:12])
	}
	if _, ok := dnsAnswer([]byte{1, 2, 3}); ok {
		t.Error("answered a runt")
	}
}

// TestResolver checks that Go's resolver, pointed at ServeDNS, finds the
// services.
func TestResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeDNS(ctx, pc)
	addr := pc.LocalAddr().String()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	ips, err := r.LookupHost(ctx, "payments."+Domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Errorf("payments resolved to %v", ips)
	}
}

func FuzzDNSAnswer(f *testing.F) {
	f.Add(dnsQuery("catalog."+Domain, dnsTypeA))
	f.Add(dnsQuery("x.example", dnsTypeAAAA))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63})
	f.Fuzz(func(t *testing.T, q []byte) {
		resp, ok := dnsAnswer(q)
		if ok && (len(resp) < 12 || resp[0] != q[0] || resp[1] != q[1]) {
			t.Fatalf("bad answer % x to % x", resp, q)
		}
	})
}

// TestShippedCapture opens the capture shipped inside pxq and checks that
// it is in the current format and holds the demo's traffic and the names
// of its processes: their command lines, and the cgroups that make them
// the host entities Slice/NAME.service.
func TestShippedCapture(t *testing.T) {
	c, err := capture.OpenFS(Shipped(), "shipped")
	if err != nil {
		t.Fatal(err)
	}
	if c.Note != "" || c.Manifest.Format != capture.FormatVersion {
		t.Errorf("shipped capture: format %d, note %q; regenerate it with pxq run --capture --save-capture", c.Manifest.Format, c.Note)
	}
	store := table.NewStore(0)
	for _, n := range tables.Names() {
		if _, err := store.Create(n, tables.All[n].Relation, table.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Load(store); err != nil {
		t.Fatal(err)
	}
	if c.AsOf().IsZero() {
		t.Error("no end time")
	}
	for _, n := range []string{"http_events", "dns_events", "conn_stats", "process_stats"} {
		if rows := store.Table(n).Stats().Rows; rows == 0 {
			t.Errorf("%s is empty in the shipped capture", n)
		}
	}
	meta := c.Metadata(nil)
	names := map[string]bool{}
	pods := map[string]bool{}
	rel := store.Table("http_events").Relation()
	for _, b := range store.Table("http_events").Snapshot(0, 0) {
		col := b.Record.Column(rel.Index("upid")).(*array.FixedSizeBinary)
		for i := 0; i < col.Len(); i++ {
			u := types.GetUInt128(col.Value(i))
			if p := meta.Process(u); p != nil {
				names[p.Cmdline] = true
				if ent, ok := metadata.EntityOf(p); ok {
					pods[ent.QualifiedName()] = true
				}
			}
		}
	}
	for _, s := range append([]string{LoadGen}, Services...) {
		if !names["pxq demo-app "+s] {
			t.Errorf("no http_events row of %s resolves to its command line (have %v)", s, names)
		}
		if !pods[Slice+"/"+UnitOf(s)] {
			t.Errorf("no http_events row of %s resolves to the entity %s/%s (have %v): record the capture again with make demo-capture", s, Slice, UnitOf(s), pods)
		}
	}
}
