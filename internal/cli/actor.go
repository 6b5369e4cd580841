package cli

import (
	"os/user"

	"github.com/capf-server/capf/internal/device"
)

// actor is the administrator a command acts as: the CLI and the OS user
// that runs it, as the audit stream records it.
func (g *globals) actor() device.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return device.CLIActor(name)
}
