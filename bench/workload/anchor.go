package workload

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The anchor queries: the end-to-end benchmark's shapes (20 k groups of
// req_method × req_path, 1-minute bins × server, the 300-pod join) over
// http_events in memory, both engines holding the rows, so that the
// query alone is timed.

// AnchorColumns are the columns of http_events the anchor queries read;
// the in-memory table holds only these (every column of 10 M rows would
// not fit both engines).
var AnchorColumns = []string{"time_", "req_method", "req_path", "remote_addr", "local_addr", "resp_status", "latency", "req_body_size"}

// AnchorRelation is the in-memory http_events of the anchor queries.
var AnchorRelation = func() types.Relation {
	var r types.Relation
	for _, c := range AnchorColumns {
		r = append(r, HTTPRelation[HTTPRelation.Index(c)])
	}
	return r
}()

// AnchorRecords returns n rows of HTTPGenerator(seed), AnchorColumns
// only, in batches of batch rows.
func AnchorRecords(n, batch int, seed int64) []arrow.Record {
	g := NewHTTPGenerator(seed)
	idx := make([]int, len(AnchorColumns))
	for i, c := range AnchorColumns {
		idx[i] = HTTPRelation.Index(c)
	}
	schema := AnchorRelation.ArrowSchema()
	var out []arrow.Record
	for lo := 0; lo < n; lo += batch {
		rec := g.Next(min(batch, n-lo))
		cols := make([]arrow.Array, len(idx))
		for i, k := range idx {
			cols[i] = rec.Column(k)
		}
		out = append(out, array.NewRecord(schema, cols, rec.NumRows()))
	}
	return out
}

// AnchorStore loads the rows into a new store as http_events, with the
// pods table.
func AnchorStore(recs []arrow.Record) (*table.Store, error) {
	st := table.NewStore(0)
	tb, err := st.Create("http_events", AnchorRelation, table.Options{})
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if err := tb.Append(rec); err != nil {
			return nil, fmt.Errorf("http_events: %w", err)
		}
	}
	pt, err := st.Create("pods", PodsRelation, table.Options{})
	if err != nil {
		return nil, err
	}
	return st, pt.Append(Pods())
}

// AnchorQuery is an anchor query: a PxL script and the SQL of the same
// question over the tables http_events and pods.
type AnchorQuery struct {
	Name, Desc string
	PxL, SQL   string
}

// AnchorQueries are the anchor queries.
var AnchorQueries = []AnchorQuery{
	{Name: "filter_count", Desc: "count the rows with resp_status >= 500 (2 %)",
		PxL: `df = px.DataFrame('http_events')
df = df[df.resp_status >= 500]
df = df.agg(n=('latency', px.count))
px.display(df)`,
		SQL: `SELECT count(latency) FROM http_events WHERE resp_status >= 500`},
	{Name: "map_sum", Desc: "latency / 1e6, req_body_size > 1000 and length(req_path) on every row, summed to one row",
		PxL: `df = px.DataFrame('http_events')
df.latency_ms = df.latency / 1e6
df.big = df.req_body_size > 1000
df.path_len = px.length(df.req_path)
df = df.agg(ms=('latency_ms', px.sum), big_share=('big', px.mean), chars=('path_len', px.sum))
px.display(df)`,
		SQL: `SELECT sum(latency / 1e6), avg(CASE WHEN req_body_size > 1000 THEN 1.0 ELSE 0.0 END), sum(length(req_path)) FROM http_events`},
	{Name: "groupby_2keys", Desc: "group by req_method, req_path (20 k groups): count, mean and max of latency",
		PxL: `df = px.DataFrame('http_events')
df = df.groupby(['req_method', 'req_path']).agg(n=('latency', px.count), mean_latency=('latency', px.mean), max_latency=('latency', px.max))
px.display(df)`,
		SQL: `SELECT req_method, req_path, count(latency), avg(latency), max(latency) FROM http_events GROUP BY 1, 2`},
	{Name: "quantiles", Desc: "group by req_method: quantiles of latency (DuckDB: approx_quantile at the 7 points)",
		PxL: `df = px.DataFrame('http_events')
df = df.groupby('req_method').agg(q=('latency', px.quantiles))
px.display(df)`,
		SQL: `SELECT req_method, approx_quantile(latency, [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) FROM http_events GROUP BY 1`},
	{Name: "join", Desc: "join every row to the 300 pods on remote_addr, group by namespace: count, mean latency",
		PxL: `df = px.DataFrame('http_events')
pods = px.DataFrame('pods')
df = df.merge(pods, how='inner', left_on='remote_addr', right_on='pod_ip', suffixes=['', '_p'])
df = df.groupby('namespace').agg(n=('latency', px.count), mean_latency=('latency', px.mean))
px.display(df)`,
		SQL: `SELECT namespace, count(latency), avg(latency) FROM http_events e JOIN pods p ON e.remote_addr = p.pod_ip GROUP BY namespace`},
	{Name: "bins", Desc: "1-minute bins × local_addr (20 servers): count, mean latency",
		PxL: `df = px.DataFrame('http_events')
df.timestamp = px.bin(df.time_, px.minutes(1))
df = df.groupby(['timestamp', 'local_addr']).agg(n=('latency', px.count), mean_latency=('latency', px.mean))
px.display(df)`,
		SQL: `SELECT time_bucket(INTERVAL 1 minute, time_) AS t, local_addr, count(latency), avg(latency) FROM http_events GROUP BY 1, 2`},
	{Name: "head", Desc: "the first 5 rows with resp_status == 500",
		PxL: `df = px.DataFrame('http_events')
df = df[df.resp_status == 500]
px.display(df.head(5))`,
		SQL: `SELECT * FROM http_events WHERE resp_status = 500 LIMIT 5`},
}
