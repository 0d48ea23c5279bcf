package plantest

import (
	"strings"
	"testing"
)

// TestScript: the compile benchmarks' scripts have the lengths they
// claim (engine's a 100-line script, lang's with a line more a block).
func TestScript(t *testing.T) {
	for _, c := range []struct {
		named bool
		lines int
	}{{false, 2 + 8*12}, {true, 2 + 8*13}} {
		s := Script(8, c.named)
		if n := strings.Count(s, "\n"); n != c.lines {
			t.Errorf("named %v: %d lines, want %d", c.named, n, c.lines)
		}
		if got := strings.Count(s, "name7 = 'stats_' + str(7 * 2) + '_%s' % 'x'"); got != map[bool]int{false: 0, true: 1}[c.named] {
			t.Errorf("named %v: %d names by arithmetic in the last block", c.named, got)
		}
	}
	if got := CtxColumns("pod", "node"); got != "df.pod = df.ctx['pod']\ndf.node = df.ctx['node']\n" {
		t.Errorf("CtxColumns = %q", got)
	}
}
