package agent

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// metadataMode says what answers p's lookups: the provider's own Mode
// when it has one (sources/k8s switches from host to Kubernetes mode),
// and a line saying which metadata it is.
func metadataMode(p metadata.Provider) (mode, desc string) {
	if d, ok := p.(interface{ Describe() string }); ok {
		desc = d.Describe()
	}
	switch m := p.(type) {
	case interface{ Mode() string }:
		mode = m.Mode()
	case *metadata.Host:
		mode = metadata.ModeHost
	default:
		mode = metadata.ModeNone
	}
	return mode, desc
}

// Lookup answers one metadata.Provider call from the engine's provider,
// for the metadata functions a broker evaluates above a blocking
// operator (a process of this node's rows, or a cluster object).
func (s *Service) Lookup(_ context.Context, req *agentpb.LookupRequest) (*agentpb.LookupResponse, error) {
	p := s.cfg.Engine.Metadata()
	k := req.GetKey()
	var v any
	switch req.GetMethod() {
	case "Process":
		if len(req.GetUpid()) != 16 {
			return nil, status.Errorf(codes.InvalidArgument, "agent %s: Process wants a 16-byte upid, got %d bytes", s.cfg.Hostname, len(req.GetUpid()))
		}
		v = one(p.Process(types.GetUInt128(req.GetUpid())))
	case "Pod":
		v = one(p.Pod(k))
	case "PodByName":
		v = one(p.PodByName(k))
	case "PodByIP":
		v = one(p.PodByIP(k, req.GetTimeNs()))
	case "IPHistory":
		v = list(p.IPHistory(k))
	case "Service":
		v = one(p.Service(k))
	case "ServiceByName":
		v = one(p.ServiceByName(k))
	case "ServiceByIP":
		v = one(p.ServiceByIP(k))
	case "ReplicaSet":
		v = one(p.ReplicaSet(k))
	case "ReplicaSetByName":
		v = one(p.ReplicaSetByName(k))
	case "Deployment":
		v = one(p.Deployment(k))
	case "DeploymentByName":
		v = one(p.DeploymentByName(k))
	case "Container":
		v = one(p.Container(k))
	case "ContainerByName":
		v = one(p.ContainerByName(k))
	case "Namespace":
		v = one(p.Namespace(k))
	case "Node":
		v = one(p.Node(k))
	case "Names":
		if n, ok := p.(interface{ Names(string) []string }); ok {
			v = list(n.Names(k))
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "agent %s: no metadata method %q", s.cfg.Hostname, req.GetMethod())
	}
	if v == nil {
		return &agentpb.LookupResponse{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "agent %s: %s(%q): %v", s.cfg.Hostname, req.GetMethod(), k, err)
	}
	return &agentpb.LookupResponse{Json: b}, nil
}

// one is v, or nil for a nil pointer: "unknown" is an empty answer
// rather than JSON null.
func one[T any](v *T) any {
	if v == nil {
		return nil
	}
	return v
}

// list is v, or nil when empty.
func list[T any](v []T) any {
	if len(v) == 0 {
		return nil
	}
	return v
}
