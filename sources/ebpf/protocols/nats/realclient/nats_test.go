package realclient

import (
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	pnats "github.com/pxq-dev/pxq/sources/ebpf/protocols/nats"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats/natstest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

type want = natstest.Want

var lit = natstest.Lit

// Rows every session starts with: the server's INFO, the client's
// CONNECT (with its user, the password hidden) and the PING that
// nats.go sends with it, answered by a PONG.
func opening(name string, verbose bool) []want {
	ok := ""
	if verbose {
		ok = "+OK"
	}
	return []want{
		{Cmd: "INFO", Body: `\{"auth_required":true,.*"headers":true,"host":"127\.0\.0\.1",.*"server_id":"[A-Z0-9]+",.*\}`},
		{Client: true, Cmd: "CONNECT", Body: `\{.*"lang":"go","name":"` + name + `",.*"pass":"<hidden>",.*"user":"pxq",.*"verbose":` + map[bool]string{true: "true", false: "false"}[verbose] + `.*\}`, Resp: ok},
		{Client: true, Cmd: "PING"},
		{Cmd: "PONG"},
	}
}

func flushRows() []want { return []want{{Client: true, Cmd: "PING"}, {Cmd: "PONG"}} }

// inbox matches the random part of a nats.go inbox.
const inbox = `[A-Za-z0-9]+`

const forbidden = `-ERR 'Permissions Violation for Publish to "forbidden.x"'`

// plainSession is a client in the default (not verbose) mode: plain
// and queue subscriptions, a publish with headers, a request answered on
// the same connection, unsubscribes, and a publish the server refuses.
// It returns the rows it should make.
func plainSession(t *testing.T, url string) []want {
	nc, err := nats.Connect(url, nats.UserInfo(natsUser, natsPassword), nats.Name("pxq-plain"), nats.CustomInboxPrefix("_INBOX_PXQ"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sub, err := nc.SubscribeSync("orders.created")
	must(err)
	jobs, err := nc.QueueSubscribeSync("jobs.*", "workers")
	must(err)
	_, err = nc.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond([]byte("pong")) })
	must(err)
	replies, err := nc.SubscribeSync("reply.1")
	must(err)
	must(nc.Publish("orders.created", []byte("order-1")))
	m := nats.NewMsg("jobs.build")
	m.Header.Set("Trace-Id", "abc")
	m.Data = []byte(`{"job":7}`)
	must(nc.PublishMsg(m))
	must(nc.PublishRequest("svc.echo", "reply.1", []byte("ping")))
	for _, s := range []*nats.Subscription{replies, sub, jobs} {
		if _, err := s.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("%s: %v", s.Subject, err)
		}
	}
	must(replies.Unsubscribe())
	must(jobs.AutoUnsubscribe(5))
	must(nc.Publish("forbidden.x", []byte("no")))
	big := strings.Repeat("0123456789", 300)
	must(nc.Publish("big", []byte(big)))
	if _, err := nc.Request("nobody.home", nil, 5*time.Second); err != nats.ErrNoResponders {
		t.Fatalf("request to no one: %v, want %v", err, nats.ErrNoResponders)
	}
	must(nc.Flush())

	// HPUB <subject> 34 43: the header block is "NATS/1.0\r\nTrace-Id: abc\r\n\r\n".
	hdr := `"headers":{"Trace-Id":"abc"},`
	wants := opening("pxq-plain", false)
	wants = append(wants, []want{
		{Client: true, Cmd: "SUB", Body: lit(`{"sid":"1","subject":"orders.created"}`)},
		{Client: true, Cmd: "SUB", Body: lit(`{"queue group":"workers","sid":"2","subject":"jobs.*"}`)},
		{Client: true, Cmd: "SUB", Body: lit(`{"sid":"3","subject":"svc.echo"}`)},
		{Client: true, Cmd: "SUB", Body: lit(`{"sid":"4","subject":"reply.1"}`)},
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"order-1","payload_size":7,"subject":"orders.created"}`)},
		{Client: true, Cmd: "HPUB", Body: lit(`{` + hdr + `"payload":"{\"job\":7}","payload_size":9,"subject":"jobs.build"}`)},
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"ping","payload_size":4,"reply-to":"reply.1","subject":"svc.echo"}`)},
		{Cmd: "MSG", Body: lit(`{"payload":"order-1","payload_size":7,"sid":"1","subject":"orders.created"}`)},
		{Cmd: "HMSG", Body: lit(`{` + hdr + `"payload":"{\"job\":7}","payload_size":9,"sid":"2","subject":"jobs.build"}`)},
		{Cmd: "MSG", Body: lit(`{"payload":"ping","payload_size":4,"reply-to":"reply.1","sid":"3","subject":"svc.echo"}`)},
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"pong","payload_size":4,"subject":"reply.1"}`)},
		{Cmd: "MSG", Body: lit(`{"payload":"pong","payload_size":4,"sid":"4","subject":"reply.1"}`)},
		{Client: true, Cmd: "UNSUB", Body: lit(`{"sid":"4"}`)},
		{Client: true, Cmd: "UNSUB", Body: lit(`{"max_msgs":"5","sid":"2"}`)},
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"no","payload_size":2,"subject":"forbidden.x"}`)},
		{Cmd: "-ERR", Body: "", Resp: forbidden},
		// The body keeps MaxBodyBytes of the payload, and its size.
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"` + big[:testConfig.MaxBodyBytes] + `","payload_size":3000,"subject":"big"}`)},
		// A request: nats.go subscribes to its inbox's wildcard, and the
		// server answers that no one listens (status 503, no payload).
		{Client: true, Cmd: "SUB", Body: lit(`{"sid":"5","subject":"_INBOX_PXQ.`) + inbox + lit(`.*"}`)},
		{Client: true, Cmd: "PUB", Body: lit(`{"payload":"","payload_size":0,"reply-to":"_INBOX_PXQ.`) + inbox + `\.` + inbox + lit(`","subject":"nobody.home"}`)},
		{Cmd: "HMSG", Body: lit(`{"headers":{},"payload":"","payload_size":0,"sid":"5","status":"503","subject":"_INBOX_PXQ.`) + inbox + `\.` + inbox + `"\}`},
	}...)
	return append(wants, flushRows()...)
}

// verboseSession is a client in verbose mode: the server answers each
// CONNECT, SUB, PUB and UNSUB with +OK, the refused publish with -ERR.
func verboseSession(t *testing.T, url string) []want {
	nc, err := nats.Connect(url, nats.UserInfo(natsUser, natsPassword), nats.Name("pxq-verbose"),
		func(o *nats.Options) error { o.Verbose = true; return nil })
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("v.sub")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("v.sub", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("forbidden.x", []byte("no")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	wants := opening("pxq-verbose", true)
	return append(wants,
		want{Client: true, Cmd: "SUB", Body: lit(`{"sid":"1","subject":"v.sub"}`), Resp: "+OK"},
		want{Client: true, Cmd: "PUB", Body: lit(`{"payload":"x","payload_size":1,"subject":"v.sub"}`), Resp: "+OK"},
		want{Cmd: "MSG", Body: lit(`{"payload":"x","payload_size":1,"sid":"1","subject":"v.sub"}`)},
		want{Client: true, Cmd: "UNSUB", Body: lit(`{"sid":"1"}`), Resp: "+OK"},
		want{Client: true, Cmd: "PUB", Body: lit(`{"payload":"no","payload_size":2,"subject":"forbidden.x"}`), Resp: forbidden},
		want{Client: true, Cmd: "PING"}, want{Cmd: "PONG"},
	)
}

var sessions = []struct {
	name string
	run  func(*testing.T, string) []want
}{{"nats_go", plainSession}, {"nats_go_verbose", verboseSession}}

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// TestNATSGo runs each session through a recording proxy and parses what
// the client and the server exchanged as the tracer would on each side.
func TestNATSGo(t *testing.T) {
	s := startNATS(t)
	for _, sess := range sessions {
		t.Run(sess.name, func(t *testing.T) {
			var chunks []dbtest.Chunk
			p := dbtest.NewProxy(t, "127.0.0.1:"+itoa(s.Port), func(c dbtest.Chunk) { chunks = append(chunks, c) })
			wants := sess.run(t, "nats://"+p.Addr())
			p.Close()
			if os.Getenv("PXQ_RECORD") == "1" {
				dbtest.Record(t, "../testdata/"+sess.name+".bin", chunks, 0)
				natstest.Save(t, "../testdata/"+sess.name+".rows.json", wants)
			}
			for _, role := range roles {
				h := protocoltest.New(t, pnats.Protocol{}, protocols.Conn{Role: role, Stream: true,
					Local: netip.MustParseAddrPort("127.0.0.1:4222"), Remote: netip.MustParseAddrPort("127.0.0.1:40000")}, testConfig)
				for _, c := range chunks {
					h.Parser.Data(dbtest.Segment(c, role))
				}
				h.Parser.Close(time.Now().UnixNano())
				natstest.Check(t, h.Rows(pnats.Table.Name()), wants)
				if len(h.Counts) != 0 {
					t.Errorf("role %d: counters %v", role, h.Counts)
				}
			}
		})
	}
}

// byConn groups rows by the client's port (remote_port on the server's
// side, local_port on the client's), groups in the order they began.
func byConn(rows []map[string]any, clientSide bool) [][]map[string]any {
	key := "remote_port"
	if clientSide {
		key = "local_port"
	}
	groups := map[int64][]map[string]any{}
	for _, r := range rows {
		groups[r[key].(int64)] = append(groups[r[key].(int64)], r)
	}
	var out [][]map[string]any
	for _, g := range groups {
		out = append(out, g)
	}
	first := func(g []map[string]any) int64 {
		m := g[0]["time_"].(int64)
		for _, r := range g {
			m = min(m, r["time_"].(int64))
		}
		return m
	}
	sort.Slice(out, func(i, j int) bool { return first(out[i]) < first(out[j]) })
	return out
}

// trace runs the sessions traced by cfg and returns the rows each should
// make.
func trace(t *testing.T, s *server) (wants [][]want) {
	for _, sess := range sessions {
		wants = append(wants, sess.run(t, s.url()))
	}
	return wants
}

func checkSide(t *testing.T, side string, got []map[string]any, wants [][]want) {
	t.Helper()
	conns := byConn(got, side == "client")
	if len(conns) != len(wants) {
		t.Fatalf("%s: rows of %d connections, want %d", side, len(conns), len(wants))
	}
	n := 0
	for i, w := range wants {
		t.Run(side+"/"+sessions[i].name, func(t *testing.T) { natstest.Check(t, conns[i], w) })
		n += len(w)
	}
	t.Logf("%s: %d rows for %d commands", side, len(got), n)
}

func total(wants [][]want) int {
	n := 0
	for _, w := range wants {
		n += len(w)
	}
	return n
}

// TestTraceNATSBothSides traces nats-server and the nats.go client (this
// process), recording both sides: every command is a row on each.
func TestTraceNATSBothSides(t *testing.T) {
	s := startNATS(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(s.Pid), uint32(os.Getpid())}, AllClientSides: true})
	wants := trace(t, s)
	for _, side := range []struct {
		name string
		keep func(map[string]any) bool
	}{{"client", ebpftest.ClientRow(s.Port)}, {"server", ebpftest.ServerRow(s.Port)}} {
		got := ebpftest.WaitRows(t, store, pnats.Table.Name(), total(wants), 5*time.Second, side.keep)
		checkSide(t, side.name, got, wants)
	}
}

// TestTraceNATSServerSide traces both ends with the default
// configuration: the broker's rows are kept, its clients' left out.
func TestTraceNATSServerSide(t *testing.T) {
	s := startNATS(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(s.Pid), uint32(os.Getpid())}})
	wants := trace(t, s)
	got := ebpftest.WaitRows(t, store, pnats.Table.Name(), total(wants), 5*time.Second, ebpftest.ServerRow(s.Port))
	checkSide(t, "server", got, wants)
	if n := len(ebpftest.WaitRows(t, store, pnats.Table.Name(), 0, 0, ebpftest.ClientRow(s.Port))); n != 0 {
		t.Errorf("%d client rows, want none (the server is traced)", n)
	}
}

// TestTraceNATSClientSide traces the client alone.
func TestTraceNATSClientSide(t *testing.T) {
	s := startNATS(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{})
	wants := trace(t, s)
	got := ebpftest.WaitRows(t, store, pnats.Table.Name(), total(wants), 5*time.Second, ebpftest.ClientRow(s.Port))
	checkSide(t, "client", got, wants)
}

// TestTraceNATSLoad traces the server while a publisher sends 20,000
// messages as fast as it can and a subscriber receives them, in two
// shapes:
//
//   - flushed: the publisher waits every 256 messages until the
//     subscriber has them: each PUB and each MSG must be a row, with its
//     payload.
//   - unbounded: it never waits. The server then writes the subscriber's
//     messages in calls beyond the 64 KiB the tracer copies of one call
//     (truncated_bytes): the messages in the bytes not copied are lost.
//     Every row that lands must be right, and the rows missing must be
//     what was not copied.
func TestTraceNATSLoad(t *testing.T) {
	s := startNATS(t)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(s.Pid), uint32(os.Getpid())}})
	for _, shape := range []struct {
		name  string
		every int
	}{{"flushed", 256}, {"unbounded", 0}} {
		t.Run(shape.name, func(t *testing.T) {
			before := tr.Stats()
			subject := "load." + shape.name
			n := natsLoad(t, s, subject, shape.every)
			after := settle(tr)
			truncated := int64(after.TruncatedBytes - before.TruncatedBytes)
			payload := strings.Repeat("p", 64)
			body := `{"payload":"` + payload + `","payload_size":64,`
			// The bytes of each command on the wire, to account for what
			// was lost.
			size := map[string]int64{
				"PUB": int64(len("PUB "+subject+" 64\r\n")) + 64 + 2,
				"MSG": int64(len("MSG "+subject+" 1 64\r\n")) + 64 + 2,
			}
			var lost int64
			for _, cmd := range []string{"PUB", "MSG"} {
				wait := 10 * time.Second
				if truncated > 0 {
					wait = time.Second // rows are missing: wait for the flush only
				}
				rows := ebpftest.WaitRows(t, store, pnats.Table.Name(), n, wait, func(r map[string]any) bool {
					return ebpftest.ServerRow(s.Port)(r) && r["cmd"] == cmd && strings.Contains(r["body"].(string), `"subject":"`+subject+`"`)
				})
				bad := 0
				for _, r := range rows {
					if !strings.HasPrefix(r["body"].(string), body) {
						bad++
					}
				}
				t.Logf("%s: %d rows for %d messages (%d wrong)", cmd, len(rows), n, bad)
				if bad != 0 || len(rows) > n || (truncated == 0 && len(rows) != n) {
					t.Errorf("%s: %d rows (%d wrong), want %d", cmd, len(rows), bad, n)
				}
				lost += int64(n-len(rows)) * size[cmd]
			}
			gaps := after.Counters["nats.gap_resyncs"] - before.Counters["nats.gap_resyncs"]
			t.Logf("truncated bytes %d, lost events %d, gaps %d; the rows missing are %d bytes",
				truncated, after.LostEvents-before.LostEvents, gaps, lost)
			// (The parser's count of gaps can lag the reader's count of
			// bytes: one gap at least when bytes were truncated.)
			if slack := max(gaps, min(truncated, 1)) * 2 * size["MSG"]; lost < truncated-slack || lost > truncated+slack {
				t.Errorf("rows of %d bytes missing for %d bytes truncated", lost, truncated)
			}
			if shape.every > 0 && truncated > 0 {
				t.Errorf("%d bytes truncated with at most %d messages in flight", truncated, shape.every)
			}
		})
	}
}

// natsLoad publishes n messages of 64 bytes to subject from one
// connection and receives them on another, waiting every every messages
// (never when 0) until the subscriber has them; it returns n.
func natsLoad(t *testing.T, s *server, subject string, every int) int {
	const n = 20000
	opts := []nats.Option{nats.UserInfo(natsUser, natsPassword)}
	sub, err := nats.Connect(s.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := make(chan struct{}, n)
	if _, err := sub.Subscribe(subject, func(*nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	pub, err := nats.Connect(s.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	payload := []byte(strings.Repeat("p", 64))
	received := 0
	receive := func(upto int) {
		for ; received < upto; received++ {
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatalf("the subscriber got %d of %d messages", received, n)
			}
		}
	}
	for i := 0; i < n; i++ {
		if err := pub.Publish(subject, payload); err != nil {
			t.Fatal(err)
		}
		if every > 0 && (i+1)%every == 0 {
			receive(i + 1) // the subscriber has them all: nothing in flight
		}
	}
	pub.Flush()
	receive(n)
	return n
}
