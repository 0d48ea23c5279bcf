package mysql

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/types"
)

// target is the parser under test, with its server on MySQL's port:
// target.Side is one connection's parser, traced on one side, with its
// rows in a real mysql_events table.
var target = dbtest.Target{Protocol: Protocol{}, Port: 3306}

// pkt builds a wire packet.
func pkt(seq byte, payload ...[]byte) []byte {
	var p []byte
	for _, x := range payload {
		p = append(p, x...)
	}
	b := []byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq}
	return append(b, p...)
}

// cat joins messages (or their parts).
func cat(bs ...[]byte) []byte { return slices.Concat(bs...) }

func le16(v int) []byte    { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
func le32(v int) []byte    { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func s(v string) []byte    { return []byte(v) }

var (
	okPkt    = []byte{0, 0, 0, 2, 0, 0, 0}
	eofPkt   = []byte{0xfe, 0, 0, 2, 0}
	colDef   = s("\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00")
	okEOFPkt = []byte{0xfe, 0, 0, 2, 0, 0, 0} // the OK that ends a result set with CLIENT_DEPRECATE_EOF
)

// greeting is a server handshake with capabilities caps.
func greeting(caps uint32) []byte {
	return pkt(0, s("\x0a8.0.36\x00"), le32(7), s("abcdefgh\x00"), le16(int(caps&0xffff)), s("\x21\x02\x00"),
		le16(int(caps>>16)), s("\x15"), make([]byte, 10), s("ijklmnopqrst\x00mysql_native_password\x00"))
}

// handshakeResponse is a client's answer with capabilities caps.
func handshakeResponse(caps uint32) []byte {
	return pkt(1, le32(int(caps)), le32(1<<24), s("\x21"), make([]byte, 23), s("pxq\x00\x00pxq\x00"))
}

// TestReplay replays the recorded sessions of the mariadb client,
// mariadb-admin and Perl's DBD::MariaDB, as read and cut at every byte
// and at odd sizes, on both sides.
func TestReplay(t *testing.T) {
	for _, c := range []struct {
		file string
		rows []want
	}{
		{"mariadb", mariadbRows[:len(mariadbRows)-4]},
		{"mariadb_admin", mariadbRows[len(mariadbRows)-4 : len(mariadbRows)-2]},
		{"perl_prepared", perlRows},
	} {
		target.CheckReplay(t, c.file, dbtest.Replay(t, "testdata/"+c.file+".bin"), []int{0, 1, 2, 3, 5, 64},
			func(rows []map[string]any) { check(t, rows, c.rows) })
	}
}

// TestEveryColumn checks every column of a row.
func TestEveryColumn(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Conn.UPID = types.UInt128Value{High: 5, Low: 6}
	h.Send(true, pkt(0, s("\x03select 1")), 0)
	start := h.TS
	h.Send(false, cat(pkt(1, s("\x01")), pkt(2, colDef), pkt(3, eofPkt), pkt(4, s("\x011")), pkt(5, eofPkt)), 0)
	dbtest.CheckEveryColumn(t, h.Rows(), Table, map[string]any{
		"time_": h.TS, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(3306),
		"trace_role": int64(1), "encrypted": false,
		"req_cmd": int64(3), "req_body": "select 1", "resp_status": int64(2), "resp_body": "columns=1 rows=1", "latency": h.TS - start,
	})
}

// TestDeprecateEOF: with CLIENT_DEPRECATE_EOF agreed, result sets and
// prepares have no EOF packets; an empty result ends with an OK.
func TestDeprecateEOF(t *testing.T) {
	caps := uint32(capProtocol41 | capDeprecateEOF | 0x80000)
	h := target.Side(t, protocols.RoleServer, dbtest.Config)
	h.Send(false, greeting(caps|capMySQL), 0)
	h.Send(true, handshakeResponse(caps|capMySQL), 0)
	h.Send(false, pkt(2, okPkt), 0)
	h.Send(true, pkt(0, s("\x03select a from t")), 0)
	h.Send(false, cat(pkt(1, s("\x01")), pkt(2, colDef), pkt(3, s("\x01x")), pkt(4, s("\x01y")), pkt(5, okEOFPkt)), 0)
	h.Send(true, pkt(0, s("\x03select a from t where 0")), 0)
	h.Send(false, cat(pkt(1, s("\x01")), pkt(2, colDef), pkt(3, okEOFPkt)), 0)
	h.Send(true, pkt(0, s("\x16select ? + ?")), 0)
	h.Send(false, cat(pkt(1, s("\x00"), le32(9), le16(1), le16(2), s("\x00"), le16(0)), pkt(2, colDef), pkt(3, colDef), pkt(4, colDef)), 0)
	h.Send(true, pkt(0, s("\x0e")), 0)
	h.Send(false, pkt(1, okPkt), 0)
	check(t, h.Rows(), []want{
		{comQuery, "select a from t", statusOK, "columns=1 rows=2"},
		{comQuery, "select a from t where 0", statusOK, "columns=1 rows=0"},
		{comStmtPrepare, "select ? + ?", statusOK, "stmt_id=9 params=2 columns=1"},
		{comPing, "", statusOK, "affected_rows=0"},
	})
	if c := h.Parser.(*conn); !c.capsKnown || c.caps&capDeprecateEOF == 0 {
		t.Errorf("capabilities %x known %v", c.caps, c.capsKnown)
	}
}

// TestMidStreamPrepare: without the handshake the capabilities are not
// known; a prepare's trailing EOF (sequence > 1) is skipped whether or
// not it comes.
func TestMidStreamPrepare(t *testing.T) {
	for _, eof := range []bool{false, true} {
		h := target.Side(t, protocols.RoleClient, dbtest.Config)
		h.Send(true, pkt(0, s("\x16insert into t values (?)")), 0)
		resp := cat(pkt(1, s("\x00"), le32(4), le16(0), le16(1), s("\x00"), le16(0)), pkt(2, colDef))
		if eof {
			resp = cat(resp, pkt(3, eofPkt))
		}
		h.Send(false, resp, 0)
		h.Send(true, pkt(0, s("\x17"), le32(4), s("\x00"), le32(1), s("\x00\x01"), s("\x08\x00"), le64(42)), 0)
		h.Send(false, pkt(1, s("\x00\x01\x00\x02\x00\x00\x00")), 0)
		check(t, h.Rows(), []want{
			{comStmtPrepare, "insert into t values (?)", statusOK, "stmt_id=4 params=1 columns=0"},
			{comStmtExecute, "query=[insert into t values (?)] params=[42]", statusOK, "affected_rows=1"},
		})
	}
}

// TestExecuteValues decodes bound values of each binary type, NULLs
// from the bitmap, types carried from an earlier execute, and MariaDB's
// "last prepared" statement id.
func TestExecuteValues(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, pkt(0, s("\x16select ?,?,?,?,?,?,?,?,?")), 0)
	h.Send(false, cat(pkt(1, s("\x00"), le32(1), le16(0), le16(9), s("\x00"), le16(0)),
		pkt(2, colDef), pkt(3, colDef), pkt(4, colDef), pkt(5, colDef), pkt(6, colDef), pkt(7, colDef), pkt(8, colDef), pkt(9, colDef), pkt(10, colDef), pkt(11, eofPkt)), 0)
	types := s("\x01\x00\x02\x80\x03\x00\x08\x00\x05\x00\xfd\x00\x0c\x00\x0b\x00\xf6\x00")
	vals := cat(s("\xfe"), le16(65535), le32(-5), le64(1<<60), le64(math.Float64bits(2.5)), s("\x05hello"),
		s("\x07"), le16(2024), s("\x02\x1d\x0c\x22\x38"), s("\x08\x01"), le32(1), s("\x02\x03\x04"), s("\x041.50"))
	nulls := []byte{0, 0} // 9 parameters: 2 bytes
	h.Send(true, pkt(0, s("\x17"), le32(1), s("\x00"), le32(1), nulls, s("\x01"), types, vals), 0)
	h.Send(false, pkt(1, okPkt), 0)
	// Again, with parameter 2 NULL and the types not sent, by id -1.
	vals2 := cat(s("\x01"), le32(7), le64(1), le64(math.Float64bits(0)), s("\x00"), s("\x00"), s("\x00"), s("\x010"))
	h.Send(true, pkt(0, s("\x17"), le32(-1), s("\x00"), le32(1), []byte{0x02, 0}, s("\x00"), vals2), 0)
	h.Send(false, pkt(1, okPkt), 0)
	rows := h.Rows()
	check(t, rows[1:], []want{
		{comStmtExecute, "query=[select ?,?,?,?,?,?,?,?,?] params=[-2, 65535, -5, 1152921504606846976, 2.5, hello, 2024-02-29 12:34:56, -26:03:04, 1.50]", statusOK, "affected_rows=0"},
		{comStmtExecute, "query=[select ?,?,?,?,?,?,?,?,?] params=[1, NULL, 7, 1, 0, , 0000-00-00 00:00:00, 00:00:00, 0]", statusOK, "affected_rows=0"},
	})
}

// TestMultiPacket: a command of more than 16 MiB spans two wire packets;
// its response starts at sequence 2. The payload is kept to the bound.
func TestMultiPacket(t *testing.T) {
	h := target.Side(t, protocols.RoleServer, dbtest.Config)
	q := append(s("\x03select '"), make([]byte, maxWire)...)
	q = append(q, "'"...)
	first := cat([]byte{0xff, 0xff, 0xff, 0}, q[:maxWire])
	second := pkt(1, q[maxWire:])
	h.Send(true, cat(first, second), 1<<16)
	h.Send(false, pkt(2, okPkt), 0)
	rows := h.Rows()
	if len(rows) != 1 || rows[0]["resp_status"] != int64(statusOK) || len(rows[0]["req_body"].(string)) != dbtest.Config.MaxHeaderBytes {
		t.Fatalf("rows %d, %v", len(rows), rows)
	}
	// Exactly 16 MiB − 1: an empty wire packet ends it.
	q = append(s("\x03"), make([]byte, maxWire-1)...)
	h.Send(true, cat([]byte{0xff, 0xff, 0xff, 0}, q, pkt(1)), 0)
	h.Send(false, pkt(2, s("\xff\x99\x04#08S01Got a packet bigger than 'max_allowed_packet' bytes")), 0)
	rows = h.Rows()
	if len(rows) != 2 || rows[1]["resp_body"] != "ERROR 1177 (08S01): Got a packet bigger than 'max_allowed_packet' bytes" {
		t.Fatalf("rows %v", rows[1:])
	}
}

// TestGaps: bytes lost inside a row keep the response; lost across
// packets, the next response pairs with the last command sent before it.
func TestGaps(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, pkt(0, s("\x03select big")), 0)
	row := pkt(4, s("\xfc\x10\x27"), make([]byte, 10000))
	h.Send(false, cat(pkt(1, s("\x01")), pkt(2, colDef), pkt(3, eofPkt), row[:100]), 0)
	h.Parser.Gap(protocols.Ingress, 5000)
	h.Send(false, cat(row[5100:], pkt(5, eofPkt)), 0)
	h.Send(true, pkt(0, s("\x03select 1")), 0)
	h.Send(false, cat(pkt(1, s("\x01")), pkt(2, colDef)), 0)
	h.Parser.Gap(protocols.Ingress, 20)
	h.Send(true, pkt(0, s("\x03select 2")), 0)
	h.Send(false, cat(pkt(1, okPkt)), 0)
	check(t, h.Rows(), []want{
		{comQuery, "select big", statusOK, "columns=1 rows=1"},
		{comQuery, "select 2", statusOK, "affected_rows=0"},
	})
	if h.Counts["gap_resyncs"] != 1 || h.Counts["requests_lost_in_gap"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestSSLRequest: the client asks for TLS; nothing more is parsed.
func TestSSLRequest(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(false, greeting(capProtocol41|capSSL|capMySQL), 0)
	h.Send(true, pkt(1, le32(capProtocol41|capSSL|capMySQL), le32(1<<24), s("\x21"), make([]byte, 23)), 0)
	h.Send(true, s("\x16\x03\x01\x02\x00"), 0)
	h.Send(false, pkt(1, okPkt), 0)
	if len(h.Rows()) != 0 || h.Counts["tls_conns"] != 1 {
		t.Fatalf("rows %v counters %v", h.Rows(), h.Counts)
	}
}

// TestLocalInfileAndProgress: LOCAL INFILE's data from the client is not
// a command; MariaDB's progress reports are not errors.
func TestLocalInfileAndProgress(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, pkt(0, s("\x03load data local infile 'x.csv' into table t")), 0)
	h.Send(false, pkt(1, s("\xfbx.csv")), 0)
	h.Send(true, cat(pkt(2, s("1,a\n2,b\n")), pkt(3)), 0)
	h.Send(false, pkt(4, s("\x00\x02\x00\x02\x00\x00\x00")), 0)
	h.Send(true, pkt(0, s("\x03alter table t add c int")), 0)
	h.Send(false, cat(pkt(1, s("\xff\xff\xff\x01\x01\x00\x00\x00")), pkt(2, okPkt)), 0)
	check(t, h.Rows(), []want{
		{comQuery, "load data local infile 'x.csv' into table t", statusOK, "LOCAL INFILE x.csv; affected_rows=2"},
		{comQuery, "alter table t add c int", statusOK, "affected_rows=0"},
	})
}

func TestCloseAndTimeout(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, pkt(0, s("\x03select sleep(100)")), 0)
	h.Parser.Poll(h.TS + dbtest.Config.RequestTimeout.Nanoseconds() + 1)
	if h.Parser.Pending() != 0 || h.Counts["requests_timed_out"] != 1 {
		t.Fatalf("pending %d counters %v", h.Parser.Pending(), h.Counts)
	}
	h.Send(true, pkt(0, s("\x03select 3")), 0)
	h.Parser.Close(h.TS)
	if h.Counts["closed_before_response"] != 1 || len(h.Rows()) != 0 {
		t.Fatalf("counters %v", h.Counts)
	}
}
