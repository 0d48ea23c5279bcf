package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/parquet/compress"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pxq-dev/pxq/bench/workload"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
)

// The end-to-end mode: the same queries over the same Parquet file,
// DuckDB reading the file in place and `pxq run` running the script on
// it, each a fresh process (so both pay their start, as a user does),
// interleaved, with one thread and with every core.

type e2eConfig struct {
	rows     int
	dir      string
	pxq      string
	runs     int
	only     string
	rowGroup int64
}

// e2eFiles makes (or reuses) the benchmark's files in dir.
func e2eFiles(c e2eConfig) (events, pods string) {
	events = filepath.Join(c.dir, fmt.Sprintf("http_events-%d.parquet", c.rows))
	pods = filepath.Join(c.dir, "pods.parquet")
	if _, err := os.Stat(events); err != nil {
		t0 := time.Now()
		g := workload.NewHTTPGenerator(1)
		tmp := events + ".tmp"
		if err := workload.WriteParquet(tmp, workload.HTTPRelation, c.rows, 65536, g.Next,
			workload.ParquetOptions{RowGroup: c.rowGroup, Codec: compress.Codecs.Zstd}); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, events); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s in %v", events, time.Since(t0).Round(time.Millisecond))
	}
	if err := workload.WriteParquet(pods, workload.PodsRelation, workload.HTTPClients, workload.HTTPClients,
		func(int) arrow.Record { return workload.Pods() }, workload.ParquetOptions{RowGroup: 1 << 20, Codec: compress.Codecs.Zstd}); err != nil {
		log.Fatal(err)
	}
	return events, pods
}

// run is one timed process.
type run struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // bytes
	out    string        // stdout
}

// gnuTime is GNU time, which reports a child's peak RSS: the kernel's
// figure for a child of this (large) process would include this
// process's memory at the fork.
const gnuTime = "/usr/bin/time"

func timed(cmd *exec.Cmd) (run, error) {
	var rssFile string
	if _, err := os.Stat(gnuTime); err == nil {
		f, err := os.CreateTemp("", "pxqbench-rss")
		if err != nil {
			return run{}, err
		}
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		args := append([]string{gnuTime, "-f", "%M", "-o", rssFile}, cmd.Args...)
		cmd.Path, cmd.Args = gnuTime, args
	}
	var out strings.Builder
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := run{wall: time.Since(t0), out: out.String()}
	if err != nil {
		return r, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, errb.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if rssFile != "" {
		b, err := os.ReadFile(rssFile)
		if err != nil {
			return r, err
		}
		var kb int64
		fields := strings.Fields(string(b))
		if len(fields) > 0 {
			fmt.Sscan(fields[len(fields)-1], &kb)
		}
		r.maxRSS = kb * 1024
	}
	return r, nil
}

// pxqRun runs the script with GOMAXPROCS=threads (0: the default, every
// core).
func pxqRun(c e2eConfig, script, events, pods string, threads int) (run, error) {
	cmd := exec.Command(c.pxq, "run", script, "--table", "http_events="+events, "--table", "pods="+pods,
		"-o", "csv", "--max-rows", "10000000")
	cmd.Env = os.Environ()
	if threads > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", threads))
	}
	return timed(cmd)
}

// duckRun runs the query in a fresh process: this program with -duckq.
func duckRun(q string, threads int) (run, error) {
	self, err := os.Executable()
	if err != nil {
		return run{}, err
	}
	return timed(exec.Command(self, "-duckq", q, "-duckthreads", fmt.Sprint(threads)))
}

// duckQuery is the child process of duckRun: it runs q in an in-memory
// DuckDB with threads threads (0: DuckDB's default, every core) and
// prints the number of rows.
func duckQuery(q string, threads int) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if threads > 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET threads = %d", threads)); err != nil {
			log.Fatal(err)
		}
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			log.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
}

// csvRows counts the data rows of pxq's CSV output (one table).
func csvRows(out string) int {
	n := strings.Count(out, "\n") - 1 // the header
	return max(n, 0)
}

// bytesRead runs the script in this process on an engine over the same
// files and returns the bytes its scans read from the events file (its
// metadata included).
func bytesRead(script, events, pods string) (int64, int64) {
	eng, err := engine.New(engine.Config{Limits: query.Limits{MaxRowsPerTable: -1, MaxResultRows: -1}})
	if err != nil {
		log.Fatal(err)
	}
	tb, err := eng.Store().Load("http_events", events, tables.All["http_events"].Relation)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := eng.Store().Load("pods", pods, nil); err != nil {
		log.Fatal(err)
	}
	ft := tb.Files()[0]
	before := ft.Reads().Bytes
	s, err := scripts.NewLibrary().Load(script)
	if err != nil {
		log.Fatal(err)
	}
	var col query.Collector
	if _, err := eng.Run(context.Background(), engine.Query{Script: s}, &col); err != nil {
		log.Fatal(err)
	}
	return ft.Reads().Bytes - before, ft.Size()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func e2e(c e2eConfig) {
	if c.pxq == "" {
		log.Fatal("-e2e needs -pxq PATH, a pxq binary (go build -o /tmp/pxq ./cmd/pxq)")
	}
	events, pods := e2eFiles(c)
	st, err := os.Stat(events)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pxqbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%d rows of http_events (every column), %.1f MB of Parquet (zstd, %d-row groups); %d cores; "+
		"each query a fresh process, median of %d interleaved runs after a warm-up; load average at the start: %s\n\n",
		c.rows, float64(st.Size())/1e6, c.rowGroup, runtime.NumCPU(), c.runs, loadAvg())
	fmt.Println("| query | DuckDB, 1 thread | pxq, 1 thread | pxq / DuckDB | DuckDB, all cores | pxq, all cores | pxq / DuckDB | pxq peak RSS | pxq reads of the file |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	threads := []int{1, 0}
	for _, q := range workload.FileQueries {
		if c.only != "" && !strings.Contains(q.Name, c.only) {
			continue
		}
		script := filepath.Join(dir, q.Name+".pxl")
		if err := os.WriteFile(script, []byte("import px\n"+q.PxL+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
		sqlq := strings.NewReplacer("{events}", events, "{pods}", pods).Replace(q.SQL)
		times := map[string][]time.Duration{}
		var rss int64
		for i := 0; i < c.runs+1; i++ {
			for _, th := range threads {
				// Alternate which engine goes first.
				order := []string{"pxq", "duck"}
				if i%2 == 1 {
					order = []string{"duck", "pxq"}
				}
				for _, eng := range order {
					var r run
					var err error
					if eng == "pxq" {
						r, err = pxqRun(c, script, events, pods, th)
					} else {
						r, err = duckRun(sqlq, th)
					}
					if err != nil {
						log.Fatalf("%s: %v", q.Name, err)
					}
					if i == 0 {
						continue // warm-up
					}
					key := fmt.Sprintf("%s/%d", eng, th)
					times[key] = append(times[key], r.wall)
					if eng == "pxq" {
						rss = max(rss, r.maxRSS)
						if i == 1 && th == 1 {
							d, _ := duckRun(sqlq, 1)
							if got, want := csvRows(r.out), strings.TrimSpace(d.out); fmt.Sprint(got) != want {
								log.Printf("%s: pxq returned %d rows, DuckDB %s", q.Name, got, want)
							}
						}
					}
				}
			}
		}
		read, size := bytesRead(script, events, pods)
		cell := func(eng string, th int) time.Duration { return median(times[fmt.Sprintf("%s/%d", eng, th)]) }
		ratio := func(th int) string { return fmt.Sprintf("%.2f", float64(cell("pxq", th))/float64(cell("duck", th))) }
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f %% |\n", q.Name,
			fmtDur(cell("duck", 1)), fmtDur(cell("pxq", 1)), ratio(1),
			fmtDur(cell("duck", 0)), fmtDur(cell("pxq", 0)), ratio(0),
			fmtBytes(uint64(rss)), 100*float64(read)/float64(size))
	}
	fmt.Printf("\nLoad average at the end: %s\n\n", loadAvg())
	for _, q := range workload.FileQueries {
		if c.only == "" || strings.Contains(q.Name, c.only) {
			fmt.Printf("- %s: %s\n", q.Name, q.Desc)
		}
	}
}
