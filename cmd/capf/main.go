// Command capf is a Certificate Authority Proxy Function server for Cisco IP
// phones, with its administration commands and a phone simulator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/capf-server/capf/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
