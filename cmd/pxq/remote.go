package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/server/auth"
)

// remoteFlags send `pxq run` to a server (pxq broker or pxq serve).
type remoteFlags struct {
	broker string
	dial   auth.ClientConfig
}

var remoteF remoteFlags

func init() {
	f := runCmd.Flags()
	f.StringVar(&remoteF.broker, "broker", "", "run the script on a pxq broker or pxq serve at host:port instead of here")
	f.StringVar(&remoteF.dial.TokenFile, "broker-token-file", "", "send the token in this file to the broker")
	f.StringVar(&remoteF.dial.CAFile, "broker-ca", "", "verify the broker's TLS certificate with these CAs (turns TLS on)")
	f.BoolVar(&remoteF.dial.TLS, "broker-tls", false, "use TLS, verifying the broker with the system's CAs")
}

// runRemote runs a script loaded here on the broker of --broker and
// prints its tables.
func runRemote(ctx context.Context, stdout, stderr io.Writer, s *scripts.Script, args map[string]string, f *runFlags) error {
	if f.collect > 0 || f.capture != "" || len(f.tables) > 0 {
		return usagef("--broker runs the script on the broker's data: drop --collect, --capture and --table")
	}
	c, err := client.Dial(remoteF.broker, client.WithSecurity(remoteF.dial))
	if err != nil {
		return err
	}
	defer c.Close()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	res, err := c.RunScript(ctx, s, args)
	if err != nil {
		var ce *client.CompileError
		if errors.As(err, &ce) {
			// The wire has no file name: name the script sent.
			ce.File = s.Path
		}
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "pxq: warning:", w)
	}
	byLimit := false
	for _, w := range res.Warnings {
		byLimit = byLimit || strings.Contains(w, "results were cut")
	}
	warnCut(stderr, res.Tables, byLimit)
	return printTables(stdout, res.Tables, f.output, format.Options{MaxWidth: f.maxWidth})
}
