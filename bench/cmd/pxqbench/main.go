// Command pxqbench times pxq's executor against DuckDB (single-threaded)
// on http_events-shaped data and prints a Markdown table. With -e2e it
// times `pxq run` against DuckDB end to end over the same Parquet file
// instead (e2e.go); with -anchor it times the end-to-end queries' shapes
// with both engines in memory (anchor.go).
//
//	go run ./cmd/pxqbench -rows 10000000 -runs 5
//	go run ./cmd/pxqbench -e2e -pxq /tmp/pxq -rows 10000000 -runs 5
//	go run ./cmd/pxqbench -anchor -threads 1,2 -rows 10000000 -runs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/bench/duck"
	"github.com/pxq-dev/pxq/bench/workload"
	"github.com/pxq-dev/pxq/exec"
)

func main() {
	rows := flag.Int("rows", 10_000_000, "rows of http_events")
	batch := flag.Int("batch", 8192, "rows per stored batch (the table writer's default)")
	runs := flag.Int("runs", 5, "timed runs per query and engine (the median is reported)")
	only := flag.String("q", "", "run only queries whose name contains this")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of pxq's runs to this file")
	noDuck := flag.Bool("noduck", false, "skip DuckDB")
	endToEnd := flag.Bool("e2e", false, "end to end: pxq run and DuckDB over the same Parquet file, each query a fresh process (-pxq names the pxq binary)")
	pxqBin := flag.String("pxq", "", "with -e2e: the pxq binary to run")
	dir := flag.String("dir", os.TempDir(), "with -e2e: where the Parquet files are made (and reused)")
	rowGroup := flag.Int64("rowgroup", 1<<20, "with -e2e: rows per Parquet row group")
	duckq := flag.String("duckq", "", "run this SQL in DuckDB and print the number of rows (the child process of -e2e)")
	duckThreads := flag.Int("duckthreads", 0, "with -duckq: DuckDB's threads (0: every core)")
	anchorMode := flag.Bool("anchor", false, "the end-to-end queries' shapes over http_events in memory, both engines (workload.AnchorQueries)")
	threads := flag.String("threads", "1", "with -anchor: the thread counts to run (pxq's GOMAXPROCS and DuckDB's threads), comma-separated")
	flag.Parse()
	if *duckq != "" {
		duckQuery(*duckq, *duckThreads)
		return
	}
	if *endToEnd {
		e2e(e2eConfig{rows: *rows, dir: *dir, pxq: *pxqBin, runs: *runs, only: *only, rowGroup: *rowGroup})
		return
	}
	if *anchorMode {
		var ths []int
		for _, f := range strings.Split(*threads, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
				log.Fatalf("-threads %q: want positive numbers", *threads)
			}
			ths = append(ths, n)
		}
		anchor(anchorConfig{rows: *rows, batch: *batch, runs: *runs, only: *only, cpuprofile: *cpuprofile, threads: ths})
		return
	}
	runtime.GOMAXPROCS(1)
	ctx := context.Background()

	t0 := time.Now()
	recs := workload.Generate(*rows, *batch, 1)
	st, err := workload.Store(recs)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("generated %d rows in %d batches in %v", *rows, len(recs), time.Since(t0).Round(time.Millisecond))

	var db *duck.DB
	if !*noDuck {
		t0 = time.Now()
		if db, err = duck.Open(ctx); err != nil {
			log.Fatal(err)
		}
		defer db.Close()
		if err := db.Load(ctx, "http_events", workload.Relation, recs); err != nil {
			log.Fatal(err)
		}
		if err := db.Load(ctx, "services", workload.DimRelation, []arrow.Record{workload.Dim()}); err != nil {
			log.Fatal(err)
		}
		log.Printf("loaded DuckDB in %v", time.Since(t0).Round(time.Millisecond))
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	fmt.Printf("%d rows, %d-row batches, median of %d runs, GOMAXPROCS=1, DuckDB threads=1\n\n", *rows, *batch, *runs)
	fmt.Println("| query | pxq | pxq rows/s | pxq allocs | pxq alloc bytes | DuckDB | DuckDB rows/s | pxq / DuckDB |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, q := range workload.Queries {
		if *only != "" && !strings.Contains(q.Name, *only) {
			continue
		}
		// pxq and DuckDB runs alternate, so that both see the same load
		// on a shared machine; the first run of each is a warm-up.
		var pxqT, duckT []time.Duration
		var allocs, bytes uint64
		var out int64
		for i := 0; i < *runs+1; i++ {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			start := time.Now()
			res, err := exec.Collect(ctx, q.Plan(), exec.Options{Store: st, MaxRowsPerTable: -1, MemoryLimit: -1})
			d := time.Since(start)
			runtime.ReadMemStats(&m1)
			if err != nil {
				log.Fatalf("%s: %v", q.Name, err)
			}
			if i == 0 {
				out = res[0].NumRows()
			} else {
				pxqT = append(pxqT, d)
				allocs, bytes = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
			}
			if db == nil {
				continue
			}
			runtime.GC()
			start = time.Now()
			rows, err := db.Query(ctx, q.SQL)
			d = time.Since(start)
			if err != nil {
				log.Fatalf("%s (DuckDB): %v", q.Name, err)
			}
			if i == 0 {
				if int64(len(rows)) != out {
					log.Printf("%s: pxq returned %d rows, DuckDB %d", q.Name, out, len(rows))
				}
				continue
			}
			duckT = append(duckT, d)
		}
		pm := median(pxqT)
		duckCol, duckRate, ratio := "–", "–", "–"
		if db != nil {
			dm := median(duckT)
			duckCol, duckRate = fmtDur(dm), rate(*rows, dm)
			ratio = fmt.Sprintf("%.2f", float64(pm)/float64(dm))
		}
		fmt.Printf("| %s | %s | %s | %d | %s | %s | %s | %s |\n", q.Name, fmtDur(pm), rate(*rows, pm), allocs, fmtBytes(bytes), duckCol, duckRate, ratio)
	}
	fmt.Println()
	for _, q := range workload.Queries {
		if *only == "" || strings.Contains(q.Name, *only) {
			fmt.Printf("- %s: %s\n", q.Name, q.Desc)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func rate(rows int, d time.Duration) string {
	r := float64(rows) / d.Seconds()
	switch {
	case r >= 1e9:
		return fmt.Sprintf("%.2f G", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%.0f M", r/1e6)
	}
	return fmt.Sprintf("%.0f k", r/1e3)
}

func fmtBytes(b uint64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
