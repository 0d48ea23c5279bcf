package demo

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

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
	for _, code := range []int{200, 404, 400, 402, 409} {
		if rep.ByStatus[code] == 0 {
			t.Errorf("no answer with status %d: %v", code, rep.ByStatus)
		}
	}
	for _, p := range []string{"GET /", "GET /product/{id}", "POST /cart/checkout", "GET /admin"} {
		if rep.ByPath[p] == 0 {
			t.Errorf("no %s in the mix: %v", p, rep.Paths())
		}
	}
	// Every checkout reserved its items over gRPC, with the status the
	// mix asked for, which checkout's answer tells: NOT_FOUND is a 400,
	// RESOURCE_EXHAUSTED a 409; each order reserved was charged.
	for _, c := range []struct {
		code   codes.Code
		status int
	}{{codes.NotFound, 400}, {codes.ResourceExhausted, 409}} {
		if rep.Reserves[c.code] == 0 || rep.Reserves[c.code] != rep.ByStatus[c.status] {
			t.Errorf("%d Reserve calls %s, %d checkouts answered %d", rep.Reserves[c.code], c.code, rep.ByStatus[c.status], c.status)
		}
	}
	reserves := 0
	for _, n := range rep.Reserves {
		reserves += n
	}
	if reserves != rep.ByPath["POST /cart/checkout"] {
		t.Errorf("%d Reserve calls for %d checkouts", reserves, rep.ByPath["POST /cart/checkout"])
	}
	if rep.Charges != rep.Reserves[codes.OK] || rep.Charges == 0 {
		t.Errorf("%d charges for %d orders reserved", rep.Charges, rep.Reserves[codes.OK])
	}
	// The report crosses a pipe as JSON (Loadgen.Go).
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != rep.String() || back.Reserves[codes.ResourceExhausted] != rep.Reserves[codes.ResourceExhausted] {
		t.Errorf("report %s came back from JSON as %s", rep, back)
	}
}

// TestInventory calls the inventory's gRPC method as checkout does.
func TestInventory(t *testing.T) {
	ctx := context.Background()
	app, err := StartInProcess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	conn, err := dialInventory(app.Env)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct {
		items []Item
		code  codes.Code
		msg   string
	}{
		{[]Item{{ID: 1, Qty: 2}, {ID: 3, Qty: 1}}, codes.OK, ""},
		{[]Item{{ID: 1, Qty: 1}, {ID: 12, Qty: 1}}, codes.NotFound, "no product 12"},
		{[]Item{{ID: scarceProduct, Qty: scarceQty}}, codes.ResourceExhausted, "cast-iron skillet: 4 wanted, 3 in stock"},
		{nil, codes.InvalidArgument, "no items to reserve"},
	} {
		var reply ReserveReply
		err := conn.Invoke(ctx, ReservePath, &ReserveRequest{OrderID: "ord-test", Items: c.items}, &reply)
		st := status.Convert(err)
		if st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("Reserve %v: %v, want %s %q", c.items, err, c.code, c.msg)
		}
		if c.code == codes.OK && !strings.HasPrefix(reply.ReservationID, "res-") {
			t.Errorf("Reserve %v: reservation %q", c.items, reply.ReservationID)
		}
	}
}

// TestWireMessages checks the inventory's messages against protobuf's
// wire format: what appendWire writes parses back, and is the protobuf
// encoding of the messages of inventory.go's comment.
func TestWireMessages(t *testing.T) {
	req := ReserveRequest{OrderID: "ord-00042", Items: []Item{{ID: 3, Qty: 2}, {ID: 300, Qty: 1}}}
	b, err := wireCodec{}.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x0a, 9}
	want = append(want, "ord-00042"...)
	want = append(want, 0x12, 4, 0x08, 3, 0x10, 2, 0x12, 5, 0x08, 0xac, 0x02, 0x10, 1)
	if !bytes.Equal(b, want) {
		t.Errorf("ReserveRequest is % x, want % x", b, want)
	}
	var back ReserveRequest
	if err := (wireCodec{}).Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, req) {
		t.Errorf("parsed back %+v, %v; want %+v", back, err, req)
	}
	// Unknown fields are skipped; a message cut short is an error.
	extra := append(protowire.AppendTag(nil, 9, protowire.Fixed32Type), 1, 2, 3, 4)
	var reply ReserveReply
	if err := (wireCodec{}).Unmarshal(append(extra, 0x0a, 2, 'r', '1'), &reply); err != nil || reply.ReservationID != "r1" {
		t.Errorf("reply %+v, %v", reply, err)
	}
	if err := (wireCodec{}).Unmarshal(b[:len(b)-3], &back); err == nil {
		t.Error("parsed a message cut short")
	}
	if _, err := (wireCodec{}).Marshal(&Product{}); err == nil {
		t.Error("marshalled a message of another type")
	}
}

// TestPaymentsTLS checks that payments serves HTTPS with the certificate
// it made for its name and 127.0.0.1, and that a client trusting another
// certificate is refused.
func TestPaymentsTLS(t *testing.T) {
	ctx := context.Background()
	app, err := StartInProcess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	cert := app.Env.Certs[Payments]
	if cert == nil {
		t.Fatal("no certificate for payments")
	}
	if err := cert.VerifyHostname("payments." + Domain); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	charge := func(env Env) (int, error) {
		c := newClient(env)
		defer c.CloseIdleConnections()
		return postJSON(ctx, c, "https://"+app.Env.Peers[Payments]+"/charge", ChargeRequest{OrderID: "ord-test", AmountCents: 100, Card: declinedCard}, nil)
	}
	if code, err := charge(app.Env); err != nil || code != 402 {
		t.Errorf("charge over HTTPS: %d, %v; want 402", code, err)
	}
	other, err := serverCert(Payments)
	if err != nil {
		t.Fatal(err)
	}
	env := app.Env.clone()
	env.Certs[Payments] = other.Leaf
	var unknown x509.UnknownAuthorityError
	if _, err := charge(env); !errors.As(err, &unknown) {
		t.Errorf("a client trusting another certificate: %v, want an unknown authority", err)
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

// TestEnvCheck checks that a service is refused before it listens when
// it is not told where its peers are.
func TestEnvCheck(t *testing.T) {
	env := newEnv()
	env.Peers[Catalog] = "catalog." + Domain + ":1"
	err := env.check(Checkout)
	if err == nil || !strings.Contains(err.Error(), "not given the address of payments, the address of inventory, the certificate of payments") {
		t.Errorf("checkout without payments and inventory: %v", err)
	}
	if err := env.check("warehouse"); err == nil {
		t.Error("accepted an unknown service")
	}
	for _, s := range []string{Catalog, Payments, Inventory} {
		if err := env.check(s); err != nil {
			t.Errorf("%s calls no peer, but: %v", s, err)
		}
	}
}
