package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/api"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestRemoteCert: capf cert list, show and revoke through internal/api
// give the local output and exit codes byte for byte, bad input included
// (refused before a request is made, with the local message); a remote
// revocation is recorded as the token's, and a viewer's is refused.
func TestRemoteCert(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, st := remoteServer(t, data, func(svc *device.Service) http.Handler {
		st, err := sqlite.Open(context.Background(), datadir.Dir(data).DB(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		h, _ := api.New(api.Options{Devices: svc, Certificates: lsc.NewService(lsc.Options{Store: st})})
		return withTestTokens(h)
	})
	const a, b = "CSFALPHA", "CSFBRAVO"
	for i, name := range []string{a, b} {
		if _, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install"); code != ExitOK {
			t.Fatal(errOut)
		}
		issuedLSC(t, st, name, []string{"0A1B2C", "0A1B2D"}[i])
	}
	same := sameLocalRemote(data, remote)
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"list", []string{"cert", "list"}, ExitOK, "0A1B2D"},
		{"list-json", []string{"cert", "list", "--json"}, ExitOK, `"serial": "0A1B2C"`},
		{"list-device", []string{"cert", "list", "--device", "csfbravo"}, ExitOK, "CSFBRAVO"},
		{"list-status", []string{"cert", "list", "--status", "valid", "--limit", "1"}, ExitOK, "valid"},
		{"show", []string{"cert", "show", "0a:1b:2c"}, ExitOK, "BEGIN CERTIFICATE"},
		{"show-json", []string{"cert", "show", "serial=0A1B2D", "--json"}, ExitOK, `"device": "CSFBRAVO"`},
		{"show-not-hex", []string{"cert", "show", "XYZ"}, ExitUsage, "not a hex digit"},
		{"show-empty", []string{"cert", "show", ""}, ExitUsage, "empty"},
		{"show-never-issued", []string{"cert", "show", "7E57"}, ExitNotFound, "no LSC with this serial"},
		{"list-bad-status", []string{"cert", "list", "--status", "lost"}, ExitUsage, "lost"},
		{"list-bad-device", []string{"cert", "list", "--device", "not a name"}, ExitUsage, "device"},
		{"revoke-no-reason", []string{"cert", "revoke", "0A1B2C"}, ExitUsage, "--reason is required"},
		{"revoke-bad-reason", []string{"cert", "revoke", "0A1B2C", "--reason", "lost"}, ExitUsage, "lost"},
		{"revoke-never-issued", []string{"cert", "revoke", "7E57", "--reason", "keyCompromise"}, ExitNotFound, "no LSC with this serial"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, code := same(t, tt.args, nil, nil)
			if code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tt.wantCode, tt.want, got)
			}
		})
	}
	if out, _, _ := run(t, data, "cert", "list", "--status", "revoked"); strings.Contains(out, "0A1B2") {
		t.Fatalf("a refused revocation changed something:\n%s", out)
	}

	// Revocations: A locally, B through the API, with the same output;
	// again, both are conflicts (exit 4) with the same message.
	swap := strings.NewReplacer("0A1B2C", "0A1B2D", a, b)
	t.Run("revoke", func(t *testing.T) {
		got, code := same(t, []string{"cert", "revoke", "0A1B2C", "--reason", "keyCompromise"}, []string{"cert", "revoke", "0A1B2D", "--reason", "keyCompromise"}, swap)
		if code != ExitOK || !strings.Contains(got, "revoked 0A1B2D (device CSFBRAVO, keyCompromise)") {
			t.Fatalf("exit %d:\n%s", code, got)
		}
		got, code = same(t, []string{"cert", "revoke", "0A1B2C", "--reason", "superseded"}, []string{"cert", "revoke", "0A1B2D", "--reason", "superseded"}, swap)
		if code != ExitConflict {
			t.Fatalf("a second revocation: exit %d, want %d:\n%s", code, ExitConflict, got)
		}
	})
	var byLocal, byRemote struct {
		Status, Reason string
		RevokedBy      string `json:"revoked_by"`
	}
	for _, c := range []struct {
		serial string
		into   any
	}{{"0A1B2C", &byLocal}, {"0A1B2D", &byRemote}} {
		out, errOut, code := run(t, data, "cert", "show", c.serial, "--json")
		if code != ExitOK || json.Unmarshal([]byte(out), c.into) != nil {
			t.Fatalf("cert show %s: exit %d %s%s", c.serial, code, out, errOut)
		}
	}
	if byRemote.Status != "revoked" || byRemote.Reason != "keyCompromise" || byRemote.RevokedBy != "api:remote-test" {
		t.Errorf("the remote revocation is on record as %+v, want revoked, keyCompromise, by api:remote-test", byRemote)
	}
	if byLocal.Status != "revoked" || !strings.HasPrefix(byLocal.RevokedBy, "cli:") {
		t.Errorf("the local revocation is on record as %+v", byLocal)
	}

	// A viewer reads but cannot revoke.
	viewer := []string{"--server", remote[1], "--token", viewerToken, "--server-ca", remote[5]}
	if out, errOut, code := run(t, data, append(viewer, "cert", "list")...); code != ExitOK || !strings.Contains(out, "0A1B2C") {
		t.Fatalf("viewer cert list: exit %d %s%s", code, out, errOut)
	}
	issuedLSC(t, st, a, "0A1B2E")
	if out, errOut, code := run(t, data, append(viewer, "cert", "revoke", "0A1B2E", "--reason", "keyCompromise")...); code != ExitFailure || !strings.Contains(out+errOut, "viewer") {
		t.Fatalf("viewer cert revoke: exit %d %s%s", code, out, errOut)
	}
	if out, _, _ := run(t, data, "cert", "show", "0A1B2E", "--json"); !strings.Contains(out, `"status": "valid"`) {
		t.Fatalf("a viewer's refused revocation changed the LSC:\n%s", out)
	}
}

// issuedLSC records on st a phone session of name that installed an LSC
// with the serial given, and its issuance.
func issuedLSC(t *testing.T, st *sqlite.Store, name, serial string) {
	t.Helper()
	phoneSessionSerial(t, st, name, serial)
	at := time.Date(2026, 11, 30, 9, 2, 0, 0, time.UTC)
	if err := st.RecordIssuance(context.Background(), device.Issuance{Serial: serial, Device: name, Issuer: "CN=CAPF-test,O=Example", IssuerKeyID: "ab12",
		IssuedAt: at, NotBefore: at, NotAfter: at.Add(5 * 365 * 24 * time.Hour), DER: []byte{0x30, 0x00}}); err != nil {
		t.Fatal(err)
	}
}

// sameLocalRemote returns a check that runs args on the data directory
// data and remoteArgs (args when nil) through the server remote names,
// holds the outputs and exit codes equal once swap (when set) has
// rewritten the local ones (a change made on another target), and returns
// the output and the exit code.
func sameLocalRemote(data string, remote []string) func(t *testing.T, args, remoteArgs []string, swap *strings.Replacer) (string, int) {
	return func(t *testing.T, args, remoteArgs []string, swap *strings.Replacer) (string, int) {
		t.Helper()
		out, errOut, code := run(t, data, args...)
		if remoteArgs == nil {
			remoteArgs = args
		}
		rout, rerrOut, rcode := run(t, data, append(append([]string(nil), remote...), remoteArgs...)...)
		if swap != nil {
			out, errOut = swap.Replace(out), swap.Replace(errOut)
		}
		if out != rout || errOut != rerrOut || code != rcode {
			t.Fatalf("capf %s:\nlocal  (exit %d): %q %q\nremote (exit %d): %q %q", strings.Join(args, " "), code, out, errOut, rcode, rout, rerrOut)
		}
		return out + errOut, code
	}
}
