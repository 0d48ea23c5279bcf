package helmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// chartDir is the chart under test.
const chartDir = "../../deploy/helm/pxq"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error

	pxqOnce sync.Once
	pxqDir  string
	pxqPath string
	pxqErr  error
)

// TestMain removes the pxq binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if pxqDir != "" {
		os.RemoveAll(pxqDir)
	}
	os.Exit(code)
}

// helmBin returns the Helm CLI: $PXQ_HELM, else the one build.sh keeps
// in its cache (building it there the first time, about 3 min).
func helmBin(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		if p := os.Getenv("PXQ_HELM"); p != "" {
			helmPath = p
			return
		}
		var out, stderr bytes.Buffer
		cmd := exec.Command("./build.sh")
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			helmErr = fmt.Errorf("build.sh: %v\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(out.String())
	})
	if helmErr != nil {
		if _, err := exec.LookPath("go"); err != nil {
			testenv.SkipOrFailf(t, "no helm and no go to build it: %v", helmErr)
		}
		t.Fatal(helmErr)
	}
	return helmPath
}

// pxqBin builds pxq once per run of the tests.
func pxqBin(t *testing.T) string {
	t.Helper()
	pxqOnce.Do(func() {
		if pxqDir, pxqErr = os.MkdirTemp("", "pxq-helm-test-"); pxqErr != nil {
			return
		}
		pxqPath = filepath.Join(pxqDir, "pxq")
		// In the main module, with its go.mod.
		cmd := exec.Command("go", "build", "-o", pxqPath, "./cmd/pxq")
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			pxqErr = fmt.Errorf("go build pxq: %v\n%s", err, out)
		}
	})
	if pxqErr != nil {
		t.Fatal(pxqErr)
	}
	return pxqPath
}

// helm runs the Helm CLI and returns its standard output; it fails the
// test on an error.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmErrOut(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// helmErrOut runs the Helm CLI and returns its standard output, or an
// error holding its standard error.
func helmErrOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	// Helm's own state (repositories, cache) in the test's folder.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// decode splits a rendered manifest into its objects.
func decode(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(manifest, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue // a document of comments
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// find returns the one object of objs of that kind and name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

// kinds lists "Kind/name" of objs.
func kinds(objs []*unstructured.Unstructured) []string {
	var s []string
	for _, o := range objs {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return s
}
