package query

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/types"
)

// Collect runs req and returns its tables, held in memory.
func (r *Runner) Collect(ctx context.Context, req Request) ([]*format.Table, Result, error) {
	var c Collector
	res, err := r.Run(ctx, req, &c)
	return c.Tables, res, err
}

// Collector is an exec.Output that keeps every table in memory.
type Collector struct {
	Tables []*format.Table
	byName map[string]*format.Table
}

func (c *Collector) Table(name string, rel types.Relation) error {
	if c.byName == nil {
		c.byName = map[string]*format.Table{}
	}
	t := &format.Table{Name: name, Relation: rel}
	c.byName[name] = t
	c.Tables = append(c.Tables, t)
	return nil
}

func (c *Collector) Batch(name string, rec arrow.Record) error {
	t := c.byName[name]
	if t == nil {
		return fmt.Errorf("batch for unannounced table %q", name)
	}
	t.Records = append(t.Records, rec)
	return nil
}

func (c *Collector) Done(name string, truncated bool) error {
	if t := c.byName[name]; t != nil {
		t.Truncated = truncated
	}
	return nil
}
