// Package demo is pxq's demo application: a small shop of five services
// that call each other on 127.0.0.1, a DNS server that names them, and a
// load generator that sends them a bounded mix of requests. Most hops are
// HTTP/1.1; checkout charges payments over HTTPS (Go's crypto/tls, with a
// certificate payments makes when it starts) and reserves stock at
// inventory over gRPC (HTTP/2 without TLS). Some requests fail (404, 400,
// 402, 409, 502, 503; gRPC NOT_FOUND and RESOURCE_EXHAUSTED) and some are
// slow, so that the scripts of the library have something to show.
//
//	loadgen ──► frontend ──► catalog
//	                 └─────► checkout ──► inventory   (gRPC, h2c)
//	                               ├────► catalog
//	                               └────► payments    (HTTPS)
//
// `pxq demo` runs every service as a child process of the pxq binary
// (`pxq demo-app NAME`), each in a cgroup named like a systemd service
// (Slice), traces them with eBPF and runs scripts over what it saw. Tests
// run the same services in one process with StartInProcess.
package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Service names, as `pxq demo-app NAME` takes them.
const (
	Frontend  = "frontend"
	Catalog   = "catalog"
	Checkout  = "checkout"
	Payments  = "payments"
	Inventory = "inventory"
	DNS       = "dns"
	LoadGen   = "loadgen"
)

// Services lists the services in the order they must start (a service's
// dependencies first). Inventory serves gRPC, the others HTTP.
var Services = []string{Payments, Inventory, Catalog, Checkout, Frontend}

// needs names the peers each service calls.
var needs = map[string][]string{
	Checkout: {Catalog, Payments, Inventory},
	Frontend: {Catalog, Checkout},
}

// Domain is the DNS domain the demo's DNS server answers for: every
// service is NAME.Domain.
const Domain = "pxq-demo"

// Env tells a service where its peers are.
type Env struct {
	// DNS is the address (host:port) of the demo's DNS server; empty to
	// use the system resolver.
	DNS string
	// Peers maps a service name to its host:port, with the host a name
	// under Domain (catalog.pxq-demo:40123) or an IP.
	Peers map[string]string
	// Certs maps a service that serves TLS (payments) to its
	// self-signed certificate, the only one its clients trust for it.
	Certs map[string]*x509.Certificate
}

// Product is an item of the catalog.
type Product struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
	Stock      int    `json:"stock"`
}

// products is the catalog. Product 7 sits in a slow warehouse: looking it
// up takes 200–250 ms.
var products = []Product{
	{1, "espresso beans 1kg", 2450, 40},
	{2, "pour-over kettle", 5900, 12},
	{3, "ceramic mug", 1200, 200},
	{4, "hand grinder", 8900, 7},
	{5, "paper filters (100)", 650, 500},
	{6, "milk frother", 3400, 25},
	{7, "cast-iron skillet", 4700, 3},
	{8, "tea sampler", 1800, 60},
}

// productByID returns the product of the catalog with id.
func productByID(id int) (Product, bool) {
	for _, p := range products {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}

// slowProduct is the product whose lookup is slow.
const slowProduct = 7

// declinedCard is the card number the payment service always declines.
const declinedCard = "4000-0000-0000-0002"

// check says whether service name is one of the demo's and whether env
// names the peers it calls.
func (e Env) check(name string) error {
	if !slices.Contains(Services, name) {
		return fmt.Errorf("demo: no service %q (want one of %s)", name, strings.Join(Services, ", "))
	}
	var missing []string
	for _, p := range needs[name] {
		if e.Peers[p] == "" {
			missing = append(missing, "the address of "+p)
		}
	}
	if name == Checkout && e.Certs[Payments] == nil {
		missing = append(missing, "the certificate of "+Payments)
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo %s: not given %s", name, strings.Join(missing, ", "))
	}
	return nil
}

// handler returns the HTTP handler of service name (not inventory, which
// serves gRPC) and a function that closes its clients.
func handler(name string, env Env) (http.Handler, func(), error) {
	if err := env.check(name); err != nil {
		return nil, nil, err
	}
	url := func(peer string) string { return "http://" + env.Peers[peer] }
	switch name {
	case Catalog:
		return catalogHandler(), func() {}, nil
	case Payments:
		return paymentsHandler(), func() {}, nil
	case Checkout:
		c := newClient(env)
		inv, err := dialInventory(env)
		if err != nil {
			return nil, nil, err
		}
		h := checkoutHandler(c, inv, url(Catalog), "https://"+env.Peers[Payments])
		return h, func() { inv.Close(); c.CloseIdleConnections() }, nil
	case Frontend:
		c := newClient(env)
		return frontendHandler(c, url(Catalog), url(Checkout)), c.CloseIdleConnections, nil
	}
	return nil, nil, fmt.Errorf("demo: %s serves no HTTP", name)
}

// dialer returns a dialer that resolves names with the demo's DNS server.
func dialer(env Env) *net.Dialer {
	d := &net.Dialer{Timeout: 2 * time.Second}
	if env.DNS != "" {
		dns := env.DNS
		d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dd net.Dialer
			return dd.DialContext(ctx, "udp", dns)
		}}
	}
	return d
}

// newClient returns an HTTP client that resolves names with the demo's
// DNS server, keeps a few connections alive, and trusts, over HTTPS, the
// certificates of env.Certs only. It speaks HTTP/1.1, TLS or not.
func newClient(env Env) *http.Client {
	roots := x509.NewCertPool()
	for _, cert := range env.Certs {
		roots.AddCert(cert)
	}
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialer(env).DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// serverCert makes the certificate service name presents over TLS: ECDSA
// P-256, self-signed, for name.Domain and 127.0.0.1, valid for a day. It
// lives in memory only; the service's clients get it through Env.Certs.
func serverCert(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo %s: key: %w", name, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo %s: serial number: %w", name, err)
	}
	host := name + "." + Domain
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"pxq demo"}},
		DNSNames:              []string{host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo %s: certificate: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo %s: certificate: %w", name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Listen opens the listener of service name on a free port of 127.0.0.1.
// Payments' serves TLS (HTTP/1.1) with a certificate made now, returned
// for Env.Certs; the others' are plain TCP (cert is nil).
func Listen(name string) (ln net.Listener, cert *x509.Certificate, err error) {
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo %s: %w", name, err)
	}
	if name != Payments {
		return ln, nil, nil
	}
	c, err := serverCert(name)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	return tls.NewListener(ln, cfg), c.Leaf, nil
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func errorJSON(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func catalogHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Millisecond)
		writeJSON(w, http.StatusOK, products)
	})
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			errorJSON(w, http.StatusBadRequest, "product ids are numbers")
			return
		}
		p, ok := productByID(id)
		if !ok {
			errorJSON(w, http.StatusNotFound, fmt.Sprintf("no product %d", id))
			return
		}
		if id == slowProduct {
			time.Sleep(time.Duration(200+time.Now().UnixNano()%50) * time.Millisecond)
		} else {
			time.Sleep(time.Millisecond)
		}
		writeJSON(w, http.StatusOK, p)
	})
	return mux
}

// ChargeRequest is the body of POST /charge.
type ChargeRequest struct {
	OrderID     string `json:"order_id"`
	AmountCents int    `json:"amount_cents"`
	Card        string `json:"card"`
}

func paymentsHandler() http.Handler {
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charge", func(w http.ResponseWriter, r *http.Request) {
		var req ChargeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			errorJSON(w, http.StatusBadRequest, "bad charge request: "+err.Error())
			return
		}
		k := n.Add(1)
		// The card processor takes 20–60 ms.
		time.Sleep(time.Duration(20+k*7%41) * time.Millisecond)
		switch {
		case req.Card == declinedCard:
			errorJSON(w, http.StatusPaymentRequired, "card declined")
		case k%11 == 0:
			errorJSON(w, http.StatusServiceUnavailable, "payment processor unavailable")
		default:
			writeJSON(w, http.StatusOK, map[string]any{"order_id": req.OrderID, "status": "approved", "amount_cents": req.AmountCents})
		}
	})
	return mux
}

// CheckoutRequest is the body of POST /checkout.
type CheckoutRequest struct {
	Items []Item `json:"items"`
	Card  string `json:"card"`
}

// Item is a line of an order.
type Item struct {
	ID  int `json:"id"`
	Qty int `json:"qty"`
}

// checkoutHandler serves POST /checkout: it reserves the order's items at
// inventory (gRPC), prices them at catalog and charges the card at
// payments (HTTPS). An unknown item is a 400 (inventory: NOT_FOUND), more
// of an item than is in stock a 409 (RESOURCE_EXHAUSTED), a declined card
// a 402, and a payment processor that is down a 502.
func checkoutHandler(c *http.Client, inv *grpc.ClientConn, catalog, payments string) http.Handler {
	var orders atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		var req CheckoutRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Items) == 0 {
			errorJSON(w, http.StatusBadRequest, "want {\"items\": [{\"id\": N, \"qty\": N}], \"card\": \"…\"}")
			return
		}
		id := fmt.Sprintf("ord-%05d", orders.Add(1))
		var res ReserveReply
		err := inv.Invoke(r.Context(), ReservePath, &ReserveRequest{OrderID: id, Items: req.Items}, &res)
		switch st := status.Convert(err); st.Code() {
		case codes.OK:
		case codes.NotFound:
			errorJSON(w, http.StatusBadRequest, "unknown item: "+st.Message())
			return
		case codes.ResourceExhausted:
			errorJSON(w, http.StatusConflict, "out of stock: "+st.Message())
			return
		default:
			errorJSON(w, http.StatusBadGateway, "inventory: "+st.Message())
			return
		}
		total := 0
		for _, it := range req.Items {
			var p Product
			code, err := getJSON(r.Context(), c, fmt.Sprintf("%s/products/%d", catalog, it.ID), &p)
			switch {
			case err != nil:
				errorJSON(w, http.StatusBadGateway, "catalog: "+err.Error())
				return
			case code == http.StatusNotFound:
				errorJSON(w, http.StatusBadRequest, fmt.Sprintf("unknown item %d", it.ID))
				return
			case code != http.StatusOK:
				errorJSON(w, http.StatusBadGateway, fmt.Sprintf("catalog answered %d", code))
				return
			}
			total += p.PriceCents * max(it.Qty, 1)
		}
		var out map[string]any
		code, err := postJSON(r.Context(), c, payments+"/charge", ChargeRequest{OrderID: id, AmountCents: total, Card: req.Card}, &out)
		switch {
		case err != nil:
			errorJSON(w, http.StatusBadGateway, "payments: "+err.Error())
		case code == http.StatusPaymentRequired:
			errorJSON(w, http.StatusPaymentRequired, "payment declined")
		case code != http.StatusOK:
			errorJSON(w, http.StatusBadGateway, fmt.Sprintf("payments answered %d", code))
		default:
			writeJSON(w, http.StatusOK, map[string]any{"order_id": id, "reservation": res.ReservationID, "total_cents": total, "status": "confirmed"})
		}
	})
	return mux
}

func frontendHandler(c *http.Client, catalog, checkout string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var all []Product
		code, err := getJSON(r.Context(), c, catalog+"/products", &all)
		if err != nil || code != http.StatusOK {
			errorJSON(w, http.StatusBadGateway, "catalog unavailable")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"shop": "pxq coffee", "featured": all[:3]})
	})
	mux.HandleFunc("GET /product/{id}", func(w http.ResponseWriter, r *http.Request) {
		var p json.RawMessage
		code, err := getJSON(r.Context(), c, catalog+"/products/"+r.PathValue("id"), &p)
		if err != nil {
			errorJSON(w, http.StatusBadGateway, "catalog: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(p)
	})
	mux.HandleFunc("POST /cart/checkout", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			errorJSON(w, http.StatusBadRequest, err.Error())
			return
		}
		var out json.RawMessage
		code, err := post(r.Context(), c, checkout+"/checkout", body, &out)
		if err != nil {
			errorJSON(w, http.StatusBadGateway, "checkout: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(out)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}

// getJSON GETs url and decodes a JSON answer into out; it returns the
// status code.
func getJSON(ctx context.Context, c *http.Client, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	return do(c, req, out)
}

// postJSON POSTs v as JSON to url and decodes the answer into out.
func postJSON(ctx context.Context, c *http.Client, url string, v, out any) (int, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	return post(ctx, c, url, body, out)
}

func post(ctx context.Context, c *http.Client, url string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(c, req, out)
}

func do(c *http.Client, req *http.Request, out any) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: bad JSON answer: %w", req.Method, req.URL.Path, err)
		}
	}
	return resp.StatusCode, nil
}

// Serve runs service name on ln (from Listen) until ctx is done.
func Serve(ctx context.Context, name string, ln net.Listener, env Env) error {
	if name == Inventory {
		return serveInventory(ctx, ln)
	}
	h, closeClients, err := handler(name, env)
	if err != nil {
		ln.Close()
		return err
	}
	defer closeClients()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("demo %s: %w", name, err)
	}
	return nil
}
