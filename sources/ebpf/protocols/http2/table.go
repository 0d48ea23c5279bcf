package http2

import (
	nethttp "net/http"
	"net/netip"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
)

// emit writes the http_events row of a stream. Pixie's columns: version
// 2.0, method and path from :method and :path, status from :status
// (resp_message its standard text: HTTP/2 has no reason phrase), every
// header and trailer, pseudo-headers included, in the headers' JSON. A
// gRPC body is shown as its messages in protobuf text format, and its
// size is the sum of the messages' lengths.
func (c *conn) emit(st *stream) {
	cols := http.Cols
	req, resp := &st.req, &st.resp
	r := c.row
	buf := http.AppendHeadersJSON(r.Buf[:0], req.headers)
	nreq := len(buf)
	buf = http.AppendHeadersJSON(buf, resp.headers)
	nresp := len(buf)
	ct := contentType(req.headers, resp.headers)
	reqBody, respBody := req.body, resp.body
	reqSize, respSize := req.size, resp.size
	if ct == 2 {
		bound := 4 * c.env.Cfg.MaxBodyBytes
		buf = appendGRPCBody(buf, req.body)
		buf = buf[:nresp+len(cutText(buf[nresp:], bound))]
		nbody := len(buf)
		buf = appendGRPCBody(buf, resp.body)
		buf = buf[:nbody+len(cutText(buf[nbody:], bound))]
		reqBody, respBody = buf[nresp:nbody], buf[nbody:]
		reqSize, respSize = req.grpc.size, resp.grpc.size
	}
	r.Buf = buf
	status, _ := strconv.Atoi(get(resp.headers, ":status"))
	cols.Set(r, resp.endTS, c.env.Conn, netip.AddrPort{})
	cols.MajorVersion.Set(r, 2)
	cols.MinorVersion.Set(r, 0)
	cols.ContentType.Set(r, ct)
	cols.ReqHeaders.SetBytes(r, buf[:nreq])
	cols.ReqMethod.Set(r, get(req.headers, ":method"))
	cols.ReqPath.Set(r, get(req.headers, ":path"))
	cols.ReqBody.SetBytes(r, reqBody)
	cols.ReqBodySize.Set(r, reqSize)
	cols.RespHeaders.SetBytes(r, buf[nreq:nresp])
	cols.RespStatus.Set(r, int64(status))
	cols.RespMessage.Set(r, nethttp.StatusText(status))
	cols.RespBody.SetBytes(r, respBody)
	cols.RespBodySize.Set(r, respSize)
	cols.Latency.Set(r, max(resp.endTS-req.startTS, 0))
	r.End() // a refused row is counted by the table's writer
}
