package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/bench/duck"
	"github.com/pxq-dev/pxq/bench/workload"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
)

// The anchor mode: the end-to-end queries' shapes over http_events in
// memory (workload.AnchorQueries), pxq running the compiled script's
// plan on its table store and DuckDB the SQL on its own tables, the two
// interleaved, with each thread count asked for.

type anchorConfig struct {
	rows, batch, runs int
	only, cpuprofile  string
	threads           []int
}

func anchor(c anchorConfig) {
	ctx := context.Background()
	t0 := time.Now()
	recs := workload.AnchorRecords(c.rows, c.batch, 1)
	st, err := workload.AnchorStore(recs)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("generated %d rows in %d batches in %v", c.rows, len(recs), time.Since(t0).Round(time.Millisecond))
	if c.cpuprofile != "" {
		anchorProfiles(ctx, c, st)
		return
	}
	t0 = time.Now()
	db, err := duck.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := db.Load(ctx, "http_events", workload.AnchorRelation, recs); err != nil {
		log.Fatal(err)
	}
	if err := db.Load(ctx, "pods", workload.PodsRelation, []arrow.Record{workload.Pods()}); err != nil {
		log.Fatal(err)
	}
	log.Printf("loaded DuckDB in %v", time.Since(t0).Round(time.Millisecond))
	recs = nil
	runtime.GC()

	fmt.Printf("%d rows of http_events (%d columns) in %d-row batches in memory, median of %d interleaved runs after a warm-up, "+
		"DuckDB threads = pxq GOMAXPROCS, CPU time the process's (rusage); load average at the start: %s\n\n", c.rows, len(workload.AnchorColumns), c.batch, c.runs, loadAvg())
	head := "| query |"
	rule := "|---|"
	for _, th := range c.threads {
		head += fmt.Sprintf(" DuckDB, %[1]d thread(s) | pxq, %[1]d thread(s) | pxq / DuckDB | pxq / DuckDB, CPU time |", th)
		rule += "---:|---:|---:|---:|"
	}
	fmt.Println(head)
	fmt.Println(rule)
	for _, q := range workload.AnchorQueries {
		if !matches(c.only, q.Name) {
			continue
		}
		p := compileAnchor(q, st)
		times := map[string][]time.Duration{}
		for i := 0; i < c.runs+1; i++ {
			for _, th := range c.threads {
				if _, err := db.Conn.ExecContext(ctx, fmt.Sprintf("SET threads = %d", th)); err != nil {
					log.Fatal(err)
				}
				runtime.GOMAXPROCS(th)
				order := []string{"pxq", "duck"}
				if i%2 == 1 {
					order = []string{"duck", "pxq"}
				}
				for _, eng := range order {
					runtime.GC()
					var d time.Duration
					var n int64
					cpu0 := cpuTime()
					if eng == "pxq" {
						d, n = runPlan(ctx, q.Name, p, st)
					} else {
						start := time.Now()
						rows, err := db.Query(ctx, q.SQL)
						d = time.Since(start)
						if err != nil {
							log.Fatalf("%s (DuckDB): %v", q.Name, err)
						}
						n = int64(len(rows))
					}
					if i == 0 {
						times["rows/"+eng] = append(times["rows/"+eng], time.Duration(n))
						continue
					}
					key := fmt.Sprintf("%s/%d", eng, th)
					times[key] = append(times[key], d)
					times["cpu/"+key] = append(times["cpu/"+key], cpuTime()-cpu0)
				}
			}
		}
		if r := times["rows/pxq"]; len(r) > 0 && r[0] != times["rows/duck"][0] {
			log.Printf("%s: pxq returned %d rows, DuckDB %d", q.Name, r[0], times["rows/duck"][0])
		}
		line := "| " + q.Name + " |"
		for _, th := range c.threads {
			dm, pm := median(times[fmt.Sprintf("duck/%d", th)]), median(times[fmt.Sprintf("pxq/%d", th)])
			dc, pc := median(times[fmt.Sprintf("cpu/duck/%d", th)]), median(times[fmt.Sprintf("cpu/pxq/%d", th)])
			line += fmt.Sprintf(" %s | %s | %.2f | %.2f |", fmtDur(dm), fmtDur(pm), float64(pm)/float64(dm), float64(pc)/float64(dc))
		}
		fmt.Println(line)
	}
	fmt.Printf("\nLoad average at the end: %s\n\n", loadAvg())
	for _, q := range workload.AnchorQueries {
		if matches(c.only, q.Name) {
			fmt.Printf("- %s: %s\n", q.Name, q.Desc)
		}
	}
}

func compileAnchor(q workload.AnchorQuery, st *table.Store) *plan.Plan {
	p, err := engine.Compile(query.Request{Script: &scripts.Script{Name: q.Name, Path: q.Name + ".pxl", PXL: []byte("import px\n" + q.PxL + "\n")}},
		engine.StoreCatalog{Store: st})
	if err != nil {
		log.Fatalf("%s: %v", q.Name, err)
	}
	return p
}

// anchorProfiles writes a CPU profile of pxq's runs of each query, one
// file per query (c.cpuprofile.NAME), at the first thread count.
func anchorProfiles(ctx context.Context, c anchorConfig, st *table.Store) {
	runtime.GOMAXPROCS(c.threads[0])
	for _, q := range workload.AnchorQueries {
		if !matches(c.only, q.Name) {
			continue
		}
		p := compileAnchor(q, st)
		runPlan(ctx, q.Name, p, st)
		f, err := os.Create(c.cpuprofile + "." + q.Name)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		var ds []time.Duration
		for i := 0; i < c.runs; i++ {
			d, _ := runPlan(ctx, q.Name, p, st)
			ds = append(ds, d)
		}
		pprof.StopCPUProfile()
		f.Close()
		log.Printf("%s: median %v, profile %s", q.Name, median(ds), f.Name())
	}
}

// matches reports whether name contains one of the comma-separated
// parts of only (every name matches an empty only).
func matches(only, name string) bool {
	if only == "" {
		return true
	}
	for _, p := range strings.Split(only, ",") {
		if strings.Contains(name, p) {
			return true
		}
	}
	return false
}

// cpuTime is the process's user and system time so far. Under load it
// is steadier than wall time; it counts every thread of the process
// (the Go runtime's and DuckDB's).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runPlan runs p on st and returns its time and its first table's rows.
func runPlan(ctx context.Context, name string, p *plan.Plan, st *table.Store) (time.Duration, int64) {
	start := time.Now()
	res, err := exec.Collect(ctx, p, exec.Options{Store: st, MaxRowsPerTable: -1, MemoryLimit: -1})
	d := time.Since(start)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return d, res[0].NumRows()
}
