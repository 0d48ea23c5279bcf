package demo

import (
	"embed"
	"io/fs"
)

// shipped is a capture (see package capture) recorded from a real, traced
// `pxq demo --save-capture` run, used where eBPF is not allowed. Record
// it again, as root, with `make demo-capture` (about 110 kB: it is
// embedded in the binary).
//
//go:embed testdata/capture
var shipped embed.FS

// ShippedDir is the shipped capture's folder in the source tree, relative
// to this package; tests of other packages open it from there.
const ShippedDir = "testdata/capture"

// Shipped returns the capture shipped inside pxq, for capture.OpenFS.
func Shipped() fs.FS {
	sub, err := fs.Sub(shipped, ShippedDir)
	if err != nil {
		panic(err) // the folder is embedded: it exists
	}
	return sub
}
