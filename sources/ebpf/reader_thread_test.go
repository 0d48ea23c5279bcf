package ebpf_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// threadNice returns the nice value of each thread of this process.
func threadNice(t *testing.T) map[int]int {
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command's closing parenthesis; nice is the
		// 19th field of stat, the 17th after it.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		tid, _ := strconv.Atoi(filepath.Base(d))
		n, _ := strconv.Atoi(f[16])
		out[tid] = n
	}
	return out
}

// The reader's thread runs at ReaderNice and, when the tracer closes, is
// given back to the Go runtime at its old priority instead of ending: a
// thread that ends sends the parent-death signal of every child forked
// on it (exec.Cmd with Pdeathsig), and a database server started by a
// test died that way when the tracer of an earlier subtest closed.
func TestReaderThreadOutlivesTracer(t *testing.T) {
	const nice = -7
	tr, _ := ebpftest.Tracer(t, ebpf.Config{ReaderNice: nice})
	var reader int
	for i := 0; reader == 0; i++ {
		for tid, n := range threadNice(t) {
			if n == nice {
				reader = tid
			}
		}
		if i > 100 {
			t.Fatalf("no thread at nice %d: %v", nice, threadNice(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.Close()
	time.Sleep(50 * time.Millisecond)
	n, ok := threadNice(t)[reader]
	if !ok {
		t.Fatalf("the reader's thread %d ended with the tracer", reader)
	}
	if n != 0 {
		t.Errorf("the reader's thread %d is back in the runtime at nice %d, want 0", reader, n)
	}
}
