package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
)

// TestFreeRADIUS checks docs/freeradius.md against a real FreeRADIUS 3
// (Debian's freeradius) and wpa_supplicant's eapol_test, as a phone's
// 802.1X EAP-TLS with its LSC: capf serve issues LSCs to simulated phones
// (RSA-2048 and P-256) and revokes one by capf cert revoke; the CAPF
// certificate and the served CRL go into a hashed CA directory as the
// document's steps 1 and 2 do; FreeRADIUS runs with the document's EAP
// module. With check_crl, and again with the OCSP responder alone, the
// valid LSCs authenticate and the revoked one is refused for its
// revocation; with neither check the revoked one passes (so the refusals
// are the checks'). The document's post-auth comparison refuses a phone's
// LSC sent under another phone's EAP identity.
//
// It is skipped when freeradius or eapol_test is missing, unless
// CAPF_REQUIRE_FREERADIUS is set (scripts/test.sh installs both and sets it).
func TestFreeRADIUS(t *testing.T) {
	for _, tool := range []string{"freeradius", "eapol_test", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CAPF_REQUIRE_FREERADIUS") != "" {
				t.Fatalf("CAPF_REQUIRE_FREERADIUS is set but %s is not installed", tool)
			}
			t.Skipf("%s is not installed (Debian: freeradius, eapoltest)", tool)
		}
	}
	s := startServer(t, serverParams{"crl_listen": "127.0.0.1:0"}, "")
	base := crlListener(t, s)

	type phone struct{ name, state string }
	enrolled := func(key string) phone {
		p := phone{newPhoneName(), t.TempDir()}
		enroll(t, s, p.name, p.state, key)
		return p
	}
	rsaPhone, ecPhone, revokedPhone := enrolled("rsa2048"), enrolled("ec256"), enrolled("ec256")
	revoked, err := phonesim.LoadLSC(revokedPhone.state)
	if err != nil || revoked == nil {
		t.Fatalf("the revoked phone's LSC: %v", err)
	}
	s.mustCapf("cert", "revoke", fmt.Sprintf("%X", revoked.Certificate.SerialNumber), "--reason", "keyCompromise")

	// Steps 1 and 2 of the document: the CAPF certificate, and the served
	// CRL checked against it, PEM-encoded and hashed beside it.
	raddb := t.TempDir()
	capfDir := filepath.Join(raddb, "certs", "capf")
	if err := os.MkdirAll(capfDir, 0o700); err != nil {
		t.Fatal(err)
	}
	capfFile := filepath.Join(capfDir, "capf.pem")
	s.mustCapf("ca", "export", "-o", capfFile)
	hashCRL(t, capfDir, base+"/crl", capfFile, "capf-crl.pem", 1)
	radiusCA := writeRADIUSServerCert(t, filepath.Join(raddb, "certs"))

	type attempt struct {
		phone    phone
		identity string // the EAP identity; "" is the phone's usual CP-8841-SEP…
		ok       bool
		logSays  string // what FreeRADIUS's log says of a refusal
	}
	type radiusCase struct {
		name     string
		checkCRL bool
		ocspURL  string
		attempts []attempt
	}
	runCases := func(t *testing.T, cases []radiusCase) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := startFreeRADIUS(t, raddb, eapModule(tc.checkCRL, tc.ocspURL))
				for i, a := range tc.attempts {
					identity := a.identity
					if identity == "" {
						identity = "CP-8841-" + a.phone.name
					}
					before := len(r.log.String())
					ok, out := eapolTest(t, r.port, radiusCA, a.phone.state, identity)
					if ok != a.ok {
						t.Fatalf("attempt %d (%s as %q): accepted=%v, want %v\neapol_test:\n%s\nfreeradius:\n%s", i, a.phone.name, identity, ok, a.ok, out, r.log.String()[before:])
					}
					if !a.ok && !strings.Contains(r.log.String()[before:], a.logSays) {
						t.Fatalf("attempt %d (%s as %q) was refused, but FreeRADIUS did not log %q:\n%s", i, a.phone.name, identity, a.logSays, r.log.String()[before:])
					}
				}
			})
		}
	}
	runCases(t, []radiusCase{
		{name: "check_crl", checkCRL: true, attempts: []attempt{
			{phone: rsaPhone, ok: true},
			{phone: ecPhone, ok: true},
			{phone: revokedPhone, logSays: "certificate revoked"},
			{phone: rsaPhone, identity: "CP-8841-" + ecPhone.name, logSays: "Rejected in post-auth"},
			{phone: ecPhone, identity: ecPhone.name, ok: true},
		}},
		{name: "ocsp", ocspURL: base + "/ocsp", attempts: []attempt{
			{phone: rsaPhone, ok: true},
			{phone: ecPhone, ok: true},
			{phone: revokedPhone, logSays: "Cert status: revoked"},
		}},
		{name: "no-check", attempts: []attempt{
			{phone: revokedPhone, ok: true},
		}},
	})

	// With a separate issuing CA (the document's last section): its
	// certificate and its CRL join the directory, the CAPF certificate
	// stays the one root. LSCs of both CAs authenticate; a revoked LSC of
	// the issuing CA is refused by its CRL, and by OCSP.
	s.mustCapf("ca", "issuer", "create")
	waitForLog(t, s, "LSCs are signed by the issuing CA")
	issuingFile := filepath.Join(capfDir, "issuing.pem")
	issuingPEM := s.mustCapf("ca", "issuer", "export")
	if err := os.WriteFile(issuingFile, []byte(issuingPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(issuingPEM))
	if block == nil {
		t.Fatalf("capf ca issuer export printed no PEM:\n%s", issuingPEM)
	}
	issuing, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	issuedPhone, issuedRevokedPhone := enrolled("ec256"), enrolled("rsa2048")
	if lsc, err := phonesim.LoadLSC(issuedPhone.state); err != nil || lsc == nil || !bytes.Equal(lsc.Certificate.RawIssuer, issuing.RawSubject) {
		t.Fatalf("the LSC issued after issuer create is not the issuing CA's: %v", err)
	}
	issuedRevoked, err := phonesim.LoadLSC(issuedRevokedPhone.state)
	if err != nil || issuedRevoked == nil {
		t.Fatalf("the revoked phone's LSC: %v", err)
	}
	s.mustCapf("cert", "revoke", fmt.Sprintf("%X", issuedRevoked.Certificate.SerialNumber), "--reason", "keyCompromise")
	hashCRL(t, capfDir, fmt.Sprintf("%s/crl/%x.crl", base, issuing.SubjectKeyId), issuingFile, "issuing-crl.pem", 1)
	runCases(t, []radiusCase{
		{name: "issuing/check_crl", checkCRL: true, attempts: []attempt{
			{phone: issuedPhone, ok: true},
			{phone: issuedRevokedPhone, logSays: "certificate revoked"},
			{phone: rsaPhone, ok: true},
			{phone: revokedPhone, logSays: "certificate revoked"},
		}},
		{name: "issuing/ocsp", ocspURL: base + "/ocsp", attempts: []attempt{
			{phone: issuedPhone, ok: true},
			{phone: issuedRevokedPhone, logSays: "Cert status: revoked"},
		}},
	})
}

// hashCRL is step 2 of docs/freeradius.md: it fetches the CRL at url
// (until it lists n LSCs), checks it against the CA certificate in
// caFile, writes it PEM-encoded as dir/name, and rehashes dir.
func hashCRL(t *testing.T, dir, url, caFile, name string, n int) {
	t.Helper()
	der := filepath.Join(t.TempDir(), "fetched.crl")
	if err := os.WriteFile(der, waitForCRL(t, url, n), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"crl", "-inform", "DER", "-in", der, "-CAfile", caFile, "-noout", "-verify"},
		{"crl", "-inform", "DER", "-in", der, "-out", filepath.Join(dir, name)},
		{"rehash", dir},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// writeRADIUSServerCert writes server.pem and server.key, a self-signed
// P-256 certificate for the RADIUS server, into dir and returns the
// certificate's path (the supplicant's ca_cert).
func writeRADIUSServerCert(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "radius.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile
}

// eapModule is the eap module of docs/freeradius.md, section 3: the
// CAPF certificate and its hashed CRL, check_crl as given, and the OCSP
// responder when ocspURL is set.
func eapModule(checkCRL bool, ocspURL string) string {
	yesNo := map[bool]string{true: "yes", false: "no"}
	ocsp := ""
	if ocspURL != "" {
		ocsp = fmt.Sprintf(`
			ocsp {
				enable = yes
				override_cert_url = yes
				url = "%s"
				use_nonce = yes
				timeout = 2
				softfail = no
			}`, ocspURL)
	}
	return fmt.Sprintf(`
	eap {
		default_eap_type = tls
		timer_expire = 60
		max_sessions = 64
		tls-config tls-common {
			private_key_file = ${certdir}/server.key
			certificate_file = ${certdir}/server.pem
			ca_path = ${certdir}/capf
			ca_file = ${certdir}/capf/capf.pem
			ca_path_reload_interval = 300
			check_crl = %s
			check_all_crl = no%s
		}
		tls {
			tls = tls-common
		}
	}`, yesNo[checkCRL], ocsp)
}

// radiusdConf is a whole FreeRADIUS 3 configuration: one client
// (127.0.0.1, secret testing123), the eap module given, and a server that
// authenticates with it and compares the EAP identity with the LSC's
// common name after authentication, as docs/freeradius.md shows.
const radiusdConf = `
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
raddbdir = %[1]s
confdir = ${raddbdir}
logdir = ${raddbdir}/log
radacctdir = ${logdir}/radacct
run_dir = ${raddbdir}/run
db_dir = ${raddbdir}
modconfdir = ${confdir}/mods-config
certdir = ${confdir}/certs
cadir = ${confdir}/certs
libdir = /usr/lib/freeradius
name = freeradius
pidfile = ${run_dir}/${name}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {
	destination = stdout
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client localhost {
	ipaddr = 127.0.0.1
	secret = testing123
}
modules {
	always reject {
		rcode = reject
	}
%[3]s
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %[2]d
	}
	authorize {
		eap
	}
	authenticate {
		eap
	}
	post-auth {
		if (&User-Name !~ /(^|-)%%{TLS-Client-Cert-Common-Name}$/) {
			reject
		}
	}
}
`

// radiusServer is a running freeradius -X.
type radiusServer struct {
	port int
	log  *syncBuffer
}

// startFreeRADIUS writes radiusd.conf with the eap module into raddb and
// runs freeradius -X on a free UDP port of 127.0.0.1 until the test ends.
func startFreeRADIUS(t *testing.T, raddb, eap string) *radiusServer {
	t.Helper()
	for _, d := range []string{"log", "run"} {
		if err := os.MkdirAll(filepath.Join(raddb, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(raddb, "dictionary"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for try := 0; ; try++ {
		port := freeUDPPort(t)
		conf := fmt.Sprintf(radiusdConf, raddb, port, eap)
		if err := os.WriteFile(filepath.Join(raddb, "radiusd.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		log := &syncBuffer{}
		cmd := exec.CommandContext(ctx, "freeradius", "-X", "-d", raddb)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { cancel(); <-exited }
		deadline := time.After(30 * time.Second)
	wait:
		for !strings.Contains(log.String(), "Ready to process requests") {
			select {
			case <-exited:
				break wait
			case <-deadline:
				stop()
				t.Fatalf("freeradius did not start in 30 s:\n%s", log)
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-exited:
			if try < 3 && strings.Contains(log.String(), "in use") {
				continue // the port was taken between the probe and the bind
			}
			t.Fatalf("freeradius stopped:\n%s", log)
		default:
		}
		t.Cleanup(stop)
		return &radiusServer{port: port, log: log}
	}
}

// freeUDPPort is a UDP port of 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// eapolTest runs one EAP-TLS authentication with eapol_test as a phone
// does 802.1X: its LSC and key from the simulator's state directory, the
// EAP identity given, the RADIUS server's certificate trusted. It says
// whether the server accepted, and eapol_test's output.
func eapolTest(t *testing.T, port int, serverCA, state, identity string) (bool, string) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	network := fmt.Sprintf(`network={
	key_mgmt=IEEE8021X
	eap=TLS
	identity="%s"
	ca_cert="%s"
	client_cert="%s"
	private_key="%s"
	eapol_flags=0
}
`, identity, serverCA, filepath.Join(state, phonesim.FileLSC), filepath.Join(state, phonesim.FileLSCKey))
	if err := os.WriteFile(conf, []byte(network), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "eapol_test", "-c", conf, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-s", "testing123", "-t", "10", "-r", "0").CombinedOutput()
	text := string(out)
	switch {
	case err == nil && strings.HasSuffix(strings.TrimSpace(text), "SUCCESS"):
		return true, text
	case err != nil && strings.HasSuffix(strings.TrimSpace(text), "FAILURE"):
		return false, text
	}
	t.Fatalf("eapol_test neither succeeded nor failed: %v\n%s", err, text)
	return false, text
}
