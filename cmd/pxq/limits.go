package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
)

// limitFlags bound the queries a server runs: each one (time, memory,
// result size) and all of them together (how many, how much memory).
type limitFlags struct {
	timeout        time.Duration
	queryMemory    byteSize
	maxResultRows  int64
	maxResultBytes byteSize
	maxQueries     int
	totalMemory    byteSize
	scriptMemory   byteSize
	maxOutputs     int
}

// limitSet chooses the flags a command takes.
type limitSet int

const (
	limitTimeout   limitSet = 1 << iota // --query-timeout
	limitMemory                         // --query-memory
	limitResults                        // --max-result-rows, --max-result-bytes
	limitAdmission                      // --max-concurrent-queries, --total-query-memory
	limitScript                         // --script-memory, --max-outputs
)

// register adds the flags of set to c.
func (l *limitFlags) register(c *cobra.Command, set limitSet) {
	f := c.Flags()
	l.queryMemory = query.DefaultQueryMemory
	l.totalMemory = query.DefaultTotalMemory
	l.maxResultBytes = query.DefaultMaxResultBytes
	l.maxResultRows = query.DefaultMaxResultRows
	l.maxQueries = query.DefaultMaxQueries
	l.scriptMemory = lang.DefaultMaxMemory
	l.maxOutputs = lang.DefaultMaxOutputs
	if set&limitTimeout != 0 {
		f.DurationVar(&l.timeout, "query-timeout", query.DefaultTimeout, "deadline of a query whose client sets none")
	}
	if set&limitMemory != 0 {
		f.Var(&l.queryMemory, "query-memory", "most memory one query's aggregates and joins may hold (e.g. 512MiB); past it the query fails")
	}
	if set&limitResults != 0 {
		f.Int64Var(&l.maxResultRows, "max-result-rows", query.DefaultMaxResultRows, "most rows one query returns, all tables together; the rest is cut, with a warning (-1: no bound)")
		f.Var(&l.maxResultBytes, "max-result-bytes", "most bytes one query returns (e.g. 256MiB); the rest is cut, with a warning (-1: no bound)")
	}
	if set&limitScript != 0 {
		f.Var(&l.scriptMemory, "script-memory", "most memory the values a script builds while it compiles may take (e.g. 256MiB); past it the script fails")
		f.IntVar(&l.maxOutputs, "max-outputs", lang.DefaultMaxOutputs, "most output tables (px.display calls) of one script")
	}
	if set&limitAdmission != 0 {
		f.IntVar(&l.maxQueries, "max-concurrent-queries", query.DefaultMaxQueries, "most queries running at once; more are refused as \"server busy\"")
		f.Var(&l.totalMemory, "total-query-memory", "most memory the running queries may hold together, --query-memory each; more are refused as \"server busy\"")
	}
}

// limits returns the per-query limits, with the compiler's defaults.
func (l *limitFlags) limits() query.Limits {
	return query.Limits{Timeout: l.timeout, QueryMemory: int64(l.queryMemory), MaxResultRows: l.maxResultRows, MaxResultBytes: int64(l.maxResultBytes),
		ScriptMemory: int64(l.scriptMemory), MaxOutputs: l.maxOutputs}
}

// gate returns the admission gate of the flags.
func (l *limitFlags) gate() (*query.Gate, error) {
	if l.queryMemory > 0 && l.totalMemory > 0 && l.queryMemory > l.totalMemory {
		return nil, usagef("--query-memory %s is more than --total-query-memory %s: no query could run", &l.queryMemory, &l.totalMemory)
	}
	if l.maxQueries <= 0 {
		return nil, usagef("--max-concurrent-queries %d: want at least 1", l.maxQueries)
	}
	return query.NewGate(l.maxQueries, int64(l.totalMemory)), nil
}

// byteSize is a flag of bytes: a number with an optional unit, K, M, G
// or T (powers of 1024; KiB, MB, … mean the same), or -1 for no bound.
type byteSize int64

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(t)
	upper = strings.TrimSuffix(strings.TrimSuffix(upper, "B"), "I")
	for i, u := range []string{"K", "M", "G", "T"} {
		if strings.HasSuffix(upper, u) {
			mult = 1 << (10 * (i + 1))
			upper = strings.TrimSuffix(upper, u)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(upper), 10, 64)
	if err != nil || (n < 0 && n != -1) {
		return fmt.Errorf("%q: want bytes such as 268435456, 256MiB or 1G (-1: no bound)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) String() string {
	n := int64(*b)
	switch {
	case n > 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func (*byteSize) Type() string { return "bytes" }

// applyMemoryLimit sets the Go memory limit of a process whose store is
// bounded to storeBytes (engine.SetMemoryLimit: the store plus a fixed
// overhead, within the cgroup's limit, unless GOMEMLIMIT is set), and
// says on w when the store does not fit in the container.
func applyMemoryLimit(w io.Writer, storeBytes int64) {
	s, err := engine.SetMemoryLimit(storeBytes)
	if err != nil {
		fmt.Fprintf(w, "pxq: reading this process's cgroup memory limit: %v\n", err)
	}
	if s.Warning != "" {
		fmt.Fprintln(w, "pxq: warning: "+s.Warning)
	}
}
