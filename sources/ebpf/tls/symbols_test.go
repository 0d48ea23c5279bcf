package tls

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// hostLibssl returns the path of the host's libssl, or skips.
func hostLibssl(t *testing.T) string {
	for _, pat := range hostLibraries {
		if paths, _ := filepath.Glob(pat); len(paths) > 0 {
			return paths[0]
		}
	}
	testenv.SkipOrFailf(t, "no libssl.so on this host")
	return ""
}

// offsetsByDebugELF computes what Symbols should return through
// debug/elf's own symbol reader, for comparison.
func offsetsByDebugELF(t *testing.T, path string) map[string]uint64 {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.DynamicSymbols()
	st, _ := f.Symbols()
	want := map[string]uint64{}
	for _, s := range append(syms, st...) {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF || s.Value == 0 {
			continue
		}
		for _, fn := range Funcs {
			if s.Name != fn {
				continue
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Memsz {
					want[fn] = s.Value - p.Vaddr + p.Off
				}
			}
		}
	}
	return want
}

func symbolsOf(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Symbols(f)
	if err != nil {
		t.Fatalf("Symbols(%s): %v", path, err)
	}
	return got
}

func sameOffsets(t *testing.T, got, want map[string]uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for fn, off := range want {
		if got[fn] != off {
			t.Errorf("%s at %#x, want %#x", fn, got[fn], off)
		}
	}
}

// libssl exports every probed function (OpenSSL 1.1.1 and 3 have the _ex
// forms) from its dynamic symbol table.
func TestSymbolsLibssl(t *testing.T) {
	path := hostLibssl(t)
	got := symbolsOf(t, path)
	sameOffsets(t, got, offsetsByDebugELF(t, path))
	for _, fn := range []string{FuncWrite, FuncRead, FuncHandshake} {
		if _, ok := got[fn]; !ok {
			t.Errorf("%s: no %s", path, fn)
		}
	}
}

// A program linked with OpenSSL statically has the functions in .symtab;
// one that uses libssl.so only imports them, which is not a definition.
func TestSymbolsStaticAndImported(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		testenv.SkipOrFailf(t, "no C compiler: %v", err)
	}
	if _, err := os.Stat("/usr/include/openssl/ssl.h"); err != nil {
		testenv.SkipOrFailf(t, "OpenSSL headers (libssl-dev) are not installed")
	}
	dir := t.TempDir()
	static, dynamic := filepath.Join(dir, "static"), filepath.Join(dir, "dynamic")
	for _, c := range [][]string{
		{"-o", static, "testdata/sslclient.c", "-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-ldl", "-lpthread"},
		{"-o", dynamic, "testdata/sslclient.c", "-lssl", "-lcrypto"},
	} {
		if out, err := exec.Command(cc, c...).CombinedOutput(); err != nil {
			testenv.SkipOrFailf(t, "cc %v: %v: %s", c, err, out)
		}
	}
	got := symbolsOf(t, static)
	sameOffsets(t, got, offsetsByDebugELF(t, static))
	for _, fn := range []string{FuncWrite, FuncWriteEx, FuncRead, FuncReadEx} {
		if _, ok := got[fn]; !ok {
			t.Errorf("static: no %s in %v", fn, got)
		}
	}
	if got := symbolsOf(t, dynamic); len(got) != 0 {
		t.Errorf("dynamic: %v, want none (it imports them)", got)
	}
	// Stripped of .symtab, the static program names them nowhere.
	if strip, err := exec.LookPath("strip"); err == nil {
		if out, err := exec.Command(strip, static).CombinedOutput(); err != nil {
			t.Fatalf("strip: %v: %s", err, out)
		}
		if got := symbolsOf(t, static); len(got) != 0 {
			t.Errorf("stripped: %v", got)
		}
	}
}

func TestSymbolsNone(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := symbolsOf(t, exe); len(got) != 0 {
		t.Errorf("the test binary: %v", got)
	}
	f, err := os.Open("symbols.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Symbols(f); !errors.Is(err, ErrNotELF) {
		t.Errorf("a Go source file: %v, want ErrNotELF", err)
	}
}

func TestParseMapping(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want Mapping
	}{
		{"7f3c1a200000-7f3c1a265000 r-xp 00035000 fe:01 1234567                    /usr/lib/x86_64-linux-gnu/libssl.so.3", true,
			Mapping{Start: 0x7f3c1a200000, End: 0x7f3c1a265000, Key: FileKey{Dev: 0xfe01, Ino: 1234567}, Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3"}},
		// A path with spaces, and an inode whose digits appear before it.
		{"00400000-00452000 r-xp 00001234 08:02 1234 /opt/my app/bin 1234", true,
			Mapping{Start: 0x400000, End: 0x452000, Key: FileKey{Dev: 0x802, Ino: 1234}, Path: "/opt/my app/bin 1234"}},
		{"7f3c1a265000-7f3c1a2c1000 r--p 00099000 fe:01 1234567 /usr/lib/x86_64-linux-gnu/libssl.so.3", false, Mapping{}},
		{"7ffd5b9f4000-7ffd5b9f6000 r-xp 00000000 00:00 0                          [vdso]", false, Mapping{}},
		{"7f3c19e00000-7f3c19e21000 r-xp 00000000 00:00 0 ", false, Mapping{}},
		{"garbage", false, Mapping{}},
	} {
		got, ok := parseMapping(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %+v %v, want %+v %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// The test's own process maps its executable: its key is the file's.
func TestMappingsSelf(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := Mappings(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if strings.HasSuffix(m.Path, filepath.Base(exe)) {
			if m.Key != fileKeyOf(st) {
				t.Errorf("key %+v, file's %+v", m.Key, fileKeyOf(st))
			}
			return
		}
	}
	t.Errorf("%s not in %+v", exe, maps)
}

// namesAny finds a string wherever it lies, across its chunks included.
func TestNamesAny(t *testing.T) {
	const chunk = 64 << 10
	for _, at := range []int{0, 100, chunk - 5, chunk - 1, chunk, 3*chunk + 7} {
		b := make([]byte, 4*chunk)
		copy(b[at:], "SSL_read\x00")
		got, err := namesAny(bytes.NewReader(b), "SSL_write\x00", "SSL_read\x00")
		if err != nil || !got {
			t.Errorf("at %d: %v %v", at, got, err)
		}
	}
	got, err := namesAny(bytes.NewReader(make([]byte, 3*chunk)), "SSL_read\x00")
	if err != nil || got {
		t.Errorf("none: %v %v", got, err)
	}
}
