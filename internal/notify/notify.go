package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
)

// Notifier asks the phone called device to restart.
type Notifier interface {
	// Notify sends one restart request for device (a normalized device
	// name such as SEP001122334455) and returns when the PBX or command
	// has accepted or refused it. It honours ctx and its own time-out.
	Notify(ctx context.Context, device string) error
}

// Defaults of the notifiers.
const (
	// DefaultTimeout bounds one notification, connection and every
	// exchange included.
	DefaultTimeout = 10 * time.Second
	// DefaultEndpoint is the endpoint template: the device name itself.
	DefaultEndpoint = "{device}"
	// Placeholder is what an endpoint template or command argument
	// replaces with the device name.
	Placeholder = "{device}"
	// MaxReason bounds the reason an error carries.
	MaxReason = 200
	// maxSecret bounds a secret file's size.
	maxSecret = 4096
)

// Error is a failed notification: Reason says why in a few words fit to
// show an administrator and store with the device.
type Error struct {
	Reason string
	Err    error // the underlying error, for errors.Is; never shown
}

func (e *Error) Error() string { return e.Reason }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// failure returns an *Error whose reason is format/args made safe.
func failure(err error, format string, args ...any) error {
	return &Error{Reason: Sanitize(fmt.Sprintf(format, args...)), Err: err}
}

// Sanitize makes text from a PBX or a command fit to show and store:
// printable ASCII, at most MaxReason bytes (and a length marker).
func Sanitize(s string) string {
	return safetext.Bound(strings.TrimSpace(s), MaxReason)
}

// Endpoint turns a device name into the PBX's endpoint name by template,
// replacing each [Placeholder]; an empty template is [DefaultEndpoint].
type Endpoint string

// CheckEndpoint checks an endpoint template: it must name the device once
// or more and hold no control characters (they would end an AMI line).
func CheckEndpoint(t string) error {
	if t == "" {
		return nil
	}
	if !strings.Contains(t, Placeholder) {
		return fault.Invalidf("endpoint template %q: it must contain %s (the device name)", t, Placeholder)
	}
	if strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fault.Invalidf("endpoint template %q: control characters", t)
	}
	return nil
}

// For returns the endpoint name of device.
func (e Endpoint) For(device string) (string, error) {
	t := string(e)
	if t == "" {
		t = DefaultEndpoint
	}
	if err := CheckEndpoint(t); err != nil {
		return "", err
	}
	if device == "" || strings.ContainsFunc(device, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ':' }) {
		return "", fault.Invalidf("device name %q cannot be an endpoint", Sanitize(device))
	}
	return strings.ReplaceAll(t, Placeholder, device), nil
}

// LoadSecret reads the AMI secret from path as the project reads every
// secret file (see kek.Load): a regular file that neither group nor
// others may access (chmod 600), at most 4 KiB, one line; the trailing
// newline is dropped. The error names the file and what is wrong, never
// the content.
func LoadSecret(path string) (string, error) {
	if path == "" {
		return "", fault.Invalidf("no AMI secret file given (reset_ami_secret_file)")
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fault.NotFoundf("AMI secret file %s: no such file", path)
	}
	if err != nil {
		return "", fmt.Errorf("AMI secret file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("AMI secret file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fault.Invalidf("AMI secret file %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if m := st.Mode().Perm(); runtime.GOOS != "windows" && m&0o077 != 0 {
		return "", fault.Invalidf("AMI secret file %s has mode %04o: group or others may access it; refusing it: run `chmod 600 %s` (and change the secret in manager.conf if others may have read it)", path, m, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return "", fmt.Errorf("AMI secret file %s: %w", path, err)
	}
	if len(b) > maxSecret {
		return "", fault.Invalidf("AMI secret file %s: longer than %d bytes", path, maxSecret)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case s == "":
		return "", fault.Invalidf("AMI secret file %s is empty", path)
	case strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", fault.Invalidf("AMI secret file %s: the secret must be one line without control characters", path)
	}
	return s, nil
}

// deadline returns the earlier of ctx's deadline and now+timeout.
func deadline(ctx context.Context, now time.Time, timeout time.Duration) time.Time {
	d := now.Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}
