package realclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	pamqp "github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp/amqptest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// TestAMQPGo runs a session through a recording proxy and parses what
// the client and the broker exchanged as the tracer would on each side.
func TestAMQPGo(t *testing.T) {
	b := startRabbitMQ(t)
	var chunks []dbtest.Chunk
	p := dbtest.NewProxy(t, "127.0.0.1:"+itoa(b.Port), func(c dbtest.Chunk) { chunks = append(chunks, c) })
	wants := session(t, "amqp://guest:guest@"+p.Addr()+"/")
	p.Close()
	if os.Getenv("PXQ_RECORD") == "1" {
		dbtest.Record(t, "../testdata/amqp091_go.bin", chunks, 0)
		amqptest.Save(t, "../testdata/amqp091_go.rows.json", wants)
	}
	for _, role := range roles {
		h := protocoltest.New(t, pamqp.Protocol{}, protocols.Conn{Role: role, Stream: true,
			Local: netip.MustParseAddrPort("127.0.0.1:5672"), Remote: netip.MustParseAddrPort("127.0.0.1:40000")}, testConfig)
		for _, c := range chunks {
			h.Parser.Data(dbtest.Segment(c, role))
		}
		h.Parser.Close(time.Now().UnixNano())
		amqptest.Check(t, h.Rows(pamqp.Table.Name()), wants)
		if len(h.Counts) != 0 {
			t.Errorf("role %d: counters %v", role, h.Counts)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

type want = amqptest.Want

var lit = amqptest.Lit

// Classes and methods, as numbered by the specification.
const (
	connection, channel, exchange, queue, basic, confirm = 10, 20, 40, 50, 60, 85
)

// session opens a connection to url and goes through what a consumer
// and a publisher with confirms do: declares, a binding, qos, a
// consumer, publishes (one with properties and headers, one of 140 kB in
// two body frames), deliveries and their acks, a get and a get on an
// empty queue, a cancel, a passive declare the broker refuses by closing
// the channel, and the closes. It returns the rows it should make.
func session(t *testing.T, url string) []want {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Properties: amqp.Table{"connection_name": "pxq-test"}})
	must(err)
	defer conn.Close()
	ch1, err := conn.Channel()
	must(err)
	must(ch1.ExchangeDeclare("orders", "topic", false, true, false, false, nil))
	_, err = ch1.QueueDeclare("pxq.orders", false, false, true, false, amqp.Table{"x-max-length": int32(100)})
	must(err)
	must(ch1.QueueBind("pxq.orders", "orders.*", "orders", false, nil))
	must(ch1.Qos(10, 0, false))
	deliveries, err := ch1.Consume("pxq.orders", "pxq-consumer", false, false, false, false, nil)
	must(err)
	ch2, err := conn.Channel()
	must(err)
	must(ch2.Confirm(false))
	confirms := ch2.NotifyPublish(make(chan amqp.Confirmation, 4))
	publish := func(key string, m amqp.Publishing) {
		t.Helper()
		must(ch2.PublishWithContext(context.Background(), "orders", key, false, false, m))
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish to %s not confirmed", key)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no confirm for %s", key)
		}
	}
	receive := func() amqp.Delivery {
		t.Helper()
		select {
		case d := <-deliveries:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
		return amqp.Delivery{}
	}
	publish("orders.created", amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent,
		Headers: amqp.Table{"trace": "abc"}, MessageId: "m-1", Body: []byte(`{"id":1}`)})
	must(receive().Ack(false))
	big := strings.Repeat("0123456789", 14000) // two body frames
	publish("orders.big", amqp.Publishing{Body: []byte(big)})
	if d := receive(); len(d.Body) != len(big) {
		t.Fatalf("delivered %d bytes, sent %d", len(d.Body), len(big))
	} else {
		must(d.Ack(false))
	}
	must(ch1.Cancel("pxq-consumer", false))
	publish("orders.get", amqp.Publishing{Body: []byte("one")})
	if _, ok, err := ch1.Get("pxq.orders", true); err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if _, ok, err := ch1.Get("pxq.orders", true); err != nil || ok {
		t.Fatalf("get on an empty queue: %v %v", ok, err)
	}
	ch3, err := conn.Channel()
	must(err)
	if _, err := ch3.QueueDeclarePassive("missing", false, false, false, false, nil); err == nil {
		t.Fatal("a passive declare of a missing queue succeeded")
	}
	must(ch1.Close())
	must(ch2.Close())
	must(conn.Close())

	props := `"properties":{"content_type":"application/json","headers":{"trace":"abc"},"delivery_mode":2,"message_id":"m-1"}`
	body := `,"body_size":8,` + props + `,"body":"{\"id\":1}"}`
	bigBody := `,"body_size":140000,"properties":{},"body":"` + big[:testConfig.MaxBodyBytes] + `"}`
	refused := `{"reply_code":404,"reply_text":"NOT_FOUND - no queue 'missing' in vhost '/'","class_id":50,"method_id":10}`
	closed := `{"reply_code":200,"reply_text":"","class_id":0,"method_id":0}`
	ack := func(ch, tag int64, client bool) want {
		m := lit(`{"delivery_tag":` + itoa(int(tag)) + `,"multiple":false}`)
		if client {
			return want{FrameType: 1, Channel: ch, ReqClass: basic, ReqMethod: 80, ReqMsg: m}
		}
		return want{FrameType: 1, Channel: ch, RespClass: basic, RespMethod: 80, RespMsg: m}
	}
	deliver := func(tag int, key, content string) want {
		return want{FrameType: 3, Channel: 1, RespClass: basic, RespMethod: 60,
			RespMsg: lit(`{"consumer_tag":"pxq-consumer","delivery_tag":` + itoa(tag) + `,"redelivered":false,"exchange":"orders","routing_key":"` + key + `"` + content)}
	}
	publishRow := func(key, content string) want {
		return want{FrameType: 3, Channel: 2, ReqClass: basic, ReqMethod: 40,
			ReqMsg: lit(`{"exchange":"orders","routing_key":"` + key + `","mandatory":false,"immediate":false` + content)}
	}
	sync := func(ch, rc, rm int64, req string, sc, sm int64, resp string) want {
		return want{FrameType: 1, Channel: ch, ReqClass: rc, ReqMethod: rm, ReqMsg: req, RespClass: sc, RespMethod: sm, RespMsg: resp, Sync: true}
	}
	return []want{
		// The connection: the broker asks (start, tune), the client asks
		// to open its virtual host.
		sync(0, connection, 11, `\{"client_properties":\{.*"connection_name":"pxq-test".*\},"mechanism":"PLAIN","response":"<hidden>","locale":"en_US"\}`,
			connection, 10, `\{"version_major":0,"version_minor":9,"server_properties":\{.*"product":"RabbitMQ".*\},"mechanisms":"[A-Z -]*PLAIN[A-Z -]*","locales":"en_US"\}`),
		sync(0, connection, 31, lit(`{"channel_max":2047,"frame_max":131072,"heartbeat":10}`), connection, 30, lit(`{"channel_max":2047,"frame_max":131072,"heartbeat":60}`)),
		sync(0, connection, 40, lit(`{"virtual_host":"/"}`), connection, 41, lit(`{}`)),
		sync(1, channel, 10, lit(`{}`), channel, 11, lit(`{}`)),
		sync(1, exchange, 10, lit(`{"exchange":"orders","type":"topic","passive":false,"durable":false,"auto_delete":true,"internal":false,"no_wait":false,"arguments":{}}`), exchange, 11, lit(`{}`)),
		sync(1, queue, 10, lit(`{"queue":"pxq.orders","passive":false,"durable":false,"exclusive":true,"auto_delete":false,"no_wait":false,"arguments":{"x-max-length":100}}`),
			queue, 11, lit(`{"queue":"pxq.orders","message_count":0,"consumer_count":0}`)),
		sync(1, queue, 20, lit(`{"queue":"pxq.orders","exchange":"orders","routing_key":"orders.*","no_wait":false,"arguments":{}}`), queue, 21, lit(`{}`)),
		sync(1, basic, 10, lit(`{"prefetch_size":0,"prefetch_count":10,"global":false}`), basic, 11, lit(`{}`)),
		sync(1, basic, 20, lit(`{"queue":"pxq.orders","consumer_tag":"pxq-consumer","no_local":false,"no_ack":false,"exclusive":false,"no_wait":false,"arguments":{}}`),
			basic, 21, lit(`{"consumer_tag":"pxq-consumer"}`)),
		sync(2, channel, 10, lit(`{}`), channel, 11, lit(`{}`)),
		sync(2, confirm, 10, lit(`{"no_wait":false}`), confirm, 11, lit(`{}`)),
		// Each publish, the broker's confirm, the delivery and its ack.
		publishRow("orders.created", body), ack(2, 1, false), deliver(1, "orders.created", body), ack(1, 1, true),
		publishRow("orders.big", bigBody), ack(2, 2, false), deliver(2, "orders.big", bigBody), ack(1, 2, true),
		sync(1, basic, 30, lit(`{"consumer_tag":"pxq-consumer","no_wait":false}`), basic, 31, lit(`{"consumer_tag":"pxq-consumer"}`)),
		publishRow("orders.get", `,"body_size":3,"properties":{},"body":"one"}`), ack(2, 3, false),
		{FrameType: 3, Channel: 1, ReqClass: basic, ReqMethod: 70, ReqMsg: lit(`{"queue":"pxq.orders","no_ack":true}`), RespClass: basic, RespMethod: 71,
			RespMsg: lit(`{"delivery_tag":3,"redelivered":false,"exchange":"orders","routing_key":"orders.get","message_count":0,"body_size":3,"properties":{},"body":"one"}`), Sync: true},
		sync(1, basic, 70, lit(`{"queue":"pxq.orders","no_ack":true}`), basic, 72, lit(`{}`)),
		// The broker refuses the passive declare by closing the channel;
		// the client's close-ok answers that close.
		sync(3, channel, 10, lit(`{}`), channel, 11, lit(`{}`)),
		sync(3, queue, 10, lit(`{"queue":"missing","passive":true,"durable":false,"exclusive":false,"auto_delete":false,"no_wait":false,"arguments":{}}`), channel, 40, lit(refused)),
		sync(3, channel, 41, lit(`{}`), channel, 40, lit(refused)),
		sync(1, channel, 40, lit(closed), channel, 41, lit(`{}`)),
		sync(2, channel, 40, lit(closed), channel, 41, lit(`{}`)),
		// amqp091-go says goodbye in its own words.
		sync(0, connection, 50, lit(`{"reply_code":200,"reply_text":"kthxbai","class_id":0,"method_id":0}`), connection, 51, lit(`{}`)),
	}
}

// trace runs the session against the broker and returns the rows it
// should make.
func traceSession(t *testing.T, b *broker) []want { return session(t, b.url()) }

// TestTraceAMQPBothSides traces rabbitmq-server and the amqp091-go
// client (this process), recording both sides: every row on each.
func TestTraceAMQPBothSides(t *testing.T) {
	b := startRabbitMQ(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(b.Pid), uint32(os.Getpid())}, AllClientSides: true})
	wants := traceSession(t, b)
	for _, side := range []struct {
		name string
		keep func(map[string]any) bool
	}{{"client", ebpftest.ClientRow(b.Port)}, {"server", ebpftest.ServerRow(b.Port)}} {
		got := ebpftest.WaitRows(t, store, pamqp.Table.Name(), len(wants), 5*time.Second, side.keep)
		t.Run(side.name, func(t *testing.T) { amqptest.Check(t, got, wants) })
		t.Logf("%s: %d rows for %d methods and pairs", side.name, len(got), len(wants))
	}
}

// TestTraceAMQPServerSide traces both ends with the default
// configuration: the broker's rows are kept, its client's left out.
func TestTraceAMQPServerSide(t *testing.T) {
	b := startRabbitMQ(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(b.Pid), uint32(os.Getpid())}})
	wants := traceSession(t, b)
	got := ebpftest.WaitRows(t, store, pamqp.Table.Name(), len(wants), 5*time.Second, ebpftest.ServerRow(b.Port))
	amqptest.Check(t, got, wants)
	t.Logf("server: %d rows for %d methods and pairs", len(got), len(wants))
	if n := len(ebpftest.WaitRows(t, store, pamqp.Table.Name(), 0, 0, ebpftest.ClientRow(b.Port))); n != 0 {
		t.Errorf("%d client rows, want none (the broker is traced)", n)
	}
}

// TestTraceAMQPClientSide traces the client alone.
func TestTraceAMQPClientSide(t *testing.T) {
	b := startRabbitMQ(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{})
	wants := traceSession(t, b)
	got := ebpftest.WaitRows(t, store, pamqp.Table.Name(), len(wants), 5*time.Second, ebpftest.ClientRow(b.Port))
	amqptest.Check(t, got, wants)
	t.Logf("client: %d rows for %d methods and pairs", len(got), len(wants))
}

// TestTraceAMQPLoad traces the broker while a publisher sends as fast
// as it can and a consumer acks every delivery, in two shapes:
//
//   - confirmed: the publisher keeps at most 256 messages unconfirmed
//     and the consumer at most 256 unacked (prefetch), as careful
//     clients do: each publish, delivery and ack must be a row, with its
//     body.
//   - unbounded: no confirms and no prefetch. The broker then reads its
//     socket in calls of hundreds of kilobytes, beyond the 64 KiB the
//     tracer copies of one call (truncated_bytes): the frames in the
//     bytes not copied are lost. Every row that lands must be right (a
//     publish whose body was cut keeps its body size).
func TestTraceAMQPLoad(t *testing.T) {
	b := startRabbitMQ(t)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(b.Pid), uint32(os.Getpid())}})
	for _, shape := range []struct {
		name   string
		window int
	}{{"confirmed", 256}, {"unbounded", 0}} {
		t.Run(shape.name, func(t *testing.T) {
			before := tr.Stats()
			port, n, qlen := load(t, b, shape.window)
			after := settle(tr)
			truncated := after.TruncatedBytes - before.TruncatedBytes
			cut := after.Counters["amqp.content_cut_by_gap"] - before.Counters["amqp.content_cut_by_gap"]
			content := `"body_size":64,"properties":{},"body":"` + loadBody + `"}`
			// The client's bytes of a publish (its method, header and
			// body frames) and of an ack, to account for what was lost.
			size := map[string]int64{"publish": 8 + 9 + int64(qlen) + 8 + 14 + 8 + int64(len(loadBody)), "ack": 8 + 13}
			var lost int64
			for _, k := range []struct {
				name          string
				client        bool
				class, method int64
				content       bool
			}{{"publish", true, 60, 40, true}, {"deliver", false, 60, 60, true}, {"ack", true, 60, 80, false}} {
				msgCol, classCol, methodCol := "resp_msg", "resp_class_id", "resp_method_id"
				if k.client {
					msgCol, classCol, methodCol = "req_msg", "req_class_id", "req_method_id"
				}
				wait := 10 * time.Second
				if truncated > 0 {
					wait = time.Second // rows are missing: wait for the flush only
				}
				rows := ebpftest.WaitRows(t, store, pamqp.Table.Name(), n, wait, func(r map[string]any) bool {
					return ebpftest.ServerRow(b.Port)(r) && r["remote_port"] == int64(port) && r[classCol] == k.class && r[methodCol] == k.method
				})
				bad := 0
				for _, r := range rows {
					if k.content != strings.HasSuffix(r[msgCol].(string), content) {
						bad++
					}
				}
				t.Logf("%s: %d rows for %d messages (%d wrong)", k.name, len(rows), n, bad)
				lost += int64(n-len(rows)) * size[k.name]
				switch {
				case truncated == 0 && (len(rows) != n || bad != 0):
					t.Errorf("%s: %d rows (%d wrong), want %d", k.name, len(rows), bad, n)
				case truncated > 0 && (len(rows) > n || int64(bad) > cut):
					t.Errorf("%s: %d rows, %d wrong (%d cut by a gap), want at most %d", k.name, len(rows), bad, cut, n)
				}
			}
			gaps := after.Counters["amqp.gap_resyncs"] - before.Counters["amqp.gap_resyncs"]
			t.Logf("truncated bytes %d, lost events %d, gaps %d, contents cut by a gap %d; the client's rows missing are %d bytes",
				truncated, after.LostEvents-before.LostEvents, gaps, cut, lost)
			// What the missing rows were sent in is the bytes not copied,
			// give or take the frames a gap cut in two.
			// (The parser's count of gaps can lag the reader's count of
			// bytes: one gap at least when bytes were truncated.)
			if slack := max(gaps, int64(min(truncated, 1))) * 2 * size["publish"]; lost < int64(truncated)-slack || lost > int64(truncated)+slack {
				t.Errorf("rows of %d bytes missing for %d bytes truncated", lost, truncated)
			}
			if shape.window > 0 && truncated > 0 {
				t.Errorf("%d bytes truncated with at most %d messages in flight", truncated, shape.window)
			}
		})
	}
}

var loadBody = strings.Repeat("m", 64)

// load publishes n messages to a queue of its own and consumes them,
// keeping at most window unconfirmed and unacked (none when 0), on a
// connection of its own whose local port it returns, with the length
// of its queue's name.
func load(t *testing.T, b *broker, window int) (port, n, qlen int) {
	n = 5000
	conn, err := amqp.Dial(b.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port = conn.LocalAddr().(*net.TCPAddr).Port
	sub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if window > 0 {
		if err := sub.Qos(window, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	q, err := sub.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := sub.Consume(q.Name, "load", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var confirms chan amqp.Confirmation
	if window > 0 {
		if err := pub.Confirm(false); err != nil {
			t.Fatal(err)
		}
		confirms = pub.NotifyPublish(make(chan amqp.Confirmation, n))
	}
	acked := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			select {
			case d := <-deliveries:
				if err := d.Ack(false); err != nil {
					acked <- err
					return
				}
			case <-time.After(20 * time.Second):
				acked <- fmt.Errorf("the consumer got %d of %d messages", i, n)
				return
			}
		}
		acked <- nil
	}()
	inFlight := 0
	for i := 0; i < n; i++ {
		if window > 0 && inFlight == window {
			if c := <-confirms; !c.Ack {
				t.Fatalf("message %d not confirmed", c.DeliveryTag)
			}
			inFlight--
		}
		if err := pub.PublishWithContext(context.Background(), "", q.Name, false, false, amqp.Publishing{Body: []byte(loadBody)}); err != nil {
			t.Fatal(err)
		}
		inFlight++
	}
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	return port, n, len(q.Name)
}
