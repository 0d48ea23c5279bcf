package tls_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/tls"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// goToolchain is a Go toolchain the Go probe tests build testdata/gotls
// with.
type goToolchain struct {
	name  string
	gobin string   // the go command
	env   []string // added to the environment
}

// goToolchains are the toolchains tested: the machine's Go, Debian's Go
// 1.19 (package golang-1.19-go) and Go 1.27.3, which the go command
// fetches from the module proxy (GOTOOLCHAIN).
func goToolchains() []goToolchain {
	return []goToolchain{
		{"local", "go", []string{"GOTOOLCHAIN=local"}},
		{"debian-go1.19", "/usr/lib/go-1.19/bin/go", nil},
		{"go1.27.3", "go", []string{"GOTOOLCHAIN=go1.27.3"}},
	}
}

// buildGoTLS builds testdata/gotls with tc, stripped (-s -w) or not, or
// skips (fails under CI=true) when the toolchain is not there.
func buildGoTLS(t *testing.T, tc goToolchain, stripped bool) string {
	t.Helper()
	gobin, err := exec.LookPath(tc.gobin)
	if err != nil {
		testenv.SkipOrFailf(t, "Go toolchain %s: %v", tc.name, err)
	}
	src, err := os.ReadFile("testdata/gotls/main.go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"main.go": string(src), "go.mod": "module gotls\n\ngo 1.19\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "gotls")
	args := []string{"build", "-o", out}
	if stripped {
		args = append(args, "-ldflags=-s -w")
	}
	cmd := exec.Command(gobin, append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), tc.env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		testenv.SkipOrFailf(t, "cannot build with Go toolchain %s: %v: %s", tc.name, err, b)
	}
	return out
}

// TestReadGo reads the Go probes' needs of the test program built by each
// toolchain: the functions from the symbol table and, stripped, from
// .gopclntab (the same entries and RETs), and the fd chain's offsets from
// the table, which must be those of the binary's DWARF.
func TestReadGo(t *testing.T) {
	for _, tc := range goToolchains() {
		t.Run(tc.name, func(t *testing.T) {
			var plain *tls.GoBinary
			for _, stripped := range []bool{false, true} {
				bin := buildGoTLS(t, tc, stripped)
				f, err := os.Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				gb, err := tls.ReadGo(f)
				if err != nil {
					t.Fatalf("stripped=%v: %v", stripped, err)
				}
				if gb.Stripped != stripped || !strings.HasPrefix(gb.Version, "go1.") {
					t.Errorf("stripped=%v: %+v", stripped, gb)
				}
				for _, name := range tls.GoFuncs {
					if fn := gb.Funcs[name]; fn.Entry == 0 || len(fn.Returns) == 0 {
						t.Errorf("stripped=%v: %s: %+v", stripped, name, fn)
					}
				}
				if gb.OffsetsFrom != "table" || gb.Offsets != tls.GoOffsetTable() {
					t.Errorf("stripped=%v: offsets %+v from %s, want the table's %+v", stripped, gb.Offsets, gb.OffsetsFrom, tls.GoOffsetTable())
				}
				if !stripped {
					plain = gb
					// The table is right for this version.
					if d, err := tls.GoOffsetsFromDWARF(bin); err != nil || d != tls.GoOffsetTable() {
						t.Errorf("DWARF offsets %+v (%v), table's %+v", d, err, tls.GoOffsetTable())
					}
					continue
				}
				if plain != nil && !reflect.DeepEqual(gb.Funcs, plain.Funcs) {
					t.Errorf("stripped %+v, not %+v", gb.Funcs, plain.Funcs)
				}
			}
			t.Logf("%s: Write has %d RETs, Read %d", plain.Version,
				len(plain.Funcs[tls.GoFuncWrite].Returns), len(plain.Funcs[tls.GoFuncRead].Returns))
		})
	}
}

// A program that is not Go, and Go code without crypto/tls, are not Go
// TLS programs.
func TestReadGoNotTLS(t *testing.T) {
	for _, path := range []string{"/bin/sh", "testdata/calls.c"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := tls.ReadGo(f)
		f.Close()
		if err == nil || gb != nil {
			t.Errorf("%s: %+v, %v", path, gb, err)
		}
	}
}

func TestReturns(t *testing.T) {
	// MOVQ AX, BX; RET; INT3; ADDQ $8, SP; RET $8 (c2 08 00); NOP
	code := []byte{0x48, 0x89, 0xc3, 0xc3, 0xcc, 0x48, 0x83, 0xc4, 0x08, 0xc2, 0x08, 0x00, 0x90}
	if got := tls.Returns(code); !reflect.DeepEqual(got, []uint64{3, 9}) {
		t.Errorf("Returns = %v, want [3 9]", got)
	}
}

// goProc is a run of the test program.
type goProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startGo(t *testing.T, bin string, args ...string) *goProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &goProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
}

// waitProbed waits until probe_status says that the Go probes of the file
// at path are set.
func waitProbed(t *testing.T, store *table.Store, path string) {
	t.Helper()
	rows := ebpftest.WaitRows(t, store, "probe_status", 1, 5*time.Second, func(r map[string]any) bool {
		return r["tracepoint"] == "uprobe:"+path && r["status"] == int64(0) &&
			strings.Contains(r["info"].(string), `"go-uprobe"`)
	})
	if len(rows) == 0 {
		last := map[any]map[string]any{}
		for _, r := range ebpftest.Rows(t, store, "probe_status") {
			last[r["tracepoint"]] = r
		}
		t.Fatalf("%s not probed: %v", path, last)
	}
}

// TestGoHTTPS runs the test program's HTTPS server and client, built by
// each toolchain, stripped and not, both traced (AllClientSides): the
// server is running when the tracer starts, the client (a copy of the
// file, so a file not seen before) starts after it. Over HTTP/1.1 and
// HTTP/2 every request is a row of each side, decrypted, with the right
// connection, and nothing else is parsed (no ciphertext rows).
func TestGoHTTPS(t *testing.T) {
	const rounds = 2
	for _, tc := range goToolchains() {
		for _, stripped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stripped=%v", tc.name, stripped), func(t *testing.T) {
				bin := buildGoTLS(t, tc, stripped)
				client := bin + "-client"
				if b, err := exec.Command("cp", bin, client).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v: %s", err, b)
				}
				srv := startGo(t, bin, "server")
				var port int
				if !srv.out.Scan() {
					t.Fatal("the server did not start")
				}
				if _, err := fmt.Sscanf(srv.out.Text(), "port %d", &port); err != nil {
					t.Fatalf("server said %q", srv.out.Text())
				}
				tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}, AllClientSides: true,
					StatsPeriod: 100 * time.Millisecond})
				url := fmt.Sprintf("https://127.0.0.1:%d", port)
				waitProbed(t, store, bin)
				total := 0
				for _, proto := range []string{"h1", "h2"} {
					c := startGo(t, client, "client", url, proto, strconv.Itoa(rounds))
					waitProbed(t, store, client)
					io.WriteString(c.stdin, "go\n")
					var lines []string
					for c.out.Scan() {
						lines = append(lines, c.out.Text())
					}
					if err := c.cmd.Wait(); err != nil || len(lines) != 2*rounds {
						t.Fatalf("client %s: %v: %q", proto, err, lines)
					}
					wantProto, major := "HTTP/1.1", int64(1)
					if proto == "h2" {
						wantProto, major = "HTTP/2.0", 2
					}
					if !strings.HasPrefix(lines[0], wantProto+" 200") {
						t.Fatalf("client %s said %q", proto, lines)
					}
					pid := c.cmd.Process.Pid
					cli := ebpftest.WaitRows(t, store, "http_events", 2*rounds, 5*time.Second, rowsOf(pid, port))
					// The server's rows of this run: those from the
					// client's ports.
					ports := map[any]bool{}
					for _, r := range cli {
						ports[r["local_port"]] = true
					}
					sv := ebpftest.WaitRows(t, store, "http_events", 2*rounds, 5*time.Second, func(r map[string]any) bool {
						return rowsOf(srv.cmd.Process.Pid, port)(r) && ports[r["remote_port"]]
					})
					for _, side := range []struct {
						name string
						rows []map[string]any
						pid  int
						role int64
					}{{"client", cli, pid, 1}, {"server", sv, srv.cmd.Process.Pid, 2}} {
						if len(side.rows) != 2*rounds {
							t.Fatalf("%s %s: %d rows, want %d: %v (counters %v)", proto, side.name, len(side.rows), 2*rounds,
								ebpftest.Rows(t, store, "http_events"), tr.Stats().Counters)
						}
						for i, r := range side.rows {
							wantGoRow(t, r, side.pid, side.role, port, major, i)
						}
					}
					total += 4 * rounds
				}
				// Nothing else on the server's port: its ciphertext is not
				// parsed.
				all := ebpftest.WaitRows(t, store, "http_events", 0, 0, func(r map[string]any) bool {
					return r["remote_port"] == int64(port) || r["local_port"] == int64(port)
				})
				if len(all) != total {
					t.Errorf("%d rows on port %d, want %d: %v", len(all), port, total, all)
				}
				// The tracer sees every process: other Go programs running
				// beside the test (a tls.Conn over a pipe, …) may count
				// calls without an fd. The test's own calls had theirs:
				// each of them is a row on both sides, above.
				st := tr.Stats().Counters
				t.Logf("Go files probed %d, calls without fd %d (any process)", st["tls.go_files_probed"], st["tls.go_calls_without_fd"])
				if st["tls.go_files_probed"] < 2 {
					t.Errorf("counters: %v", st)
				}
			})
		}
	}
}

// wantGoRow checks the i-th row of one side of a client run: requests
// alternate GET /hello?i=K and POST /echo with 3000+K bytes.
func wantGoRow(t *testing.T, r map[string]any, pid int, role int64, port int, major int64, i int) {
	t.Helper()
	k := i / 2
	want := map[string]any{
		"encrypted": true, "trace_role": role, "resp_status": int64(200), "major_version": major,
		"remote_addr": "127.0.0.1", "local_addr": "127.0.0.1",
	}
	if i%2 == 0 {
		want["req_method"], want["req_path"] = "GET", fmt.Sprintf("/hello?i=%d", k)
		want["resp_body"] = fmt.Sprintf(`{"hello":"%d"}`, k)
	} else {
		want["req_method"], want["req_path"] = "POST", "/echo"
		want["req_body_size"] = int64(3000 + k)
		want["resp_body"] = fmt.Sprintf("got %d bytes", 3000+k)
	}
	ebpftest.Expect(t, r, want)
	if got := r["upid"].(types.UInt128Value).PID(); got != uint32(pid) {
		t.Errorf("upid pid = %d, want %d", got, pid)
	}
	serverPort, clientPort := r["remote_port"].(int64), r["local_port"].(int64)
	if role == 2 {
		serverPort, clientPort = clientPort, serverPort
	}
	if serverPort != int64(port) || clientPort == 0 || clientPort == int64(port) {
		t.Errorf("ports: local %v remote %v, server's is %d", r["local_port"], r["remote_port"], port)
	}
}

// A Go TLS program that cannot be probed is a probe_status row with the
// reason, never a crash: without the Go programs loaded, and without
// symbols (no .symtab, .gopclntab removed).
func TestGoNotProbed(t *testing.T) {
	bin := buildGoTLS(t, goToolchains()[0], true)
	broken := bin + "-nopclntab"
	objcopy := need(t, "objcopy")
	if b, err := exec.Command(objcopy, "--remove-section", ".gopclntab", bin, broken).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v: %s", err, b)
	}
	p := tls.New(tls.Config{Programs: tls.Programs{GoErr: errors.New("no BPF here")}})
	defer p.Close()
	for _, path := range []string{bin, broken, "/bin/sh"} {
		if err := p.Path(path); err != nil {
			t.Fatalf("Path(%s): %v", path, err)
		}
	}
	want := map[string]string{
		"uprobe:" + bin:    "Go probes not loaded: no BPF here",
		"uprobe:" + broken: "no symbol table and no .gopclntab",
	}
	files := p.Files()
	if len(files) != len(want) {
		t.Fatalf("files %+v, want %d", files, len(want))
	}
	for _, f := range files {
		if f.Err == nil || !strings.Contains(f.Err.Error(), want[f.Name]) || !strings.Contains(f.Info, `"go-uprobe"`) {
			t.Errorf("%s: %v, %s; want %q", f.Name, f.Err, f.Info, want[f.Name])
		}
	}
	if st := p.Stats(); st.GoFiles != 2 || st.FilesFailed != 2 || st.GoFilesProbed != 0 {
		t.Errorf("stats %+v", st)
	}
}
