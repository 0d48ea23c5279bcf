package infer

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// maxServers bounds the server endpoints remembered.
const maxServers = 1 << 16

// Servers decides which client-side connections are left unparsed because
// pxq traces their server side: a request between two traced processes is
// then one row, the server's, as Pixie's scripts expect (they count
// requests per service from the rows, and would count both sides).
//
// A server is traced when this tracer has seen a server-role connection
// on the client's remote address and port (the server runs on this host),
// or when Remote says so of the address (a pod or service of the cluster,
// traced by the agent of its node). Protocols whose servers are usually
// elsewhere keep their client side (protocols.ClientSideKeeper: DNS).
type Servers struct {
	// Remote, when set, reports whether a remote address is a server that
	// another agent of the deployment traces.
	Remote func(netip.Addr) bool
	seen   map[netip.AddrPort]struct{}
	// Dropped counts client-side connections left unparsed.
	Dropped uint64
}

// NewServers returns an empty set.
func NewServers(remote func(netip.Addr) bool) *Servers {
	return &Servers{Remote: remote, seen: map[netip.AddrPort]struct{}{}}
}

// add records the local endpoint of a server-role connection.
func (s *Servers) add(ap netip.AddrPort) {
	if !ap.IsValid() {
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if _, ok := s.seen[ap]; ok {
		return
	}
	if len(s.seen) >= maxServers {
		for k := range s.seen { // drop an arbitrary one
			delete(s.seen, k)
			break
		}
	}
	s.seen[ap] = struct{}{}
}

// traced reports whether the server at ap is traced.
func (s *Servers) traced(ap netip.AddrPort) bool {
	if !ap.IsValid() {
		return false
	}
	a := ap.Addr().Unmap()
	if _, ok := s.seen[netip.AddrPortFrom(a, ap.Port())]; ok {
		return true
	}
	return s.Remote != nil && s.Remote(a)
}

// skip is called before each segment of a connection parsed as proto (nil
// while unknown): it records the server connections that are parsed (a
// server whose bytes pxq cannot read, such as TLS it does not decrypt,
// leaves its clients' rows alone) and reports whether the client
// connection c is to be left unparsed from now on.
func (s *Servers) skip(c *protocols.Conn, proto protocols.Protocol) bool {
	switch c.Role {
	case protocols.RoleServer:
		if c.Stream && proto != nil && !c.Unparsed {
			s.add(c.Local)
		}
	case protocols.RoleClient:
		if !c.Stream || proto == nil {
			return false
		}
		if k, ok := proto.(protocols.ClientSideKeeper); ok && k.KeepClientSide() {
			return false
		}
		return s.traced(c.Remote)
	}
	return false
}
