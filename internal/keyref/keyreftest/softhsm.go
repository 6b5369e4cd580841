//go:build cgo

// Package keyreftest gives tests a SoftHSM2 token to keep keys in: a
// token directory and configuration of their own in a temporary
// directory, a token initialised there with a known PIN, and helpers that
// generate RSA and ECDSA key pairs inside it.
//
// Only tests import it. A test that calls SoftHSM skips when the SoftHSM2
// module is not installed, unless CAPF_REQUIRE_SOFTHSM is set (as
// scripts/test.sh does), when it fails instead: CI never skips.
package keyreftest

import (
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Modules are where Debian's libsofthsm2 puts the SoftHSM2 PKCS #11
// module; CAPF_SOFTHSM_MODULE overrides them.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// The token every test shares, and its PINs.
const (
	TokenLabel = "capf-test"
	PIN        = "314159"
	SOPIN      = "27182818"
)

// HSM is the process's SoftHSM2 token.
type HSM struct {
	// Module is the path of the PKCS #11 module.
	Module string
	// Token is the token's label.
	Token string
	// PINFile holds PIN, mode 0600.
	PINFile string
	// Dir is the temporary directory with the configuration, the token
	// directory and the PIN file.
	Dir string
}

var (
	once    sync.Once
	shared  *HSM
	initErr error
	skipMsg string
)

// Module returns the SoftHSM2 module's path, or "" when none is installed.
func Module() string {
	candidates := Modules
	if m := os.Getenv("CAPF_SOFTHSM_MODULE"); m != "" {
		candidates = []string{m}
	}
	for _, m := range candidates {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

func moduleHint() string {
	if m := os.Getenv("CAPF_SOFTHSM_MODULE"); m != "" {
		return m + " from CAPF_SOFTHSM_MODULE"
	}
	return fmt.Sprint(Modules)
}

// SoftHSM returns the process's token, creating it on first use:
// SOFTHSM2_CONF is set, for the whole process, to a configuration whose
// token directory is a new temporary directory (Cleanup removes it).
func SoftHSM(t testing.TB) *HSM {
	t.Helper()
	once.Do(func() { shared, skipMsg, initErr = setup() })
	if skipMsg != "" {
		if os.Getenv("CAPF_REQUIRE_SOFTHSM") != "" {
			t.Fatalf("CAPF_REQUIRE_SOFTHSM is set but %s", skipMsg)
		}
		t.Skipf("%s; install Debian's softhsm2 (scripts/install-deps.sh does) or set CAPF_SOFTHSM_MODULE", skipMsg)
	}
	if initErr != nil {
		t.Fatalf("SoftHSM2 token: %v", initErr)
	}
	return shared
}

func setup() (*HSM, string, error) {
	mod := Module()
	if mod == "" {
		return nil, "no SoftHSM2 module (looked for " + moduleHint() + ")", nil
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return nil, "softhsm2-util is not installed", nil
	}
	removeStale()
	dir, err := os.MkdirTemp("", fmt.Sprintf("capf-softhsm-%d-", os.Getpid()))
	if err != nil {
		return nil, "", err
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return nil, "", err
	}
	out, err := exec.Command(util, "--init-token", "--free", "--label", TokenLabel, "--pin", PIN, "--so-pin", SOPIN).CombinedOutput()
	if err != nil {
		return nil, "", fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(PIN+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	return &HSM{Module: mod, Token: TokenLabel, PINFile: pinFile, Dir: dir}, "", nil
}

// removeStale removes the token directories of test processes that have
// ended without Cleanup (a package without a TestMain that calls it).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "capf-softhsm-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "capf-softhsm-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// Cleanup removes the token directory, if one was made; call it from
// TestMain after m.Run. Without it, the directory is removed by the next
// test process that makes one.
func Cleanup() {
	if shared != nil {
		_ = os.RemoveAll(shared.Dir)
	}
}

// Ref returns the pkcs11: reference of the key pair labelled object.
func (h *HSM) Ref(object string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s", h.Token, object)
}

// labels numbers the labels of generated keys: the token lives as long as
// the test process, so that -count=N makes new keys each time.
var labels atomic.Int64

// unique returns object with a number no other key of this process has.
func unique(object string) string { return fmt.Sprintf("%s-%d", object, labels.Add(1)) }

// GenerateRSA makes an RSA key pair of bits inside the token (the private
// key is sensitive and not extractable), labelled object and a number of
// its own, and returns its reference.
func (h *HSM) GenerateRSA(t testing.TB, object string, bits int) string {
	t.Helper()
	label := unique(object)
	h.generate(t, func(c *crypto11.Context, id []byte) error {
		_, err := c.GenerateRSAKeyPairWithLabel(id, []byte(label), bits)
		return err
	})
	return h.Ref(label)
}

// GenerateECDSA makes an ECDSA key pair on curve inside the token,
// labelled object and a number of its own, and returns its reference.
func (h *HSM) GenerateECDSA(t testing.TB, object string, curve elliptic.Curve) string {
	t.Helper()
	return h.GenerateECDSALabelled(t, unique(object), curve)
}

// GenerateECDSALabelled is GenerateECDSA with the label exactly as given,
// even if another key has it already (to test ambiguous references).
func (h *HSM) GenerateECDSALabelled(t testing.TB, label string, curve elliptic.Curve) string {
	t.Helper()
	h.generate(t, func(c *crypto11.Context, id []byte) error {
		_, err := c.GenerateECDSAKeyPairWithLabel(id, []byte(label), curve)
		return err
	})
	return h.Ref(label)
}

func (h *HSM) generate(t testing.TB, gen func(*crypto11.Context, []byte) error) {
	t.Helper()
	c, err := crypto11.Configure(&crypto11.Config{Path: h.Module, TokenLabel: h.Token, Pin: PIN})
	if err != nil {
		t.Fatalf("open SoftHSM2 token: %v", err)
	}
	defer c.Close()
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	if err := gen(c, id); err != nil {
		t.Fatalf("generate key in SoftHSM2: %v", err)
	}
}

// ForgetSessions makes the token forget this process, as a restart of the
// HSM does: every session of the process with the token is closed, and
// with the last one the login. Keys open through it then fail with
// CKR_SESSION_HANDLE_INVALID (or CKR_USER_NOT_LOGGED_IN) until they log in
// again. The module stays initialised for the others who use it.
func (h *HSM) ForgetSessions(t testing.TB) {
	t.Helper()
	p := pkcs11.New(h.Module)
	if p == nil {
		t.Fatalf("load %s", h.Module)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatalf("C_Initialize: %v", err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, slot := range slots {
		info, err := p.GetTokenInfo(slot)
		if err != nil || info.Label != h.Token {
			continue
		}
		if err := p.CloseAllSessions(slot); err != nil {
			t.Fatalf("C_CloseAllSessions: %v", err)
		}
		return
	}
	t.Fatalf("no slot holds the token %q", h.Token)
}
