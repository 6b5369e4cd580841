package wire_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

// A golden session file (testdata/sessions/*.hex) holds one whole CAPF
// session as it crosses the wire: one message per line, "S" for server to
// phone or "C" for phone to server, then the message in hex. Spaces inside
// the hex are ignored; lines starting with '#' and blank lines are comments.

// captured is one message line of a session file.
type captured struct {
	line   int
	server bool // sent by the server
	raw    []byte
}

// readSession parses a session file.
func readSession(t testing.TB, path string) []captured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []captured
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dir, rest, _ := strings.Cut(line, " ")
		if dir != "S" && dir != "C" {
			t.Fatalf("%s:%d: line starts with %q, want S or C", path, n, dir)
		}
		raw, err := hex.DecodeString(strings.Join(strings.Fields(rest), ""))
		if err != nil {
			t.Fatalf("%s:%d: bad hex: %v", path, n, err)
		}
		out = append(out, captured{line: n, server: dir == "S", raw: raw})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sessionFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sessions", "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no session files in testdata/sessions")
	}
	return files
}

// serverCommands and phoneCommands are the commands each side sends, from
// the command table of the protocol notes.
var (
	serverCommands = []wire.Command{
		wire.CmdAuthRequest, wire.CmdKeyGenerateRequest, wire.CmdStoreCertificateRequest,
		wire.CmdFetchCertificateRequest, wire.CmdDeleteCertificateRequest, wire.CmdEndSession, wire.CmdRetryLater,
	}
	phoneCommands = []wire.Command{
		wire.CmdAuthResponse, wire.CmdKeyGenerateResponse, wire.CmdStoreCertificateResponse,
		wire.CmdFetchCertificateResponse, wire.CmdDeleteCertificateResponse, wire.CmdRequestInProgress,
	}
)

// TestReplaySessions decodes every message of every golden session as a
// subtest, checks that its sender may send it and that the session id holds
// for the whole session, and re-encodes it byte for byte.
func TestReplaySessions(t *testing.T) {
	for _, path := range sessionFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(name, func(t *testing.T) {
			msgs := readSession(t, path)
			if len(msgs) == 0 {
				t.Fatal("no messages")
			}
			var sessionID uint32
			for i, c := range msgs {
				t.Run(fmt.Sprintf("line-%d", c.line), func(t *testing.T) {
					m, err := wire.Decode(c.raw)
					if err != nil {
						t.Fatalf("Decode: %v", err)
					}
					if i == 0 {
						sessionID = m.SessionID
					} else if m.SessionID != sessionID {
						t.Errorf("session id %#08x, want %#08x as on the first line", m.SessionID, sessionID)
					}
					switch {
					case c.server && !slices.Contains(serverCommands, m.Command):
						t.Errorf("S line carries %s, which the server never sends", m.Command)
					case !c.server && !slices.Contains(phoneCommands, m.Command):
						t.Errorf("C line carries %s, which a phone never sends", m.Command)
					}
					again, err := m.Encode()
					if err != nil {
						t.Fatalf("Encode: %v", err)
					}
					if !bytes.Equal(again, c.raw) {
						t.Errorf("re-encoded\n%x\nwant\n%x", again, c.raw)
					}
				})
			}
		})
	}
}

// TestSessionFlows checks each golden session against the flow the protocol
// notes describe for it: the order of commands and the final reason.
func TestSessionFlows(t *testing.T) {
	A, a := wire.CmdAuthRequest, wire.CmdAuthResponse
	K, k := wire.CmdKeyGenerateRequest, wire.CmdKeyGenerateResponse
	S, s := wire.CmdStoreCertificateRequest, wire.CmdStoreCertificateResponse
	F, f := wire.CmdFetchCertificateRequest, wire.CmdFetchCertificateResponse
	D, d := wire.CmdDeleteCertificateRequest, wire.CmdDeleteCertificateResponse
	E, p := wire.CmdEndSession, wire.CmdRequestInProgress
	tests := []struct {
		file   string
		flow   []wire.Command
		device string
		auth   wire.AuthType
		end    wire.Reason
	}{
		{"install-rsa-string-auth", []wire.Command{A, a, K, p, p, k, S, s, E}, "SEP58971ECC97C1", wire.AuthPassword, wire.ReasonSuccess},
		{"install-ec", []wire.Command{A, a, K, k, S, s, E}, "SEPAABBCCDDEEFF", wire.AuthNoPassword, wire.ReasonSuccess},
		{"delete", []wire.Command{A, a, D, d, E}, "SEP58971ECC97C1", wire.AuthLSC, wire.ReasonSuccess},
		{"troubleshoot", []wire.Command{A, a, F, f, E}, "SEP58971ECC97C1", wire.AuthMIC, wire.ReasonNoAction},
		{"no-pending", []wire.Command{A, a, E}, "CSFJDOE", wire.AuthNoPassword, wire.ReasonNoAction},
		{"unknown-device", []wire.Command{A, a, E}, "SEP000000000001", wire.AuthPassword, wire.ReasonUnknownDevice},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var got []wire.Command
			var decoded []*wire.Message
			for _, c := range readSession(t, filepath.Join("testdata", "sessions", tt.file+".hex")) {
				m, err := wire.Decode(c.raw)
				if err != nil {
					t.Fatalf("line %d: %v", c.line, err)
				}
				got = append(got, m.Command)
				decoded = append(decoded, m)
			}
			if !slices.Equal(got, tt.flow) {
				t.Fatalf("flow = %v, want %v", got, tt.flow)
			}
			authResp := decoded[1]
			wantString(t, authResp, wire.TagDeviceName, tt.device)
			wantUint8(t, authResp, wire.TagAuthType, uint8(tt.auth))
			wantUint8(t, decoded[len(decoded)-1], wire.TagReason, uint8(tt.end))
			for _, m := range decoded {
				checkValues(t, m)
			}
		})
	}
}

// checkValues parses the structured element values of a golden message.
func checkValues(t *testing.T, m *wire.Message) {
	t.Helper()
	if v, ok := m.Get(wire.TagCertificate); ok {
		if _, _, err := wire.UnwrapCertificate(v); err != nil {
			t.Errorf("%s: %v", m.Command, err)
		}
	}
	if v, ok := m.Get(wire.TagSUDIData); ok {
		if _, err := wire.ParseSUDIData(v); err != nil {
			t.Errorf("%s: %v", m.Command, err)
		}
	}
	if v, ok := m.Get(wire.TagSHA2SignedData); ok {
		if _, _, err := wire.ParseSHA2SignedData(v); err != nil {
			t.Errorf("%s: %v", m.Command, err)
		}
	}
}

// TestGoldenECKeyParses makes sure the EC public key of install-ec.hex is a
// real SubjectPublicKeyInfo, so that a session test can use it as is.
func TestGoldenECKeyParses(t *testing.T) {
	for _, c := range readSession(t, filepath.Join("testdata", "sessions", "install-ec.hex")) {
		m, err := wire.Decode(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.Command != wire.CmdKeyGenerateResponse {
			continue
		}
		v, _ := m.Get(wire.TagPublicKey)
		pub, err := x509.ParsePKIXPublicKey(v)
		if err != nil {
			t.Fatalf("ParsePKIXPublicKey: %v", err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve.Params().Name != "P-256" {
			t.Errorf("public key = %T, want an ECDSA P-256 key", pub)
		}
		return
	}
	t.Fatal("no KEY_GENERATE_RESPONSE in install-ec.hex")
}
