package server_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/pxq-dev/pxq/broker/brokertest"
)

func TestHealthAndReflection(t *testing.T) {
	c, _ := startPublic(t, brokertest.NewEngine(t, brokertest.Meta{}, 1))
	ctx := context.Background()
	for _, svc := range []string{"", "px.api.vizierpb.VizierService", "pxq.api.v1.PxqService"} {
		resp, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, resp, err)
		}
	}
	s, err := reflectionpb.NewServerReflectionClient(c.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	sort.Strings(names)
	got := strings.Join(names, " ")
	for _, want := range []string{"px.api.vizierpb.VizierService", "pxq.api.v1.PxqService", "grpc.health.v1.Health"} {
		if !strings.Contains(got, want) {
			t.Fatalf("reflection lists %s, missing %s", got, want)
		}
	}
}
