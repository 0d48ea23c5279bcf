package http

import (
	"net/netip"
	"slices"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is http_events: one row per HTTP/1.x request and its response
// (and per HTTP/2 stream: protocols/http2 writes them through Cols), seen
// from the traced side.
var Table = table.Declare("http_events", "HTTP requests and their responses, traced from socket syscalls", &cols)

// cols are the columns of http_events, in order.
var cols struct {
	protocols.ConnColumns
	MajorVersion table.Int64Col  `col:"major_version" desc:"HTTP major version"`
	MinorVersion table.Int64Col  `col:"minor_version" desc:"HTTP minor version"`
	ContentType  table.Int64Col  `col:"content_type" desc:"0 unknown, 1 JSON, 2 gRPC"`
	ReqHeaders   table.StringCol `col:"req_headers" desc:"Request headers as a JSON object"`
	ReqMethod    table.StringCol `col:"req_method" sem:"ST_HTTP_REQ_METHOD" desc:"Request method"`
	ReqPath      table.StringCol `col:"req_path" desc:"Request path with query"`
	ReqBody      table.StringCol `col:"req_body" desc:"Request body, truncated"`
	ReqBodySize  table.Int64Col  `col:"req_body_size" sem:"ST_BYTES" desc:"Request body size before truncation"`
	RespHeaders  table.StringCol `col:"resp_headers" desc:"Response headers as a JSON object"`
	RespStatus   table.Int64Col  `col:"resp_status" sem:"ST_HTTP_RESP_STATUS" desc:"Response status code"`
	RespMessage  table.StringCol `col:"resp_message" sem:"ST_HTTP_RESP_MESSAGE" desc:"Response reason phrase"`
	RespBody     table.StringCol `col:"resp_body" desc:"Response body, truncated"`
	RespBodySize table.Int64Col  `col:"resp_body_size" sem:"ST_BYTES" desc:"Response body size before truncation"`
	Latency      table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the request's first byte to the response's last"`
}

// Cols are the column handles of http_events, for the protocols besides
// HTTP/1.x that write its rows (HTTP/2).
var Cols = &cols

// AppendHeadersJSON appends headers as the JSON object of req_headers and
// resp_headers: sorted by name, repeated names joined by commas.
func AppendHeadersJSON(b []byte, hs []Header) []byte { return appendHeadersJSON(b, hs) }

// emit writes the row of a request and its response.
func (c *conn) emit(req, resp *Message) {
	ci := c.env.Conn
	latency := max(resp.EndTS-req.StartTS, 0)
	r := c.row
	cols.Set(r, resp.EndTS, ci, netip.AddrPort{})
	cols.MajorVersion.Set(r, int64(resp.Major))
	cols.MinorVersion.Set(r, int64(resp.Minor))
	cols.ContentType.Set(r, contentType(req, resp))
	cols.ReqHeaders.SetBytes(r, c.reqHeaders.get(req.Headers))
	cols.ReqMethod.Set(r, req.Method)
	cols.ReqPath.Set(r, req.Path)
	cols.ReqBody.SetBytes(r, req.Body)
	cols.ReqBodySize.Set(r, req.BodySize)
	cols.RespHeaders.SetBytes(r, c.respHeaders.get(resp.Headers))
	cols.RespStatus.Set(r, int64(resp.Status))
	cols.RespMessage.Set(r, resp.Reason)
	cols.RespBody.SetBytes(r, resp.Body)
	cols.RespBodySize.Set(r, resp.BodySize)
	cols.Latency.Set(r, latency)
	r.End() // a refused row is counted by the table's writer
}

// headersJSONCache keeps the JSON of the last header list seen in one
// direction of a connection. A client sends much the same headers with
// every request and a server with every response (a Date that changes
// each second at most), so most rows reuse the document instead of
// sorting and escaping the headers again: comparing them costs less.
type headersJSONCache struct {
	hs  []Header // the names and values the document was made of
	doc []byte
}

func (h *headersJSONCache) get(hs []Header) []byte {
	if h.doc != nil && slices.Equal(hs, h.hs) {
		return h.doc
	}
	// The strings are kept: they share the message head's memory, one
	// head per direction.
	h.hs = append(h.hs[:0], hs...)
	h.doc = appendHeadersJSON(h.doc[:0], hs)
	return h.doc
}
