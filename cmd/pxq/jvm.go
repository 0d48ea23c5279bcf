package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/sources/jvm"
)

// The JVM reader fills jvm_stats from every HotSpot JVM's hsperfdata
// file, every 10 s as the /proc sampler.
func init() {
	moreSources = append(moreSources, func(ctx context.Context, eng *engine.Engine) (io.Closer, error) {
		r, err := jvm.NewReader(jvm.Config{ASID: eng.ASID(), Period: 10 * time.Second}, eng.Store())
		if err != nil {
			return nil, fmt.Errorf("JVM stats are off: %w", err)
		}
		r.Start(ctx)
		return jvmCloser{r}, nil
	})
}

// jvmCloser takes a last sample as the reader stops, so that a capture
// shorter than the period still has the JVMs' state at its end.
type jvmCloser struct{ r *jvm.Reader }

func (c jvmCloser) Close() error {
	c.r.Sample(time.Now())
	return c.r.Close()
}
