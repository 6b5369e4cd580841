package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script to a temporary directory and
// returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reset.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandNotify(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	// The script records its arguments one per line: a device name with
	// shell metacharacters must arrive as one argument, uninterpreted.
	p := script(t, `for a in "$@"; do printf '%s\n' "$a"; done > "$OUT_FILE"; echo "env:$CAPF_SECRET" >> "$OUT_FILE"`)
	t.Setenv("CAPF_SECRET", "leak")
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"ok/appended", []string{p, "--event", "check-sync"}, "--event\ncheck-sync\nSEP001122334455\n"},
		{"ok/placeholder", []string{p, "{device}", "last"}, "SEP001122334455\nlast\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The script has no environment but PATH: pass the output
			// file through a wrapper argument instead.
			body := strings.ReplaceAll(`OUT_FILE=`+out+`; export OUT_FILE; exec `+p+` "$@"`, "\n", " ")
			wrapper := script(t, body)
			argv := append([]string{wrapper}, tc.argv[1:]...)
			c, err := NewCommand(CommandOptions{Argv: argv, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Notify(t.Context(), "SEP001122334455"); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tc.want+"env:\n" {
				t.Errorf("script saw %q, want %q and no CAPF_SECRET", got, tc.want+"env:\n")
			}
		})
	}
}

func TestCommandFailures(t *testing.T) {
	tests := []struct {
		name, body string
		timeout    time.Duration
		want       error
		reason     string
	}{
		{"fail/exit-status", `echo "no such peer: $1" >&2; printf '\033[2J'; exit 3`, 5 * time.Second, nil,
			"reset command reset.sh failed (exit status 3): no such peer: SEP001122334455"},
		{"fail/hangs", `sleep 30`, 300 * time.Millisecond, ErrTimeout, "reset command reset.sh did not finish within 300ms"},
		{"fail/hangs-with-child-holding-output", `(sleep 30; echo late) & sleep 30`, 300 * time.Millisecond, ErrTimeout, "did not finish within 300ms"},
		{"fail/floods-output", `head -c 10000000 /dev/zero | tr '\0' 'x'; exit 1`, 5 * time.Second, nil, "failed (exit status 1): xxxx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCommand(CommandOptions{Argv: []string{script(t, tc.body)}, Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = c.Notify(t.Context(), "SEP001122334455")
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q, want it to contain %q", err.Error(), tc.reason)
			}
			if len(err.Error()) > MaxReason+32 || strings.ContainsAny(err.Error(), "\x1b\n") {
				t.Errorf("reason %q is not bounded and sanitized", err.Error())
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestNewCommandRefuses(t *testing.T) {
	for name, argv := range map[string][]string{
		"fail/empty":    nil,
		"fail/relative": {"reset.sh"},
		"fail/nul":      {"/bin/true", "a\x00b"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewCommand(CommandOptions{Argv: argv}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCommandMissingProgram(t *testing.T) {
	c, err := NewCommand(CommandOptions{Argv: []string{"/nonexistent/capf-reset"}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Notify(t.Context(), "SEP001122334455")
	if err == nil || !strings.Contains(err.Error(), "could not run: no such file or directory") {
		t.Fatalf("err %v", err)
	}
}
