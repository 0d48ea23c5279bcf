// Package demo is pxq's demo application: a small shop of four HTTP
// services that call each other on 127.0.0.1, a DNS server that names
// them, and a load generator that sends them a bounded mix of requests.
// Some requests fail (404, 402, 502, 503) and some are slow, so that the
// scripts of the library have something to show.
//
//	loadgen ──► frontend ──► catalog
//	                 └─────► checkout ──► catalog
//	                               └────► payments
//
// `pxq demo` runs every service as a child process of the pxq binary
// (`pxq demo-app NAME`), each in a cgroup named like a systemd service
// (Slice), traces them with eBPF and runs scripts over what it saw. Tests
// run the same services in one process with StartInProcess.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Service names, as `pxq demo-app NAME` takes them.
const (
	Frontend = "frontend"
	Catalog  = "catalog"
	Checkout = "checkout"
	Payments = "payments"
	DNS      = "dns"
	LoadGen  = "loadgen"
)

// Services lists the HTTP services in the order they must start (a
// service's dependencies first).
var Services = []string{Payments, Catalog, Checkout, Frontend}

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

// slowProduct is the product whose lookup is slow.
const slowProduct = 7

// declinedCard is the card number the payment service always declines.
const declinedCard = "4000-0000-0000-0002"

// Handler returns the HTTP handler of service name.
func Handler(name string, env Env) (http.Handler, error) {
	switch name {
	case Catalog:
		return catalogHandler(), nil
	case Payments:
		return paymentsHandler(), nil
	case Checkout:
		c := newClient(env)
		cat, pay, err := env.peer(Catalog, Payments)
		if err != nil {
			return nil, err
		}
		return checkoutHandler(c, cat, pay), nil
	case Frontend:
		c := newClient(env)
		cat, co, err := env.peer(Catalog, Checkout)
		if err != nil {
			return nil, err
		}
		return frontendHandler(c, cat, co), nil
	}
	return nil, fmt.Errorf("demo: no HTTP service %q (want one of %s)", name, strings.Join(Services, ", "))
}

func (e Env) peer(a, b string) (string, string, error) {
	pa, pb := e.Peers[a], e.Peers[b]
	if pa == "" || pb == "" {
		return "", "", fmt.Errorf("demo: the addresses of %s and %s are needed", a, b)
	}
	return "http://" + pa, "http://" + pb, nil
}

// newClient returns an HTTP client that resolves names with the demo's
// DNS server and keeps a few connections alive.
func newClient(env Env) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	if env.DNS != "" {
		dns := env.DNS
		d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dd net.Dialer
			return dd.DialContext(ctx, "udp", dns)
		}}
	}
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
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
		for _, p := range products {
			if p.ID == id {
				if id == slowProduct {
					time.Sleep(time.Duration(200+time.Now().UnixNano()%50) * time.Millisecond)
				} else {
					time.Sleep(time.Millisecond)
				}
				writeJSON(w, http.StatusOK, p)
				return
			}
		}
		errorJSON(w, http.StatusNotFound, fmt.Sprintf("no product %d", id))
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

func checkoutHandler(c *http.Client, catalog, payments string) http.Handler {
	var orders atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		var req CheckoutRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Items) == 0 {
			errorJSON(w, http.StatusBadRequest, "want {\"items\": [{\"id\": N, \"qty\": N}], \"card\": \"…\"}")
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
		id := fmt.Sprintf("ord-%05d", orders.Add(1))
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
			writeJSON(w, http.StatusOK, map[string]any{"order_id": id, "total_cents": total, "status": "confirmed"})
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

// Serve runs service name on ln until ctx is done.
func Serve(ctx context.Context, name string, ln net.Listener, env Env) error {
	h, err := Handler(name, env)
	if err != nil {
		return err
	}
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
