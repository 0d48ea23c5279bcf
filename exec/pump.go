package exec

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
)

// pump runs work on n parts with several goroutines and hands back the
// batches each part emits in part order: those of part 0, then part 1,
// and so on, whichever goroutine made them and when. Goroutines take
// parts in order; a part's batches wait in a small channel, and a
// goroutine takes a part only while fewer than window parts are taken
// and not yet read, so what is held is a few batches per goroutine
// whatever the part sizes.
//
// The goroutines start at the first next and stop at close (or at the
// first error, which next returns).
type pump struct {
	n, workers int
	work       func(ctx context.Context, worker, part int, emit func(arrow.Record) error) error

	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	results []chan pumpItem
	taken   atomic.Int64  // parts taken by goroutines
	tokens  chan struct{} // one per part taken and not yet read
	cur     int           // the part next reads
}

type pumpItem struct {
	rec arrow.Record
	err error
}

// pumpQueue is how many batches of a part wait for the reader.
const pumpQueue = 2

func newPump(n, workers int, work func(ctx context.Context, worker, part int, emit func(arrow.Record) error) error) *pump {
	return &pump{n: n, workers: workers, work: work}
}

func (p *pump) start(ctx context.Context) {
	p.started = true
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.results = make([]chan pumpItem, p.n)
	for i := range p.results {
		p.results[i] = make(chan pumpItem, pumpQueue)
	}
	p.tokens = make(chan struct{}, 2*p.workers)
	p.wg.Add(p.workers)
	for w := 0; w < p.workers; w++ {
		go p.run(w)
	}
}

func (p *pump) run(w int) {
	defer p.wg.Done()
	for {
		select {
		case p.tokens <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		i := int(p.taken.Add(1) - 1)
		if i >= p.n {
			return
		}
		ch := p.results[i]
		err := p.runPart(w, i, ch)
		if err != nil {
			select {
			case ch <- pumpItem{err: err}:
			case <-p.ctx.Done():
			}
		}
		close(ch)
		if err != nil {
			return
		}
	}
}

// runPart runs work on part i, turning a panic into an error.
func (p *pump) runPart(w, i int, ch chan pumpItem) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.work(p.ctx, w, i, func(rec arrow.Record) error {
		select {
		case ch <- pumpItem{rec: rec}:
			return nil
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	})
}

func (p *pump) next(ctx context.Context) (arrow.Record, error) {
	if !p.started {
		p.start(ctx)
	}
	for p.cur < p.n {
		select {
		case it, ok := <-p.results[p.cur]:
			if !ok {
				p.cur++
				<-p.tokens
				continue
			}
			if it.err != nil {
				p.close()
				return nil, it.err
			}
			return it.rec, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

// close stops the goroutines and waits for them.
func (p *pump) close() {
	if p.started && p.cancel != nil {
		p.cancel()
		p.wg.Wait()
		p.cancel = nil
		p.cur = p.n
	}
}
