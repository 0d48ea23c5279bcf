package workload

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// The end-to-end benchmark reads files: http_events with every column of
// the real table (so that library scripts and `pxq run --table` take it
// as it is), and a pods table to join it with.

// HTTPRelation is http_events' relation, as pxq declares it.
var HTTPRelation = tables.All["http_events"].Relation

// PodsRelation is the pods table: one row per client pod IP.
var PodsRelation = types.Relation{
	{Name: "pod_ip", Type: types.String, Semantic: types.STIPAddress},
	{Name: "pod", Type: types.String, Semantic: types.STPodName},
	{Name: "namespace", Type: types.String, Semantic: types.STNamespaceName},
}

// Shape of the generated http_events rows.
const (
	// HTTPPaths is the number of distinct request paths (Zipf); with
	// the 4 methods, group by (req_method, req_path) has about 20 k
	// groups.
	HTTPPaths = 5000
	// HTTPServers is the number of traced server processes (local_addr,
	// upid).
	HTTPServers = 20
	// HTTPClients is the number of client pods (remote_addr), the rows
	// of the pods table.
	HTTPClients = 300
	// HTTPNamespaces is the number of namespaces of the pods.
	HTTPNamespaces = 10
	// HTTPStart is the first row's time; rows are 360 µs apart (10 M
	// rows span an hour).
	HTTPStart = int64(1_700_000_000_000_000_000)
	HTTPStep  = int64(360_000)
)

// HTTPGenerator makes http_events rows batch by batch, deterministic for
// a seed.
type HTTPGenerator struct {
	r                 *rand.Rand
	zipf              *rand.Zipf
	row               int64
	paths             []string
	reqHeaders        []string
	respHeaders       []string
	bodies            []string
	servers, clients  []string
	upids             []types.UInt128Value
	schema            *arrow.Schema
	idx               map[string]int
	methods, messages []string
}

// NewHTTPGenerator returns a generator of http_events rows.
func NewHTTPGenerator(seed int64) *HTTPGenerator {
	r := rand.New(rand.NewSource(seed))
	g := &HTTPGenerator{r: r, zipf: rand.NewZipf(r, 1.1, 4, HTTPPaths-1), schema: HTTPRelation.ArrowSchema(), idx: map[string]int{}}
	for i, c := range HTTPRelation {
		g.idx[c.Name] = i
	}
	resources := []string{"users", "orders", "carts", "items", "payments", "sessions", "search", "reviews"}
	for i := 0; i < HTTPPaths; i++ {
		g.paths = append(g.paths, fmt.Sprintf("/api/v%d/%s/%d", 1+i%3, resources[i%len(resources)], i))
	}
	agents := []string{"curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31", "Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.12.0"}
	for i := 0; i < 64; i++ {
		g.reqHeaders = append(g.reqHeaders, fmt.Sprintf(`{"Accept":"application/json","Host":"svc-%02d.default.svc.cluster.local:8080","User-Agent":%q,"X-Request-Id":"`,
			i%HTTPServers, agents[i%len(agents)]))
		g.respHeaders = append(g.respHeaders, fmt.Sprintf(`{"Content-Length":"%d","Content-Type":"application/json","Date":"Tue, 14 Nov 2023 22:13:%02d GMT"}`, 100+r.Intn(900), i%60))
	}
	for i := 0; i < 512; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, `{"id":%d,"items":[`, r.Intn(1_000_000))
		for k := 0; k < 1+r.Intn(4); k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"sku":"SKU-%05d","qty":%d}`, r.Intn(100000), 1+r.Intn(9))
		}
		b.WriteString("]}")
		g.bodies = append(g.bodies, b.String())
	}
	for i := 0; i < HTTPServers; i++ {
		g.servers = append(g.servers, fmt.Sprintf("10.0.0.%d", 10+i))
		g.upids = append(g.upids, types.UPID(1, uint32(1000+i), 7_000_000+uint64(i)))
	}
	for i := 0; i < HTTPClients; i++ {
		g.clients = append(g.clients, PodIP(i))
	}
	g.methods = []string{"GET", "POST", "PUT", "DELETE"}
	g.messages = []string{"OK", "Moved Permanently", "Not Found", "Internal Server Error"}
	return g
}

// PodIP is the IP address of client pod i.
func PodIP(i int) string { return fmt.Sprintf("10.1.%d.%d", i/250, 1+i%250) }

// Next returns the next n rows.
func (g *HTTPGenerator) Next(n int) arrow.Record {
	r := g.r
	times := make([]int64, n)
	upids := make([]byte, 16*n)
	ints := map[string][]int64{}
	for _, c := range HTTPRelation {
		if c.Type == types.Int64 {
			ints[c.Name] = make([]int64, n)
		}
	}
	strs := map[string]*funcs.StringsBuilder{}
	for _, c := range HTTPRelation {
		if c.Type == types.String {
			strs[c.Name] = funcs.NewStringsBuilder(n, 16)
		}
	}
	enc := funcs.BoolBitmap(n)
	for i := 0; i < n; i++ {
		times[i] = HTTPStart + g.row*HTTPStep + int64(r.Intn(int(HTTPStep)))
		g.row++
		srv := r.Intn(HTTPServers)
		types.PutUInt128(upids[16*i:], g.upids[srv])
		strs["remote_addr"].Append(g.clients[r.Intn(HTTPClients)])
		ints["remote_port"][i] = int64(32768 + r.Intn(28000))
		strs["local_addr"].Append(g.servers[srv])
		ints["local_port"][i] = 8080
		ints["trace_role"][i] = 2
		funcs.SetBit(enc, i, r.Intn(10) == 0)
		ints["major_version"][i] = 1
		ints["minor_version"][i] = 1
		ints["content_type"][i] = 1
		// Every request has its own id, as real headers do: this column
		// does not fit a dictionary.
		h := strs["req_headers"]
		buf := append(h.Buf(), g.reqHeaders[r.Intn(len(g.reqHeaders))]...)
		buf = strconv.AppendUint(buf, uint64(r.Uint32()), 16)
		h.Close(append(buf, `"}`...))
		var m int
		switch x := r.Intn(100); {
		case x < 70:
			m = 0
		case x < 90:
			m = 1
		case x < 95:
			m = 2
		default:
			m = 3
		}
		strs["req_method"].Append(g.methods[m])
		strs["req_path"].Append(g.paths[int(g.zipf.Uint64())])
		if m == 1 || m == 2 {
			b := g.bodies[r.Intn(len(g.bodies))]
			strs["req_body"].Append(b)
			ints["req_body_size"][i] = int64(len(b))
		} else {
			strs["req_body"].Append("")
		}
		strs["resp_headers"].Append(g.respHeaders[r.Intn(len(g.respHeaders))])
		var st int
		switch x := r.Intn(100); {
		case x < 2:
			st = 3
		case x < 5:
			st = 2
		case x < 6:
			st = 1
		}
		ints["resp_status"][i] = []int64{200, 301, 404, 500}[st]
		strs["resp_message"].Append(g.messages[st])
		b := g.bodies[r.Intn(len(g.bodies))]
		strs["resp_body"].Append(b)
		ints["resp_body_size"][i] = int64(len(b)) + int64(r.ExpFloat64()*800)
		ints["latency"][i] = int64(math.Exp(13 + r.NormFloat64()))
	}
	cols := make([]arrow.Array, len(HTTPRelation))
	for k, c := range HTTPRelation {
		switch c.Type {
		case types.Time64NS:
			cols[k] = funcs.NewTimeArray(times)
		case types.UInt128:
			cols[k] = funcs.NewUInt128Array(upids, n)
		case types.Int64:
			cols[k] = funcs.NewInt64Array(ints[c.Name])
		case types.String:
			cols[k] = strs[c.Name].Finish()
		case types.Boolean:
			cols[k] = funcs.NewBoolArray(enc, n)
		default:
			panic(fmt.Sprintf("http_events column %s: type %v", c.Name, c.Type))
		}
	}
	return array.NewRecord(g.schema, cols, int64(n))
}

// Pods returns the pods table: each client IP's pod and namespace.
func Pods() arrow.Record {
	ip := funcs.NewStringsBuilder(HTTPClients, 12)
	pod := funcs.NewStringsBuilder(HTTPClients, 24)
	ns := funcs.NewStringsBuilder(HTTPClients, 8)
	for i := 0; i < HTTPClients; i++ {
		ip.Append(PodIP(i))
		pod.Append(fmt.Sprintf("ns-%d/client-%03d-7d9f8", i%HTTPNamespaces, i))
		ns.Append(fmt.Sprintf("ns-%d", i%HTTPNamespaces))
	}
	return array.NewRecord(PodsRelation.ArrowSchema(), []arrow.Array{ip.Finish(), pod.Finish(), ns.Finish()}, HTTPClients)
}

// ParquetOptions say how WriteParquet lays a file out.
type ParquetOptions struct {
	RowGroup int64 // rows per row group
	Codec    compress.Compression
}

// WriteParquet writes rows rows of next (called for up to batch rows at
// a time) to path as Parquet with the Arrow schema stored.
func WriteParquet(path string, rel types.Relation, rows, batch int, next func(n int) arrow.Record, o ParquetOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(o.Codec), parquet.WithMaxRowGroupLength(o.RowGroup),
		parquet.WithDictionaryDefault(true), parquet.WithStats(true))
	w, err := pqarrow.NewFileWriter(rel.ArrowSchema(), f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		return err
	}
	var inGroup int64
	for done := 0; done < rows; {
		n := min(batch, rows-done, int(o.RowGroup-inGroup))
		rec := next(n)
		if err := w.WriteBuffered(rec); err != nil {
			w.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		rec.Release()
		done += n
		inGroup += int64(n)
		if inGroup == o.RowGroup && done < rows {
			w.NewBufferedRowGroup()
			inGroup = 0
		}
	}
	if err := w.Close(); err != nil { // closes f
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// FileQuery is a query of the end-to-end benchmark: a PxL script that
// `pxq run` runs over the files, and the SQL DuckDB runs over the same
// files in place ({events} and {pods} stand for their paths).
type FileQuery struct {
	Name, Desc string
	PxL, SQL   string
}

// FileQueries are the end-to-end benchmark's queries.
var FileQueries = []FileQuery{
	{Name: "count", Desc: "count the rows",
		PxL: `df = px.DataFrame('http_events')
df = df.agg(n=('time_', px.count))
px.display(df)`,
		SQL: `SELECT count(*) FROM read_parquet('{events}')`},
	{Name: "filter_count", Desc: "count the rows with resp_status >= 500 (2 %)",
		PxL: `df = px.DataFrame('http_events')
df = df[df.resp_status >= 500]
df = df.agg(n=('latency', px.count))
px.display(df)`,
		SQL: `SELECT count(latency) FROM read_parquet('{events}') WHERE resp_status >= 500`},
	{Name: "groupby_2keys", Desc: "group by req_method, req_path (20 k groups): count, mean and max of latency",
		PxL: `df = px.DataFrame('http_events')
df = df.groupby(['req_method', 'req_path']).agg(n=('latency', px.count), mean_latency=('latency', px.mean), max_latency=('latency', px.max))
px.display(df)`,
		SQL: `SELECT req_method, req_path, count(latency), avg(latency), max(latency) FROM read_parquet('{events}') GROUP BY 1, 2`},
	{Name: "quantiles", Desc: "group by req_method: quantiles of latency (DuckDB: approx_quantile at the 7 points)",
		PxL: `df = px.DataFrame('http_events')
df = df.groupby('req_method').agg(q=('latency', px.quantiles))
px.display(df)`,
		SQL: `SELECT req_method, approx_quantile(latency, [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) FROM read_parquet('{events}') GROUP BY 1`},
	{Name: "join", Desc: "join every row to the 300 pods on remote_addr, group by namespace: count, mean latency",
		PxL: `df = px.DataFrame('http_events')
pods = px.DataFrame('pods')
df = df.merge(pods, how='inner', left_on='remote_addr', right_on='pod_ip', suffixes=['', '_p'])
df = df.groupby('namespace').agg(n=('latency', px.count), mean_latency=('latency', px.mean))
px.display(df)`,
		SQL: `SELECT namespace, count(latency), avg(latency) FROM read_parquet('{events}') e JOIN read_parquet('{pods}') p ON e.remote_addr = p.pod_ip GROUP BY namespace`},
	{Name: "bins", Desc: "1-minute bins × local_addr (20 servers): count, mean latency",
		PxL: `df = px.DataFrame('http_events')
df.timestamp = px.bin(df.time_, px.minutes(1))
df = df.groupby(['timestamp', 'local_addr']).agg(n=('latency', px.count), mean_latency=('latency', px.mean))
px.display(df)`,
		SQL: `SELECT time_bucket(INTERVAL 1 minute, time_) AS t, local_addr, count(latency), avg(latency) FROM read_parquet('{events}') GROUP BY 1, 2`},
	{Name: "head", Desc: "the first 5 rows (every column) with resp_status == 500",
		PxL: `df = px.DataFrame('http_events')
df = df[df.resp_status == 500]
px.display(df.head(5))`,
		SQL: `SELECT * FROM read_parquet('{events}') WHERE resp_status = 500 LIMIT 5`},
}
