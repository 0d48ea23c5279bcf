package server

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/pxq-dev/pxq/api/pxqpb"
	"github.com/pxq-dev/pxq/api/vizierpb"
)

// NewGRPCServer returns a gRPC server with the public services, the
// standard health service (SERVING for the server and each public
// service) and server reflection, so that grpcurl and similar tools work.
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	g := grpc.NewServer(opts...)
	s.Register(g)
	h := health.NewServer()
	for _, name := range []string{"", vizierpb.VizierService_ServiceDesc.ServiceName, pxqpb.PxqService_ServiceDesc.ServiceName} {
		h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return g
}
