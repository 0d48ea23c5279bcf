package realclient

// The responder: a server of the CQL native protocol (v3 and v4, from
// the protocol's specification) that answers what gocql sends, so that
// the parser and the tracer see a real client's frames without a
// Cassandra server (none can be installed here). It keeps one table,
// ks.users (id uuid, name text, age int), in memory.

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The statements the responder knows, as the session sends them.
const (
	qLocal        = "SELECT * FROM system.local WHERE key='local'"
	qPeers        = "SELECT * FROM system.peers"
	qSchema       = "SELECT schema_version FROM system.local WHERE key='local'"
	qCreate       = "CREATE TABLE IF NOT EXISTS ks.users (id uuid PRIMARY KEY, name text, age int)"
	qInsert       = "INSERT INTO ks.users (id, name, age) VALUES (?, ?, ?)"
	qSelectOne    = "SELECT name, age FROM ks.users WHERE id = ?"
	qSelectAll    = "SELECT name FROM ks.users"
	qMissing      = "SELECT * FROM ks.missing"
	qSeries       = "SELECT v FROM ks.series WHERE n = ?"
	errUnconf     = "unconfigured table missing"
	schemaVersion = "\x5e\x1a\x2b\x3c\x4d\x5e\x4f\x60\x8a\x9b\xac\xbd\xce\xdf\xe0\xf1"
	hostID        = "\x11\x22\x33\x44\x55\x66\x47\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00"
)

// Data type ids of [option].
const (
	tyBigint  = 0x0002
	tyInt     = 0x0009
	tyUUID    = 0x000c
	tyVarchar = 0x000d
	tyInet    = 0x0010
	tySet     = 0x0022
)

type col struct {
	name string
	typ  uint16
	sub  uint16 // a set's element type
}

// stmt is a statement the responder prepares: its bind markers and
// result columns.
type stmt struct {
	query   string
	binds   []col
	results []col
}

var preparable = []stmt{
	{query: qInsert, binds: []col{{"id", tyUUID, 0}, {"name", tyVarchar, 0}, {"age", tyInt, 0}}},
	{query: qSelectOne, binds: []col{{"id", tyUUID, 0}}, results: []col{{"name", tyVarchar, 0}, {"age", tyInt, 0}}},
	{query: qSelectAll, results: []col{{"name", tyVarchar, 0}}},
	// Answered with n rows, after a random delay, concurrently: the
	// answers of pipelined requests come out of order.
	{query: qSeries, binds: []col{{"n", tyInt, 0}}, results: []col{{"v", tyInt, 0}}},
}

func preparedID(q string) []byte { s := md5.Sum([]byte(q)); return s[:] }

var localCols = []col{
	{"key", tyVarchar, 0}, {"bootstrapped", tyVarchar, 0}, {"broadcast_address", tyInet, 0},
	{"cluster_name", tyVarchar, 0}, {"cql_version", tyVarchar, 0}, {"data_center", tyVarchar, 0},
	{"host_id", tyUUID, 0}, {"listen_address", tyInet, 0}, {"partitioner", tyVarchar, 0},
	{"rack", tyVarchar, 0}, {"release_version", tyVarchar, 0}, {"rpc_address", tyInet, 0},
	{"schema_version", tyUUID, 0}, {"tokens", tySet, tyVarchar},
}

var peerCols = []col{
	{"peer", tyInet, 0}, {"data_center", tyVarchar, 0}, {"host_id", tyUUID, 0}, {"preferred_ip", tyInet, 0},
	{"rack", tyVarchar, 0}, {"release_version", tyVarchar, 0}, {"rpc_address", tyInet, 0},
	{"schema_version", tyUUID, 0}, {"tokens", tySet, tyVarchar},
}

// enc builds a message body in the protocol's notations.
type enc struct{ b []byte }

func (e *enc) short(v int)         { e.b = binary.BigEndian.AppendUint16(e.b, uint16(v)) }
func (e *enc) int(v int)           { e.b = binary.BigEndian.AppendUint32(e.b, uint32(int32(v))) }
func (e *enc) str(s string)        { e.short(len(s)); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte)      { e.int(len(b)); e.b = append(e.b, b...) }
func (e *enc) shortBytes(b []byte) { e.short(len(b)); e.b = append(e.b, b...) }
func (e *enc) option(c col) {
	e.short(int(c.typ))
	if c.typ == tySet {
		e.short(int(c.sub))
	}
}

// metadata writes result metadata with a global table spec.
func (e *enc) metadata(ks, table string, cols []col, noMetadata bool) {
	flags := 0x0001
	if noMetadata {
		flags = 0x0004
	}
	e.int(flags)
	e.int(len(cols))
	if noMetadata {
		return
	}
	e.str(ks)
	e.str(table)
	for _, c := range cols {
		e.str(c.name)
		e.option(c)
	}
}

func rows(ks, table string, cols []col, noMetadata bool, data [][][]byte) []byte {
	var e enc
	e.int(2)
	e.metadata(ks, table, cols, noMetadata)
	e.int(len(data))
	for _, r := range data {
		for _, v := range r {
			if v == nil {
				e.int(-1)
			} else {
				e.bytes(v)
			}
		}
	}
	return e.b
}

func localRow() [][]byte {
	ip := []byte{127, 0, 0, 1}
	var set enc
	set.int(1)
	set.bytes([]byte("0"))
	return [][]byte{[]byte("local"), []byte("COMPLETED"), ip, []byte("pxq"), []byte("3.4.4"), []byte("dc1"),
		[]byte(hostID), ip, []byte("org.apache.cassandra.dht.Murmur3Partitioner"), []byte("rack1"),
		[]byte("3.11.16"), ip, []byte(schemaVersion), set.b}
}

// dec reads a request body.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = io.ErrUnexpectedEOF
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}
func (d *dec) short() int {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(p))
}
func (d *dec) int() int {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return int(int32(binary.BigEndian.Uint32(p)))
}
func (d *dec) value() []byte {
	n := d.int()
	if n < 0 {
		return nil
	}
	return d.take(n)
}

// params reads query parameters (v3/v4) and returns the values and
// whether the client asked to skip the result metadata.
func (d *dec) params() (values [][]byte, skipMeta bool) {
	d.short()
	flags := d.take(1)
	if flags == nil {
		return nil, false
	}
	if flags[0]&0x01 != 0 {
		for n := d.short(); n > 0; n-- {
			values = append(values, d.value())
		}
	}
	return values, flags[0]&0x02 != 0
}

// responder is the server's state: the users table and the connections
// that registered for events.
type responder struct {
	mu         sync.Mutex
	users      map[string][2][]byte // id → name, age
	order      []string
	registered []*respConn
	log        io.Writer
}

type respConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (rc *respConn) write(version byte, stream int16, op byte, body []byte) error {
	h := []byte{version | 0x80, 0, 0, 0, op, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(stream))
	binary.BigEndian.PutUint32(h[5:], uint32(len(body)))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	// One write per message, as a server's framing does.
	_, err := rc.c.Write(append(h, body...))
	return err
}

func (s *responder) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go s.conn(&respConn{c: c})
	}
}

func (s *responder) conn(rc *respConn) {
	defer rc.c.Close()
	for {
		h := make([]byte, 9)
		if _, err := io.ReadFull(rc.c, h); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(h[5:]))
		if _, err := io.ReadFull(rc.c, body); err != nil {
			return
		}
		version, stream, op := h[0], int16(binary.BigEndian.Uint16(h[2:])), h[4]
		if op == 0x0a && bytes.Contains(body, preparedID(qSeries)) {
			go func() {
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				rop, resp, _ := s.answer(rc, version, op, body)
				rc.write(version, stream, rop, resp)
			}()
			continue
		}
		rop, resp, event := s.answer(rc, version, op, body)
		if err := rc.write(version, stream, rop, resp); err != nil {
			return
		}
		if event {
			s.pushEvent(version)
		}
	}
}

func errorBody(code int, msg string) []byte {
	var e enc
	e.int(code)
	e.str(msg)
	return e.b
}

// answer returns the response to a request, and whether the registered
// connections are to be told of a schema change after it.
func (s *responder) answer(rc *respConn, version, op byte, body []byte) (byte, []byte, bool) {
	d := &dec{b: body}
	switch op {
	case 0x05: // OPTIONS
		var e enc
		e.short(2)
		e.str("COMPRESSION")
		e.short(0)
		e.str("CQL_VERSION")
		e.short(1)
		e.str("3.4.4")
		return 0x06, e.b, false
	case 0x01: // STARTUP
		return 0x02, nil, false
	case 0x0b: // REGISTER
		s.mu.Lock()
		s.registered = append(s.registered, rc)
		s.mu.Unlock()
		return 0x02, nil, false
	case 0x07: // QUERY
		q := string(d.take(d.int()))
		_, skip := d.params()
		return s.query(q, nil, skip)
	case 0x09: // PREPARE
		q := string(d.take(d.int()))
		for _, st := range preparable {
			if st.query == q {
				var e enc
				e.int(4)
				e.shortBytes(preparedID(q))
				e.int(0x0001)
				e.int(len(st.binds))
				if version >= 4 {
					e.int(1) // one partition key, the first marker
					e.short(0)
				}
				e.str("ks")
				e.str("users")
				for _, c := range st.binds {
					e.str(c.name)
					e.option(c)
				}
				if st.results == nil {
					e.int(0x0004)
					e.int(0)
				} else {
					e.metadata("ks", "users", st.results, false)
				}
				return 0x08, e.b, false
			}
		}
		if q == qMissing {
			return 0x00, errorBody(0x2200, errUnconf), false
		}
		return 0x00, errorBody(0x2000, "line 1:0 no viable alternative: "+q), false
	case 0x0a: // EXECUTE
		id := d.take(d.short())
		values, skip := d.params()
		for _, st := range preparable {
			if bytes.Equal(preparedID(st.query), id) {
				return s.query(st.query, values, skip)
			}
		}
		var e enc
		e.int(0x2500)
		e.str("prepared statement not found")
		e.shortBytes(id)
		return 0x00, e.b, false
	case 0x0d: // BATCH
		d.take(1)
		for n := d.short(); n > 0 && d.err == nil; n-- {
			var q string
			if d.take(1)[0] == 0 {
				q = string(d.take(d.int()))
			} else {
				id := d.take(d.short())
				for _, st := range preparable {
					if bytes.Equal(preparedID(st.query), id) {
						q = st.query
					}
				}
			}
			var values [][]byte
			for k := d.short(); k > 0; k-- {
				values = append(values, d.value())
			}
			if q == qInsert {
				s.insert(values)
			}
		}
		var e enc
		e.int(1)
		return 0x08, e.b, false
	}
	return 0x00, errorBody(0x000a, fmt.Sprintf("unexpected opcode %d", op)), false
}

func (s *responder) insert(values [][]byte) {
	if len(values) != 3 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := string(values[0])
	if _, ok := s.users[id]; !ok {
		s.order = append(s.order, id)
	}
	s.users[id] = [2][]byte{values[1], values[2]}
}

func (s *responder) query(q string, values [][]byte, skipMeta bool) (byte, []byte, bool) {
	var e enc
	switch q {
	case qLocal:
		return 0x08, rows("system", "local", localCols, false, [][][]byte{localRow()}), false
	case qPeers:
		return 0x08, rows("system", "peers", peerCols, false, nil), false
	case qSchema:
		return 0x08, rows("system", "local", []col{{"schema_version", tyUUID, 0}}, false, [][][]byte{{[]byte(schemaVersion)}}), false
	case qCreate:
		e.int(5)
		e.str("CREATED")
		e.str("TABLE")
		e.str("ks")
		e.str("users")
		return 0x08, e.b, true
	case qInsert:
		s.insert(values)
		e.int(1)
		return 0x08, e.b, false
	case qSelectOne:
		s.mu.Lock()
		u, ok := s.users[string(values[0])]
		s.mu.Unlock()
		var data [][][]byte
		if ok {
			data = append(data, [][]byte{u[0], u[1]})
		}
		return 0x08, rows("ks", "users", preparable[1].results, skipMeta, data), false
	case qSelectAll:
		s.mu.Lock()
		var data [][][]byte
		for _, id := range s.order {
			data = append(data, [][]byte{s.users[id][0]})
		}
		s.mu.Unlock()
		return 0x08, rows("ks", "users", preparable[2].results, skipMeta, data), false
	case qMissing:
		return 0x00, errorBody(0x2200, errUnconf), false
	case qSeries:
		n := int(int32(binary.BigEndian.Uint32(values[0])))
		data := make([][][]byte, n)
		for i := range data {
			data[i] = [][]byte{binary.BigEndian.AppendUint32(nil, uint32(i))}
		}
		return 0x08, rows("ks", "series", preparable[3].results, skipMeta, data), false
	}
	return 0x00, errorBody(0x2000, "unknown statement: "+q), false
}

// pushEvent tells the registered connections that ks.users was created.
func (s *responder) pushEvent(version byte) {
	var e enc
	e.str("SCHEMA_CHANGE")
	e.str("CREATED")
	e.str("TABLE")
	e.str("ks")
	e.str("users")
	s.mu.Lock()
	conns := append([]*respConn(nil), s.registered...)
	s.mu.Unlock()
	for _, rc := range conns {
		rc.write(version, -1, 0x0c, e.b)
	}
}

// responderEnv names the file a re-executed test binary writes its
// responder's address to.
const responderEnv = "PXQ_CQL_RESPONDER"

func TestMain(m *testing.M) {
	if path := os.Getenv(responderEnv); path != "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		err = os.WriteFile(path+".tmp", []byte(l.Addr().String()), 0o600)
		if err == nil {
			err = os.Rename(path+".tmp", path)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		(&responder{users: map[string][2][]byte{}}).serve(l)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// server is a responder running in a process of its own (this test
// binary again), so that the client and the server sides are two
// processes, as the tracer sees a real deployment.
type server struct {
	Addr string
	Port int
	Pid  int
}

func startResponder(t testing.TB) *server {
	t.Helper()
	path := t.TempDir() + "/addr"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), responderEnv+"="+path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			continue
		}
		addr := strings.TrimSpace(string(b))
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return &server{Addr: addr, Port: a.Port, Pid: cmd.Process.Pid}
	}
	t.Fatal("the responder did not start")
	return nil
}
