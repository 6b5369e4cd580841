// Package sdnotify tells a service manager about the service's state with
// the sd_notify protocol of systemd's Type=notify units: one datagram of
// newline-separated KEY=VALUE assignments ("READY=1", "STOPPING=1",
// "STATUS=…") sent to the unix datagram socket named by $NOTIFY_SOCKET. A
// name starting with '@' is an abstract socket. Without $NOTIFY_SOCKET
// nothing is sent.
package sdnotify

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Standard states (man sd_notify).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notifier sends states to one notification socket. The zero value and a
// nil *Notifier send nothing.
type Notifier struct {
	socket string
}

// New returns a Notifier for the socket $NOTIFY_SOCKET names, as getenv
// (os.Getenv) returns it; nil when it is unset or empty.
func New(getenv func(string) string) *Notifier {
	s := getenv("NOTIFY_SOCKET")
	if s == "" {
		return nil
	}
	return &Notifier{socket: s}
}

// Notify sends the states, joined by newlines, in one datagram. It does
// nothing for a nil Notifier.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || n.socket == "" {
		return nil
	}
	// A leading '@' names an abstract socket; the net package turns it
	// into the NUL byte the kernel expects, as systemd does.
	if n.socket[0] != '@' && n.socket[0] != '/' {
		return fmt.Errorf("NOTIFY_SOCKET %q: neither an absolute path nor an abstract name", n.socket)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify the service manager: %w", err)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("notify the service manager: %w", err)
	}
	return nil
}
