package notify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// maxOutput bounds what is kept of a command's output (stdout and stderr
// together); the rest is read and dropped.
const maxOutput = 4096

// CommandOptions configure a [Command] notifier.
type CommandOptions struct {
	// Argv is the program (an absolute path) and its arguments. Each
	// argument that is exactly Placeholder becomes the endpoint name;
	// when none is, the endpoint name is appended as the last argument.
	// No shell runs it and nothing is interpolated into a string.
	Argv     []string
	Endpoint Endpoint      // the endpoint name of a device; DefaultEndpoint when empty
	Timeout  time.Duration // for one run; DefaultTimeout when zero
}

// Command runs a program per notification, e.g. a script that calls
// `asterisk -rx "pjsip send notify ..."` or another PBX's tool. Exit
// status 0 is success; anything else, or no exit within the time-out, is a
// failure whose reason carries the status and the first line of the
// output, sanitized and bounded. The output is never logged. The program
// gets a minimal environment (PATH only), so the server's own secrets in
// its environment do not leak to it.
type Command struct {
	o CommandOptions
}

var _ Notifier = (*Command)(nil)

// NewCommand checks o and returns the notifier.
func NewCommand(o CommandOptions) (*Command, error) {
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, fault.Invalidf("reset command: empty; give the program and its arguments, e.g. [\"/usr/local/bin/capf-reset\", \"{device}\"]")
	}
	if !filepath.IsAbs(o.Argv[0]) {
		return nil, fault.Invalidf("reset command %q: give the program as an absolute path", o.Argv[0])
	}
	for _, a := range o.Argv {
		if strings.ContainsFunc(a, func(r rune) bool { return r == 0 }) {
			return nil, fault.Invalidf("reset command: an argument holds a NUL byte")
		}
	}
	if err := CheckEndpoint(string(o.Endpoint)); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	o.Argv = append([]string(nil), o.Argv...)
	return &Command{o: o}, nil
}

// args returns the arguments after the program for endpoint.
func (c *Command) args(endpoint string) []string {
	var out []string
	placed := false
	for _, a := range c.o.Argv[1:] {
		if a == Placeholder {
			a, placed = endpoint, true
		}
		out = append(out, a)
	}
	if !placed {
		out = append(out, endpoint)
	}
	return out
}

// Notify runs the command for device.
func (c *Command) Notify(ctx context.Context, device string) error {
	endpoint, err := c.o.Endpoint.For(device)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, deadline(ctx, time.Now(), c.o.Timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, c.o.Argv[0], c.args(endpoint)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Dir = "/"
	out := &boundedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// A program that leaves children holding its output open is not
	// waited for beyond this.
	cmd.WaitDelay = time.Second
	killGroup(cmd)
	err = cmd.Run()
	name := filepath.Base(c.o.Argv[0])
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return failure(ErrTimeout, "reset command %s did not finish within %s", name, c.o.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if line := firstLine(out.String()); line != "" {
			return failure(err, "reset command %s failed (%s): %s", name, exit.ProcessState.String(), line)
		}
		return failure(err, "reset command %s failed (%s)", name, exit.ProcessState.String())
	}
	return failure(err, "reset command %s could not run: %s", name, shortExecError(err))
}

// shortExecError names why a program could not start.
func shortExecError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// firstLine returns the first non-empty line of s.
func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// boundedBuffer keeps the first max bytes written to it and drops the
// rest (reporting them written, so the program is never blocked).
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *boundedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
