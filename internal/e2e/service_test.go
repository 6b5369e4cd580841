package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// TestKeySizes installs every key type and size a phone may be asked for.
func TestKeySizes(t *testing.T) {
	s := startServer(t, nil, "")
	for _, key := range config.PhoneKeys {
		t.Run(key, func(t *testing.T) {
			name := newPhoneName()
			res := enroll(t, s, name, "", key)
			switch k := res.Installed.PublicKey.(type) {
			case *rsa.PublicKey:
				if "rsa"+itoa(k.N.BitLen()) != key {
					t.Errorf("RSA-%d key, asked %s", k.N.BitLen(), key)
				}
			case *ecdsa.PublicKey:
				if "ec"+itoa(k.Curve.Params().BitSize) != key {
					t.Errorf("curve %s, asked %s", k.Curve.Params().Name, key)
				}
			default:
				t.Errorf("LSC has a %T key, asked %s", k, key)
			}
			opensslVerify(t, s, res.Installed)
		})
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestKeyGenerationTimeout(t *testing.T) {
	s := startServer(t, serverParams{"key_generation_max_time": "1s"}, "")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
	res, err := s.phone(name, "", func(o *phonesim.Options) {
		o.KeygenDelay, o.ProgressInterval, o.Retries = 2*time.Second, 200*time.Millisecond, -1
	})
	if err == nil && res.EndReason == wire.ReasonSuccess {
		t.Fatalf("a key past key_generation_max_time was accepted: %+v", res)
	}
	if got := s.device(name).Status; got != "Upgrade Failed: Key Generation Timeout" {
		t.Fatalf("status %q", got)
	}
}

func TestExpiredMICAllowedByAdministrator(t *testing.T) {
	s := startServer(t, serverParams{"allow_expired_mic": true}, "")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--auth-mode", "mic", "--operation", "install", "--key", "ec256")
	res, err := s.phone(name, "", func(o *phonesim.Options) { o.MIC = s.mfr.issue(t, "CP-7961G-"+name, true, true) })
	if err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestTLSProfiles(t *testing.T) {
	old := func(o *phonesim.Options) {
		o.MinVersion, o.MaxVersion, o.CipherSuites, o.Retries = tls.VersionTLS10, tls.VersionTLS10, phonesim.LegacyCipherSuites(), -1
	}
	t.Run("modern-refuses-tls10", func(t *testing.T) {
		s := startServer(t, nil, "")
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "rsa1024")
		if res, err := s.phone(name, "", old); err == nil {
			t.Fatalf("a TLS 1.0 phone was served by the modern profile: %+v", res)
		}
	})
	t.Run("legacy-serves-79xx", func(t *testing.T) {
		s := startServer(t, nil, "", "--tls-profile", "legacy")
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "rsa1024")
		res, err := s.phone(name, "", old)
		if err != nil || res.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

// TestRestart checks that a second start reuses the CAPF key and
// certificate, and that the first start laid out the data directory.
func TestRestart(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, nil, data)
	name := newPhoneName()
	enroll(t, s, name, "", "ec256")
	first, _ := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM-equivalent", code)
	}
	if !strings.Contains(s.errOut.String(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", s.errOut)
	}
	info, err := os.Stat(filepath.Join(data, "ca", "capf.key"))
	if err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Fatalf("CAPF key file: %v, mode %v", err, info.Mode())
	}
	s2 := startServer(t, nil, data)
	second, _ := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if !bytes.Equal(first, second) {
		t.Fatal("the CAPF certificate changed across a restart")
	}
	if !strings.Contains(s2.out.String(), "(loaded)") {
		t.Errorf("second start did not say it loaded the certificate:\n%s", s2.out)
	}
	if d := s2.device(name); d.Status != "Upgrade Success" || d.LSCStatus != "valid" {
		t.Fatalf("device after restart: %+v", d)
	}
}

func TestOneServerPerDataDirectory(t *testing.T) {
	s := startServer(t, nil, "")
	out, errOut, code := s.capf("serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	if code != 4 || !strings.Contains(errOut, "in use by another capf serve") {
		t.Fatalf("second serve on one data directory: exit %d\n%s%s", code, out, errOut)
	}
}

func TestJSONLogs(t *testing.T) {
	s := startServer(t, serverParams{"log_format": "json"}, "")
	name := newPhoneName()
	enroll(t, s, name, "", "ec256")
	// The server writes the session event after the phone has its answer:
	// wait for it rather than read the log once.
	ev := waitLogEvent(t, s, func(ev map[string]any) bool {
		return ev["msg"] == "capf session" && ev["device"] == name
	})
	if ev["outcome"] != "success" || ev["auth_mode"] != "null" || ev["operation"] != "install" || ev["remote"] == "" || ev["duration"] == nil {
		t.Fatalf("incomplete session event for %s: %v", name, ev)
	}
}

// waitLogEvent polls the server's JSON log until a line matches, and fails
// the test if a complete line is not JSON or none matches within 10 s.
func waitLogEvent(t *testing.T, s *server, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := s.errOut.String()
		// Only complete lines: the last may be half written.
		if i := strings.LastIndexByte(log, '\n'); i >= 0 {
			for _, line := range strings.Split(log[:i], "\n") {
				if line == "" {
					continue
				}
				var ev map[string]any
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("log line is not JSON: %q", line)
				}
				if match(ev) {
					return ev
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching log event in:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
