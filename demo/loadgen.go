package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// LoadOptions bound the traffic the load generator sends.
type LoadOptions struct {
	// Target is the frontend's base URL (http://frontend.pxq-demo:PORT).
	Target string
	// Env resolves the target's name.
	Env Env
	// Rate is how many requests start per second (default 40).
	Rate int
	// Duration is how long requests keep starting (default 4 s). At most
	// Rate×Duration requests are sent, and the run ends at most 5 s after
	// Duration whatever the services do.
	Duration time.Duration
	// Workers is how many requests may be in flight (default 4).
	Workers int
	// Seed makes the mix of requests repeatable.
	Seed uint64
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Rate <= 0 {
		o.Rate = 40
	}
	if o.Duration <= 0 {
		o.Duration = 4 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	return o
}

// Report sums up what the load generator sent and got back.
type Report struct {
	Requests int            `json:"requests"`
	Failed   int            `json:"failed"` // no answer at all
	ByStatus map[int]int    `json:"by_status"`
	ByPath   map[string]int `json:"by_path"`
	// Reserves counts the gRPC calls to inventory (ReservePath) that the
	// answered checkouts made, one each, by the status the mix asks for:
	// OK, NotFound (an unknown item) or ResourceExhausted (more than is
	// in stock). Charges counts the HTTPS calls to payments (POST /charge)
	// they made: one for each reserved order.
	Reserves map[codes.Code]int `json:"reserves"`
	Charges  int                `json:"charges"`
	Elapsed  time.Duration      `json:"elapsed_ns"`
}

// String says what the report holds in one line.
func (r Report) String() string {
	var ok, c4, c5 int
	for code, n := range r.ByStatus {
		switch {
		case code >= 500:
			c5 += n
		case code >= 400:
			c4 += n
		default:
			ok += n
		}
	}
	reserves, failed := 0, 0
	for code, n := range r.Reserves {
		reserves += n
		if code != codes.OK {
			failed += n
		}
	}
	return fmt.Sprintf("%d requests in %.1fs: %d ok, %d 4xx, %d 5xx, %d without answer; checkout made %d gRPC calls to inventory (%d failed) and %d HTTPS calls to payments",
		r.Requests, r.Elapsed.Seconds(), ok, c4, c5, r.Failed, reserves, failed, r.Charges)
}

// call is one request of the mix.
type call struct {
	method, path, body string
	// reserve is, for a checkout, the status of the Reserve call it
	// makes to inventory.
	reserve codes.Code
}

// nextCall picks a request: the home page, a product page (product 9
// does not exist, product 7 is slow), a checkout (some with a declined
// card, an unknown item or more of an item than is in stock) or a page
// that does not exist.
func nextCall(r *rand.Rand) call {
	switch p := r.IntN(100); {
	case p < 30:
		return call{"GET", "/", "", codes.OK}
	case p < 65:
		return call{"GET", fmt.Sprintf("/product/%d", 1+r.IntN(9)), "", codes.OK}
	case p < 95:
		req := CheckoutRequest{Card: "4242-4242-4242-4242"}
		for range 1 + r.IntN(2) {
			req.Items = append(req.Items, Item{ID: 1 + r.IntN(6), Qty: 1 + r.IntN(3)})
		}
		reserve := codes.OK
		switch q := r.IntN(10); {
		case q == 0:
			req.Card = declinedCard
		case q == 1:
			req.Items = append(req.Items, Item{ID: 12, Qty: 1})
			reserve = codes.NotFound
		case q == 2:
			req.Items = append(req.Items, Item{ID: scarceProduct, Qty: scarceQty})
			reserve = codes.ResourceExhausted
		}
		b, _ := json.Marshal(req)
		return call{"POST", "/cart/checkout", string(b), reserve}
	default:
		return call{"GET", "/admin", "", codes.OK}
	}
}

// An order for scarceQty of scarceProduct asks for more than is in stock.
const (
	scarceProduct = 7
	scarceQty     = 4
)

// Drive sends the request mix to the frontend and reports what came back.
func Drive(ctx context.Context, o LoadOptions) (Report, error) {
	o = o.withDefaults()
	if o.Target == "" {
		return Report{}, fmt.Errorf("demo loadgen: no target")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration+5*time.Second)
	defer cancel()
	c := newClient(o.Env)
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	total := int(float64(o.Rate) * o.Duration.Seconds())
	calls := make(chan call)
	rep := Report{ByStatus: map[int]int{}, ByPath: map[string]int{}, Reserves: map[codes.Code]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cl := range calls {
				var code int
				var err error
				if cl.method == http.MethodPost {
					code, err = post(ctx, c, o.Target+cl.path, []byte(cl.body), nil)
				} else {
					code, err = getJSON(ctx, c, o.Target+cl.path, nil)
				}
				mu.Lock()
				rep.Requests++
				rep.ByPath[cl.method+" "+pathPattern(cl.path)]++
				if err != nil && code == 0 {
					rep.Failed++
				} else {
					rep.ByStatus[code]++
					if cl.path == "/cart/checkout" {
						rep.Reserves[cl.reserve]++
						if cl.reserve == codes.OK {
							rep.Charges++
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
send:
	for i := 0; i < total; i++ {
		cl := nextCall(rng)
		select {
		case calls <- cl:
		case <-ctx.Done():
			break send
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break send
		}
	}
	close(calls)
	wg.Wait()
	rep.Elapsed = time.Since(start)
	c.CloseIdleConnections()
	return rep, nil
}

// pathPattern folds product ids so that reports stay short.
func pathPattern(p string) string {
	if len(p) > len("/product/") && p[:len("/product/")] == "/product/" {
		return "/product/{id}"
	}
	return p
}

// Paths lists a report's paths, sorted.
func (r Report) Paths() []string {
	var out []string
	for p := range r.ByPath {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
