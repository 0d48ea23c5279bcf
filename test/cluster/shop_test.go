package cluster_test

// The shop's programs. The test binary runs them in the pods' network
// namespaces and cgroups (TestMain, $PXQ_SHOP_ROLE). Each keeps its own
// ground truth: what it served and sent, per peer, which the test reads
// over stdin/stdout (pipes, which the tracer does not parse).
//
//	loadgen ─► frontend ─► catalog
//	              └──────► checkout ─► payments
//
// Every call is preceded by a DNS query for the callee to the cluster's
// DNS pod, over one unconnected UDP socket (sendto/recvfrom).

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	roleEnv = "PXQ_SHOP_ROLE" // the program to run
	dnsEnv  = "PXQ_SHOP_DNS"  // the DNS server, ip:port
	zoneEnv = "PXQ_SHOP_ZONE" // the DNS server's names: name=ip,…
	appPort = 8080
)

// counts is a program's ground truth since its last reset.
type counts struct {
	// HTTPIn counts the requests served per client IP, HTTPStatus per
	// status code sent.
	HTTPIn     map[string]int `json:"http_in"`
	HTTPStatus map[int]int    `json:"http_status"`
	// HTTPOut counts the requests sent (and answered) per callee.
	HTTPOut map[string]int `json:"http_out"`
	// DNSIn counts the queries answered per client IP (the DNS server),
	// DNSOut the answers received per DNS server IP.
	DNSIn  map[string]int `json:"dns_in"`
	DNSOut map[string]int `json:"dns_out"`
	// Failed counts calls that did not complete, which the test treats
	// as an error of the setup.
	Failed int `json:"failed"`
}

// tally is the counts of a program, safe for its goroutines.
type tally struct {
	mu sync.Mutex
	c  counts
}

func newTally() *tally { t := &tally{}; t.reset(); return t }

func (t *tally) reset() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.c
	t.c = counts{HTTPIn: map[string]int{}, HTTPStatus: map[int]int{}, HTTPOut: map[string]int{}, DNSIn: map[string]int{}, DNSOut: map[string]int{}}
	return old
}

func (t *tally) add(f func(c *counts)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.c)
}

// runRole runs the program named role until stdin closes.
func runRole(role string) error {
	tl := newTally()
	var idle func()
	switch role {
	case "dns":
		if err := serveDNS(tl); err != nil {
			return err
		}
	case "loadgen":
		c := newCaller(tl)
		idle = c.http.CloseIdleConnections
		return control(tl, idle, func(args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("round wants two counts")
			}
			gets, _ := strconv.Atoi(args[0])
			buys, _ := strconv.Atoi(args[1])
			load(c, gets, buys)
			return nil
		})
	default:
		c := newCaller(tl)
		idle = c.http.CloseIdleConnections
		h, ok := handlers(c)[role]
		if !ok {
			return fmt.Errorf("no program %q", role)
		}
		if err := serveHTTP(tl, h); err != nil {
			return err
		}
	}
	return control(tl, idle, nil)
}

// control reads commands on stdin and answers on stdout:
//
//	reset        close idle connections, answer the counts so far, start anew
//	counts       answer the counts so far
//	round G B    (loadgen) G catalog views and B purchases, then answer "done"
func control(tl *tally, idle func(), round func([]string) error) error {
	fmt.Println("ready")
	enc := json.NewEncoder(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "reset":
			if idle != nil {
				idle()
			}
			enc.Encode(tl.reset())
		case "counts":
			tl.mu.Lock()
			enc.Encode(tl.c)
			tl.mu.Unlock()
		case "round":
			if round == nil {
				return fmt.Errorf("round: not the load generator")
			}
			if err := round(f[1:]); err != nil {
				return err
			}
			if idle != nil {
				idle()
			}
			fmt.Println("done")
		default:
			return fmt.Errorf("unknown command %q", f[0])
		}
	}
	return sc.Err()
}

// caller makes the shop's calls: a DNS query for the callee, then HTTP.
type caller struct {
	tl   *tally
	http *http.Transport
	dns  *dnsClient
}

func newCaller(tl *tally) *caller {
	return &caller{tl: tl, http: &http.Transport{MaxIdleConnsPerHost: 8}, dns: newDNSClient(os.Getenv(dnsEnv))}
}

// call sends method path to service (in namespace shop) and returns the
// response's status.
func (c *caller) call(service, method, path string) (int, error) {
	ip, err := c.dns.lookup(service + ".shop.svc.cluster.local")
	if err != nil {
		c.tl.add(func(n *counts) { n.Failed++ })
		return 0, err
	}
	c.tl.add(func(n *counts) { n.DNSOut[c.dns.server.IP.String()]++ })
	req, _ := http.NewRequest(method, fmt.Sprintf("http://%s:%d%s", ip, appPort, path), strings.NewReader(`{"item":7}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: c.http, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.tl.add(func(n *counts) { n.Failed++ })
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.tl.add(func(n *counts) { n.HTTPOut[service]++ })
	return resp.StatusCode, nil
}

// handlers are the shop's services: what each does per request, giving
// the status to answer.
func handlers(c *caller) map[string]func(r *http.Request) int {
	var charges sync.Mutex
	n := 0
	pass := func(service, method, path string) int {
		st, err := c.call(service, method, path)
		if err != nil {
			return http.StatusBadGateway
		}
		return st
	}
	return map[string]func(r *http.Request) int{
		"frontend": func(r *http.Request) int {
			if r.Method == http.MethodPost {
				if st := pass("catalog", "GET", "/products/7"); st != http.StatusOK {
					return st
				}
				return pass("checkout", "POST", "/orders")
			}
			return pass("catalog", "GET", "/products")
		},
		"catalog": func(r *http.Request) int { return http.StatusOK },
		"checkout": func(r *http.Request) int {
			return pass("payments", "POST", "/charge")
		},
		// Every fifth charge is declined.
		"payments": func(r *http.Request) int {
			charges.Lock()
			defer charges.Unlock()
			n++
			if n%5 == 0 {
				return http.StatusPaymentRequired
			}
			return http.StatusOK
		},
	}
}

// serveHTTP serves h on the app port in the background.
func serveHTTP(tl *tally, h func(r *http.Request) int) error {
	l, err := net.Listen("tcp4", fmt.Sprintf(":%d", appPort))
	if err != nil {
		return err
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		st := h(r)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		tl.add(func(c *counts) { c.HTTPIn[host]++; c.HTTPStatus[st]++ })
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"status":%d,"path":%q}`, st, r.URL.Path)
	}))
	return nil
}

// load makes gets catalog views and buys purchases through the frontend,
// four at a time.
func load(c *caller, gets, buys int) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for method := range work {
				c.call("frontend", method, "/")
			}
		}()
	}
	total := gets + buys
	for i := range total {
		// Purchases spread evenly among the views.
		if (i+1)*buys/total != i*buys/total {
			work <- "POST"
		} else {
			work <- "GET"
		}
	}
	close(work)
	wg.Wait()
}

// dnsClient sends A queries to one server over one unconnected UDP
// socket, one query at a time.
type dnsClient struct {
	mu     sync.Mutex
	server *net.UDPAddr
	conn   *net.UDPConn
	id     uint16
}

func newDNSClient(server string) *dnsClient {
	addr, _ := net.ResolveUDPAddr("udp4", server)
	return &dnsClient{server: addr}
}

func (d *dnsClient) lookup(name string) (net.IP, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return nil, err
		}
		d.conn = c
	}
	d.id++
	q := binary.BigEndian.AppendUint16(nil, d.id)
	q = append(q, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	q = appendName(q, name)
	q = append(q, 0, 1, 0, 1) // A, IN
	if _, err := d.conn.WriteToUDP(q, d.server); err != nil {
		return nil, err
	}
	d.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 512)
	for {
		n, _, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return nil, err
		}
		m := buf[:n]
		if len(m) < 12 || binary.BigEndian.Uint16(m) != d.id {
			continue // a late answer to an earlier query
		}
		if m[3]&0xf != 0 || binary.BigEndian.Uint16(m[6:]) == 0 {
			return nil, fmt.Errorf("%s: rcode %d", name, m[3]&0xf)
		}
		// The answer's last four bytes are the address (one A record).
		return net.IP(m[n-4 : n]), nil
	}
}

func appendName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// serveDNS answers A queries for the names of $PXQ_SHOP_ZONE on port 53
// in the background.
func serveDNS(tl *tally) error {
	zone := map[string]net.IP{}
	for _, kv := range strings.Split(os.Getenv(zoneEnv), ",") {
		if name, ip, ok := strings.Cut(kv, "="); ok {
			zone[name] = net.ParseIP(ip).To4()
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 53})
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, peer, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			resp, err := answer(buf[:n], zone)
			if err != nil {
				continue
			}
			if _, err := conn.WriteToUDP(resp, peer); err == nil {
				tl.add(func(c *counts) { c.DNSIn[peer.IP.String()]++ })
			}
		}
	}()
	return nil
}

// answer makes the response to query q: one A record, or NXDOMAIN.
func answer(q []byte, zone map[string]net.IP) ([]byte, error) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil, errors.New("not one question")
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil, errors.New("short name")
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	end := i + 5 // the name's 0, type, class
	if end > len(q) {
		return nil, errors.New("short question")
	}
	r := append([]byte(nil), q[:end]...)
	r[2] = 0x81 // QR, RD
	r[3] = 0x80 // RA
	ip, ok := zone[strings.Join(labels, ".")]
	if !ok {
		r[3] |= 3 // NXDOMAIN
		return r, nil
	}
	r[7] = 1                                               // one answer
	r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4) // name pointer, A, IN, TTL 30, length 4
	return append(r, ip...), nil
}
