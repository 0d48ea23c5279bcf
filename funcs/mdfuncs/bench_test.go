package mdfuncs

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/sources/k8s"
	"github.com/pxq-dev/pxq/types"
)

// BenchmarkResolve resolves 1 M rows against 1,000 pods, in batches of
// 64 Ki rows as the executor passes them: upid → pod name, and
// ip → pod id with and without the row's time. Reports rows/s.
func BenchmarkResolve(b *testing.B) {
	const pods, rows, batch = 1000, 1 << 20, 1 << 16
	t0 := time.Now().Add(-time.Hour)
	c := &cluster{store: k8s.NewStore(k8s.StoreConfig{Hostname: "host-1"}), t0: t0}
	upids := make([]types.UInt128Value, pods)
	ips := make([]string, pods)
	for i := 0; i < pods; i++ {
		ips[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		c.store.ApplyPod(podObj("ns", fmt.Sprintf("pod-%d", i), i+1, ips[i], t0, nil))
		upids[i] = c.process(i + 1)
	}
	mem := memory.DefaultAllocator
	// Rows cycle through the pods in runs of 4, as events of one
	// connection tend to arrive together.
	upidRows := make([]types.UInt128Value, batch)
	ipRows := make([]string, batch)
	timeRows := make([]int64, batch)
	for i := range upidRows {
		upidRows[i] = upids[(i/4*7919)%pods]
		ipRows[i] = ips[(i/4*7919)%pods]
		timeRows[i] = time.Now().UnixNano() - int64(i)*1000
	}
	upidArr := upidArray(mem, upidRows...)
	ipArr := strArray(mem, ipRows...)
	timeArr := timeArray(mem, timeRows...)
	ctx := &funcs.Context{Mem: mem, Meta: c.store}

	run := func(b *testing.B, fn string, argTypes []types.DataType, args []funcs.Value) {
		o, err := funcs.Resolve(fn, argTypes)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for done := 0; done < rows; done += batch {
				v, err := o.Kernel(ctx, args, batch)
				if err != nil {
					b.Fatal(err)
				}
				v.Array.Release()
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("upid_to_pod_name", func(b *testing.B) {
		run(b, "upid_to_pod_name", []types.DataType{types.UInt128}, []funcs.Value{{Array: upidArr}})
	})
	b.Run("ip_to_pod_id", func(b *testing.B) {
		run(b, "ip_to_pod_id", []types.DataType{types.String}, []funcs.Value{{Array: ipArr}})
	})
	b.Run("ip_to_pod_id_time", func(b *testing.B) {
		run(b, "ip_to_pod_id", []types.DataType{types.String, types.Time64NS}, []funcs.Value{{Array: ipArr}, {Array: timeArr}})
	})
}
