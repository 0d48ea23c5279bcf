package http2

// Real HTTP/2 peers for the tests of this package and its traffic tests
// (package http2_test): a grpc-go server of grpc's interop TestService
// and its client, a Go net/http h2c server, and helpers to run curl and
// nghttp2's tools.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pxq-dev/pxq/internal/testcert"
)

// testService implements TestService: UnaryCall answers a payload of
// the size asked for, or the status asked for; StreamingOutputCall one
// message per ResponseParameters; StreamingInputCall the sum of the
// payload sizes; FullDuplexCall answers each request as
// StreamingOutputCall would.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func payload(n int32) *testpb.Payload {
	return &testpb.Payload{Body: []byte(strings.Repeat("a", int(n)))}
}

func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s := req.GetResponseStatus(); s != nil {
		return nil, status.Error(codes.Code(s.Code), s.Message)
	}
	return &testpb.SimpleResponse{Payload: payload(req.ResponseSize)}, nil
}

func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range req.ResponseParameters {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(s grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var n int32
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: n})
		}
		if err != nil {
			return err
		}
		n += int32(len(req.GetPayload().GetBody()))
	}
}

func (testService) FullDuplexCall(s grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range req.ResponseParameters {
			if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
				return err
			}
		}
	}
}

// StartGRPCServer serves TestService (h2c) on 127.0.0.1 until the test
// ends and returns its address.
func StartGRPCServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewGRPCServer()
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// StartGRPCServerTLS serves TestService over TLS with a self-signed
// certificate for 127.0.0.1 until the test ends, and returns its address
// and a client configuration that trusts the certificate.
func StartGRPCServerTLS(t testing.TB) (string, *tls.Config) {
	t.Helper()
	cert, pool := testcert.New(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewGRPCServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String(), &tls.Config{RootCAs: pool}
}

// GRPCClientTLS is GRPCClient over TLS.
func GRPCClientTLS(t testing.TB, addr string, cfg *tls.Config) (testpb.TestServiceClient, *grpc.ClientConn) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc), cc
}

// NewGRPCServer is a gRPC server of TestService.
func NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, testService{})
	return s
}

// GRPCClient is a client of TestService at addr, over one connection,
// closed when the test ends or by the caller.
func GRPCClient(t testing.TB, addr string) (testpb.TestServiceClient, *grpc.ClientConn) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc), cc
}

// Call is a gRPC call of GRPCCalls: its messages, and its row as it
// must be.
type Call struct {
	Path              string
	Req, Resp         []proto.Message // the messages sent and answered
	ReqBody           string          // the request messages in text format
	RespBody          string
	Status            string // grpc-status
	Message           string // grpc-message
	ReqSize, RespSize int64  // sums of the messages' sizes
}

func size(ms []proto.Message) int64 {
	var n int64
	for _, m := range ms {
		n += int64(proto.Size(m))
	}
	return n
}

const svc = "/grpc.testing.TestService/"

func outParams(sizes ...int32) []*testpb.ResponseParameters {
	var ps []*testpb.ResponseParameters
	for _, n := range sizes {
		ps = append(ps, &testpb.ResponseParameters{Size: n})
	}
	return ps
}

func outResp(n int32) *testpb.StreamingOutputCallResponse {
	return &testpb.StreamingOutputCallResponse{Payload: payload(n)}
}

// Calls are the calls GRPCCalls makes, one after the other: a unary
// call, one that fails with a status, a call of a method the server does
// not implement, and a server-streaming, a client-streaming and a
// bidirectional call. The text of each message is written out from its
// protobuf definition (grpc/testing/messages.proto): field numbers, and
// a payload's body (field 2 of Payload) as a string.
func Calls() []Call {
	calls := []Call{
		{Path: svc + "UnaryCall", Status: "0",
			Req:     []proto.Message{&testpb.SimpleRequest{ResponseSize: 4, Payload: &testpb.Payload{Body: []byte("ping")}}},
			ReqBody: "2: 4\n3 {\n  2: \"ping\"\n}",
			Resp:    []proto.Message{&testpb.SimpleResponse{Payload: payload(4)}}, RespBody: "1 {\n  2: \"aaaa\"\n}"},
		{Path: svc + "UnaryCall", Status: "5", Message: "no such thing",
			Req:     []proto.Message{&testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}}},
			ReqBody: "7 {\n  1: 5\n  2: \"no such thing\"\n}"},
		{Path: svc + "UnimplementedCall", Status: "12", Message: "method UnimplementedCall not implemented",
			Req: []proto.Message{&testpb.Empty{}}},
		{Path: svc + "StreamingOutputCall", Status: "0",
			Req:      []proto.Message{&testpb.StreamingOutputCallRequest{ResponseParameters: outParams(3, 5, 7)}},
			ReqBody:  "2 {\n  1: 3\n}\n2 {\n  1: 5\n}\n2 {\n  1: 7\n}",
			Resp:     []proto.Message{outResp(3), outResp(5), outResp(7)},
			RespBody: "1 {\n  2: \"aaa\"\n}\n1 {\n  2: \"aaaaa\"\n}\n1 {\n  2: \"aaaaaaa\"\n}"},
		{Path: svc + "StreamingInputCall", Status: "0",
			Req: []proto.Message{
				&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}},
				&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("yy")}},
				&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("zzz")}}},
			ReqBody: "1 {\n  2: \"x\"\n}\n1 {\n  2: \"yy\"\n}\n1 {\n  2: \"zzz\"\n}",
			Resp:    []proto.Message{&testpb.StreamingInputCallResponse{AggregatedPayloadSize: 6}}, RespBody: "1: 6"},
		{Path: svc + "FullDuplexCall", Status: "0",
			Req: []proto.Message{
				&testpb.StreamingOutputCallRequest{ResponseParameters: outParams(2)},
				&testpb.StreamingOutputCallRequest{ResponseParameters: outParams(6)}},
			ReqBody:  "2 {\n  1: 2\n}\n2 {\n  1: 6\n}",
			Resp:     []proto.Message{outResp(2), outResp(6)},
			RespBody: "1 {\n  2: \"aa\"\n}\n1 {\n  2: \"aaaaaa\"\n}"},
	}
	for i := range calls {
		calls[i].ReqSize, calls[i].RespSize = size(calls[i].Req), size(calls[i].Resp)
	}
	return calls
}

// GRPCCalls makes the calls of Calls and checks the answers.
func GRPCCalls(t testing.TB, c testpb.TestServiceClient) []Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := Calls()
	check := func(call int, got []proto.Message, err error) {
		t.Helper()
		want := calls[call]
		if st := status.Convert(err); st.Code() != codes.Code(mustAtoi(want.Status)) || st.Message() != want.Message {
			t.Fatalf("%s: %v, want status %s %q", want.Path, err, want.Status, want.Message)
		}
		if len(got) != len(want.Resp) {
			t.Fatalf("%s: %d answers, want %d", want.Path, len(got), len(want.Resp))
		}
		for i := range got {
			if !proto.Equal(got[i], want.Resp[i]) {
				t.Fatalf("%s: answer %v, want %v", want.Path, got[i], want.Resp[i])
			}
		}
	}
	unary := func(i int) {
		resp, err := c.UnaryCall(ctx, calls[i].Req[0].(*testpb.SimpleRequest))
		var got []proto.Message
		if err == nil {
			got = append(got, resp)
		}
		check(i, got, err)
	}
	unary(0)
	unary(1)
	_, err := c.UnimplementedCall(ctx, &testpb.Empty{})
	check(2, nil, err)

	so, err := c.StreamingOutputCall(ctx, calls[3].Req[0].(*testpb.StreamingOutputCallRequest))
	if err != nil {
		t.Fatal(err)
	}
	var got []proto.Message
	for {
		m, err := so.Recv()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			check(3, got, err)
			break
		}
		got = append(got, m)
	}

	si, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range calls[4].Req {
		if err := si.Send(m.(*testpb.StreamingInputCallRequest)); err != nil {
			t.Fatal(err)
		}
	}
	sresp, err := si.CloseAndRecv()
	check(4, []proto.Message{sresp}, err)

	fd, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, m := range calls[5].Req {
		if err := fd.Send(m.(*testpb.StreamingOutputCallRequest)); err != nil {
			t.Fatal(err)
		}
		r, err := fd.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	fd.CloseSend()
	_, err = fd.Recv()
	if err == io.EOF {
		err = nil
	}
	check(5, got, err)
	return calls
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// StartH2CServer serves HTTP/2 with prior knowledge (and HTTP/1.1) on
// 127.0.0.1 with Go's net/http and x/net/http2/h2c: /hello (JSON),
// /echo (the size of the request's body), /big?n=N (N bytes). It
// returns the server's URL.
func StartH2CServer(t testing.TB) string {
	t.Helper()
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/hello", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Test", "yes")
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("/echo", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(b))
	})
	mux.HandleFunc("/big", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(strings.Repeat("b", n)))
	})
	srv := httptest.NewUnstartedServer(h2c.NewHandler(mux, &http2.Server{}))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}
