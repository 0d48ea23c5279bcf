package broker

import (
	"context"
	"fmt"
	"net"
	"sort"
)

// DNSDiscovery returns a Discover function that lists the addresses
// behind a DNS name, each with port: in Kubernetes, a headless Service
// over the agents' DaemonSet resolves to every agent pod's IP.
//
// TODO: watch the Service's EndpointSlices through the Kubernetes API
// instead, to see agents come and go without waiting for DNS.
func DNSDiscovery(hostPort string) (func(ctx context.Context) ([]string, error), error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("broker: agents DNS name %q: %w", hostPort, err)
	}
	return func(ctx context.Context) ([]string, error) {
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		sort.Strings(ips)
		out := make([]string, len(ips))
		for i, ip := range ips {
			out[i] = net.JoinHostPort(ip, port)
		}
		return out, nil
	}, nil
}
