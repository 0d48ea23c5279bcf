// Command example runs a library script on a pxq server (`pxq serve` or
// `pxq broker`) with the Go client and prints its tables.
//
//	go run ./client/example -addr localhost:50051 -script px/http_request_stats -arg start_time=-5m
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/format"
)

func main() {
	addr := flag.String("addr", "localhost:50051", "the server's host:port")
	script := flag.String("script", "px/http_data", "library script to run")
	token := flag.String("token", os.Getenv("PXQ_TOKEN"), "bearer token, if the server wants one")
	var args argFlag
	flag.Var(&args, "arg", "script variable name=value (repeatable)")
	flag.Parse()

	var opts []client.Option
	if *token != "" {
		opts = append(opts, client.WithToken(*token))
	}
	c, err := client.Dial(*addr, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Run(ctx, *script, args)
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	for _, t := range res.Tables {
		if err := format.Text(os.Stdout, t, format.Options{}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "%d rows in %s\n", res.Rows, time.Duration(res.CompileTimeNS+res.ExecNS))
}

// argFlag collects name=value flags.
type argFlag map[string]string

func (a *argFlag) String() string { return fmt.Sprint(map[string]string(*a)) }

func (a *argFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if *a == nil {
		*a = argFlag{}
	}
	(*a)[k] = v
	return nil
}
