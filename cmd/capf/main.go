//go:debug rsa1024min=0

// Command capf is a Certificate Authority Proxy Function server for Cisco IP
// phones, with its administration commands and a phone simulator.
//
// Phones may be asked for (and authenticate with) RSA keys down to 512 bits,
// which Go refuses by default; the go:debug line below allows them. The CAPF
// key itself is never smaller than 2048 bits.
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
