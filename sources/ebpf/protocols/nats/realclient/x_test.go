package realclient

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

func TestX(t *testing.T) { _ = dbtest.FreePort(t) }
