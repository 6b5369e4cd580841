//go:build !unix

package notify

import "os/exec"

// killGroup leaves cmd as it is: exec.CommandContext kills the process.
func killGroup(*exec.Cmd) {}
