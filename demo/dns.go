package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ServeDNS answers DNS queries on pc until ctx is done: an A query for
// any name under Domain gets 127.0.0.1, an AAAA query for such a name an
// empty answer, and every other name NXDOMAIN. It is just enough DNS for
// Go's resolver, so that the services find each other by name and the
// tracer sees real DNS traffic.
func ServeDNS(ctx context.Context, pc net.PacketConn) error {
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("demo dns: %w", err)
		}
		resp, ok := dnsAnswer(buf[:n])
		if !ok {
			continue
		}
		if _, err := pc.WriteTo(resp, addr); err != nil && ctx.Err() == nil {
			return fmt.Errorf("demo dns: %w", err)
		}
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
)

// dnsAnswer builds the response to the query q. ok is false for
// messages that are not a single-question query.
func dnsAnswer(q []byte) (resp []byte, ok bool) {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil, false
	}
	// Read the question's name.
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil, false
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil, false
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	qclass := binary.BigEndian.Uint16(q[i+2:])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, "."))
	ours := name == Domain || strings.HasSuffix(name, "."+Domain)

	resp = make([]byte, 12, 12+len(question)+16)
	copy(resp, q[:2])                       // id
	resp[2] = 0x84 | q[2]&0x01              // response, authoritative, RD copied
	resp[3] = 0x80                          // recursion available, NOERROR
	binary.BigEndian.PutUint16(resp[4:], 1) // one question
	if !ours {
		resp[3] |= 3 // NXDOMAIN
	}
	resp = append(resp, question...)
	if ours && qtype == dnsTypeA && qclass == dnsClassIN {
		binary.BigEndian.PutUint16(resp[6:], 1) // one answer
		resp = append(resp,
			0xc0, 12, // name: pointer to the question's
			0, dnsTypeA, 0, dnsClassIN,
			0, 0, 0, 30, // TTL 30 s
			0, 4, 127, 0, 0, 1)
	}
	return resp, true
}
