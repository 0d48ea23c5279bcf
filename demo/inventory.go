package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// The inventory service speaks gRPC over HTTP/2 without TLS (h2c). It has
// no .proto file and no generated code: its one method is registered by
// hand (inventoryDesc), and its messages are written and read in
// protobuf's wire format by the methods below, through a codec of their
// own (wireCodec), so that the tracer shows their fields as it shows any
// protobuf message's.
//
//	service pxq.demo.Inventory {
//	  rpc Reserve(ReserveRequest) returns (ReserveReply);
//	}
//	message ReserveRequest { string order_id = 1; repeated Item items = 2; }
//	message Item { int64 id = 1; int64 qty = 2; }
//	message ReserveReply { string reservation_id = 1; }

// ReservePath is the gRPC method checkout calls to reserve an order's
// items: the req_path of its http_events rows.
const ReservePath = "/pxq.demo.Inventory/Reserve"

// ReserveRequest asks inventory to set an order's items aside.
type ReserveRequest struct {
	OrderID string
	Items   []Item
}

// ReserveReply names the reservation made.
type ReserveReply struct {
	ReservationID string
}

// wireMessage is a message that wireCodec carries.
type wireMessage interface {
	appendWire(b []byte) []byte
	parseWire(b []byte) error
}

// codecName is the content-subtype of the inventory's calls: their
// content-type is application/grpc+pxqdemo. It is not "proto", whose
// codec (generated messages only) the rest of pxq's gRPC uses.
const codecName = "pxqdemo"

// wireCodec marshals the wireMessages of the inventory service.
type wireCodec struct{}

func init() { encoding.RegisterCodec(wireCodec{}) }

func (wireCodec) Name() string { return codecName }

func (wireCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(wireMessage)
	if !ok {
		return nil, fmt.Errorf("demo: codec %s cannot marshal a %T", codecName, v)
	}
	return m.appendWire(nil), nil
}

func (wireCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(wireMessage)
	if !ok {
		return fmt.Errorf("demo: codec %s cannot unmarshal into a %T", codecName, v)
	}
	return m.parseWire(b)
}

// parseFields calls field with each field of the protobuf message b: its
// number, type and value (a varint's value, or the bytes of a
// length-delimited field). Fields of other types are skipped.
func parseFields(b []byte, field func(num protowire.Number, typ protowire.Type, v uint64, bytes []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("demo: bad protobuf tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("demo: bad protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := field(num, typ, v, bs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (it *Item) appendWire(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(it.ID))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(it.Qty))
}

func (it *Item) parseWire(b []byte) error {
	*it = Item{}
	return parseFields(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			it.ID = int(int64(v))
		case num == 2 && typ == protowire.VarintType:
			it.Qty = int(int64(v))
		}
		return nil
	})
}

func (r *ReserveRequest) appendWire(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, r.OrderID)
	for i := range r.Items {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Items[i].appendWire(nil))
	}
	return b
}

func (r *ReserveRequest) parseWire(b []byte) error {
	*r = ReserveRequest{}
	return parseFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			r.OrderID = string(bs)
		case num == 2 && typ == protowire.BytesType:
			var it Item
			if err := it.parseWire(bs); err != nil {
				return err
			}
			r.Items = append(r.Items, it)
		}
		return nil
	})
}

func (r *ReserveReply) appendWire(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendString(b, r.ReservationID)
}

func (r *ReserveReply) parseWire(b []byte) error {
	*r = ReserveReply{}
	return parseFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, bs []byte) error {
		if num == 1 && typ == protowire.BytesType {
			r.ReservationID = string(bs)
		}
		return nil
	})
}

// reserver is the inventory service's interface, for inventoryDesc.
type reserver interface {
	Reserve(context.Context, *ReserveRequest) (*ReserveReply, error)
}

// inventoryDesc describes pxq.demo.Inventory as generated code would.
var inventoryDesc = grpc.ServiceDesc{
	ServiceName: "pxq.demo.Inventory",
	HandlerType: (*reserver)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Reserve",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			req := new(ReserveRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			s := srv.(reserver)
			if intercept == nil {
				return s.Reserve(ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: ReservePath}
			return intercept(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return s.Reserve(ctx, req.(*ReserveRequest))
			})
		},
	}},
	Metadata: "demo/inventory.go",
}

// inventory is the stock of the shop's warehouse: Product.Stock of each
// product, restocked as fast as it sells, so that an order fails only
// when it asks for more of a product than the shelf holds.
type inventory struct {
	reservations atomic.Int64
}

// Reserve sets an order's items aside. An unknown product is NOT_FOUND,
// more of one than is in stock RESOURCE_EXHAUSTED.
func (inv *inventory) Reserve(ctx context.Context, req *ReserveRequest) (*ReserveReply, error) {
	if len(req.Items) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no items to reserve")
	}
	time.Sleep(2 * time.Millisecond) // the warehouse's database
	for _, it := range req.Items {
		p, ok := productByID(it.ID)
		if !ok {
			return nil, status.Errorf(codes.NotFound, "no product %d", it.ID)
		}
		if qty := max(it.Qty, 1); qty > p.Stock {
			return nil, status.Errorf(codes.ResourceExhausted, "%s: %d wanted, %d in stock", p.Name, qty, p.Stock)
		}
	}
	return &ReserveReply{ReservationID: fmt.Sprintf("res-%05d", inv.reservations.Add(1))}, nil
}

// serveInventory serves the inventory's gRPC on ln until ctx is done.
func serveInventory(ctx context.Context, ln net.Listener) error {
	srv := grpc.NewServer()
	srv.RegisterService(&inventoryDesc, &inventory{})
	go func() {
		<-ctx.Done()
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			srv.Stop()
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("demo %s: %w", Inventory, err)
	}
	return nil
}

// dialInventory returns a client of the inventory service at
// env.Peers[Inventory], whose name the demo's DNS server resolves. It
// connects at its first call.
func dialInventory(env Env) (*grpc.ClientConn, error) {
	d := dialer(env)
	conn, err := grpc.NewClient("passthrough:///"+env.Peers[Inventory],
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	if err != nil {
		return nil, fmt.Errorf("demo: inventory client: %w", err)
	}
	return conn, nil
}
