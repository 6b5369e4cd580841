package cli

import (
	"bytes"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestCAIssuerEndToEnd: with an issuing CA below the active CAPF
// certificate, a phone enrols against real serve and its LSC comes from
// the issuing CA (issuer name and authority key id), verifies with
// openssl under the CAPF certificate through the issuing CA, and
// authenticates the phone's next session (the chain through the issuing
// CA), while TLS keeps presenting the CAPF certificate. What the issuing
// CA must not be is refused with its reason and changes nothing.
func TestCAIssuerEndToEnd(t *testing.T) {
	data := initData(t)
	dir := t.TempDir()

	if _, errOut, code := run(t, data, "ca", "issuer", "export"); code != ExitNotFound || !strings.Contains(errOut, "no issuing CA") {
		t.Errorf("issuer export with none: exit %d: %s", code, errOut)
	}
	// A CAPF certificate with path length 0 (as this server made them
	// before pathlen 1) allows no CA below it.
	zk := ecKey(t, elliptic.P256())
	zeroTmpl := caTemplate("CAPF-pathlen-0")
	zeroTmpl.MaxPathLenZero = true
	zero := sign(t, nil, zeroTmpl, zk.Public(), zk)
	if out, errOut, code := run(t, data, "ca", "import", writePEM(t, dir, "zero.pem", nil, zero), writePEM(t, dir, "zero.key", zk)); code != ExitOK {
		t.Fatalf("ca import: exit %d: %s%s", code, out, errOut)
	}
	zeroID, _ := caset.KeyID(zero)
	if out, errOut, code := run(t, data, "ca", "activate", zeroID); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	before := setSnapshot(t, data)
	if _, errOut, code := run(t, data, "ca", "issuer", "create"); code != ExitUsage || !strings.Contains(errOut, "path length constraint 0") {
		t.Errorf("issuer create under a pathlen-0 CAPF certificate: exit %d: %s", code, errOut)
	}
	if after := setSnapshot(t, data); after != before {
		t.Errorf("the refused create changed %s, was %s", after, before)
	}

	// A CAPF certificate that allows one CA below it, imported and activated.
	rk := ecKey(t, elliptic.P256())
	rootTmpl := caTemplate("CAPF-with-issuer")
	rootTmpl.MaxPathLen = 1
	root := &outsideCA{cert: sign(t, nil, rootTmpl, rk.Public(), rk), key: rk}
	capfFile := writePEM(t, dir, "capf.pem", nil, root.cert)
	if out, errOut, code := run(t, data, "ca", "import", capfFile, writePEM(t, dir, "capf.key", rk)); code != ExitOK {
		t.Fatalf("ca import: exit %d: %s%s", code, out, errOut)
	}
	rootID, _ := caset.KeyID(root.cert)
	if out, errOut, code := run(t, data, "ca", "activate", rootID); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}

	// Refusals: a CA of another PKI, a certificate that is no CA, a key
	// that is not the certificate's, the CAPF certificate itself.
	other := newOutsideRoot(t)
	ok := ecKey(t, elliptic.P256())
	foreign := sign(t, other, caTemplate("Foreign Issuing"), ok.Public(), nil)
	leafTmpl := caTemplate("Not a CA")
	leafTmpl.IsCA, leafTmpl.KeyUsage = false, x509.KeyUsageDigitalSignature
	notCA := sign(t, root, leafTmpl, ok.Public(), nil)
	good := sign(t, root, caTemplate("Imported Issuing"), ok.Public(), nil)
	stray := ecKey(t, elliptic.P256())
	keyFile := writePEM(t, dir, "issuing.key", ok)
	before = setSnapshot(t, data)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"another PKI", writePEM(t, dir, "foreign.pem", nil, foreign), keyFile, "not signed by a CAPF certificate of the set"},
		{"not a CA", writePEM(t, dir, "notca.pem", nil, notCA), keyFile, "not a CA certificate"},
		{"another key", writePEM(t, dir, "good.pem", nil, good), writePEM(t, dir, "stray.key", stray), caset.PublicKeyID(stray.Public())},
		{"the CAPF itself", capfFile, writePEM(t, dir, "capf2.key", rk), "is a CAPF certificate of the set"},
		{"two certificates", writePEM(t, dir, "two.pem", nil, good, root.cert), keyFile, "holds 2 certificates"},
	} {
		if _, errOut, code := run(t, data, "ca", "issuer", "import", tc.cert, tc.key); code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d: %s, want refused naming %q", tc.name, code, errOut, tc.want)
		}
	}
	if after := setSnapshot(t, data); after != before {
		t.Errorf("the refused imports changed %s, was %s", after, before)
	}

	// serve runs before the issuing CA exists: it takes it without a
	// restart.
	sout, serveLog, _ := startServeLogs(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}

	// The issuing CA, made by the CAPF; a second one is refused.
	out, errOut, code := run(t, data, "ca", "issuer", "create", "--key-algorithm", "ec256")
	if code != ExitOK {
		t.Fatalf("issuer create: exit %d: %s%s", code, out, errOut)
	}
	created := time.Now()
	for !strings.Contains(serveLog.String(), "LSCs are signed by the issuing CA") {
		if time.Since(created) > 10*time.Second {
			t.Fatalf("the running serve did not take the issuing CA 10 s after it was created:\n%s", serveLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the running serve signs with the issuing CA %v after it was created", time.Since(created).Round(10*time.Millisecond))
	if _, errOut, code := run(t, data, "ca", "issuer", "import", filepath.Join(dir, "good.pem"), keyFile); code != ExitConflict || !strings.Contains(errOut, "in place already") {
		t.Errorf("a second issuing CA: exit %d: %s", code, errOut)
	}
	issuingFile := filepath.Join(datadir.Dir(data).CA(), issuingCADir, "capf.pem")
	b, err := os.ReadFile(issuingFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "ca", "issuer", "export"); code != ExitOK || out != string(b) {
		t.Errorf("issuer export: exit %d: %s%s, want %s", code, out, errOut, b)
	}
	blk, _ := pem.Decode(b)
	issuing, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if issuing.CheckSignatureFrom(root.cert) != nil || !issuing.IsCA || !issuing.MaxPathLenZero {
		t.Fatalf("the issuing CA %s is not a pathlen-0 CA signed by the CAPF certificate", issuing.Subject)
	}
	issuingID, _ := caset.KeyID(issuing)
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{})
	st.Close()
	if err != nil || len(evs) == 0 || evs[0].Action != caset.AuditIssuer || evs[0].Target != issuingID {
		t.Errorf("the newest audit event is not %s %s: %v %+v", caset.AuditIssuer, issuingID, err, evs[:min(1, len(evs))])
	}

	const name = "SEP00AABBCCDDEE"
	if out, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}

	// TLS presents the CAPF certificate, not the issuing CA.
	conn, err := tls.Dial("tcp", m[1], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	peers := conn.ConnectionState().PeerCertificates
	conn.Close()
	if len(peers) == 0 || !peers[0].Equal(root.cert) {
		t.Errorf("TLS presents %v, want the CAPF certificate %s", peers[0].Subject, root.cert.Subject)
	}

	state := filepath.Join(dir, "phone")
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", capfFile, "--state", state, "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("enrol: exit %d: %s%s", code, out, errOut)
	}
	lscFile := filepath.Join(state, phonesim.FileLSC)
	lsc := readCert(t, lscFile)
	if !bytes.Equal(lsc.RawIssuer, issuing.RawSubject) || !bytes.Equal(lsc.AuthorityKeyId, issuing.SubjectKeyId) || lsc.CheckSignatureFrom(issuing) != nil {
		t.Fatalf("the LSC is issued by %s (AKI %x), want the issuing CA %s (%x)", lsc.Issuer, lsc.AuthorityKeyId, issuing.Subject, issuing.SubjectKeyId)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, "-untrusted", issuingFile, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CAfile capf.pem -untrusted issuing.pem: %v\n%s", err, b)
	}
	// Without the issuing CA it does not verify: the check can fail.
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, lscFile).CombinedOutput(); err == nil {
		t.Errorf("openssl verify accepts the LSC without its issuing CA:\n%s", b)
	}

	oldFile := writePEM(t, dir, "old-lsc.pem", nil, lsc)
	if out, errOut, code := run(t, data, "ca", "status"); code != ExitOK || !strings.Contains(out, "issuing CA: "+issuingID) || !strings.Contains(out, "below the CAPF certificate "+rootID+", 1 phones, signing") {
		t.Errorf("ca status: exit %d: %s%s, want the issuing CA %s below %s with 1 phone", code, out, errOut, issuingID, rootID)
	}

	// The phone re-keys, authenticated by that LSC (through the issuing CA).
	if out, errOut, code := run(t, data, "device", "set", name, "--auth-mode", "lsc", "--operation", "install"); code != ExitOK {
		t.Fatalf("device set: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", capfFile, "--state", state, "--retries", "0", "--auth-mode", "lsc"); code != ExitOK {
		t.Fatalf("re-key by the LSC of the issuing CA: exit %d: %s%s", code, out, errOut)
	}
	renewed := readCert(t, lscFile)
	if renewed.Equal(lsc) || renewed.CheckSignatureFrom(issuing) != nil {
		t.Errorf("after the re-key the phone holds %s from %s, want a new LSC of the issuing CA", renewed.SerialNumber, renewed.Issuer)
	}

	// The superseded LSC goes on the issuing CA's CRL, signed by it.
	crlDER := filepath.Join(data, "crl", issuingID+".crl")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(crlDER); err == nil {
			if crl, err := x509.ParseRevocationList(b); err == nil && len(crl.RevokedCertificateEntries) == 1 && crl.RevokedCertificateEntries[0].SerialNumber.Cmp(lsc.SerialNumber) == 0 {
				if err := crl.CheckSignatureFrom(issuing); err != nil {
					t.Fatalf("the CRL of the issuing CA is not signed by it: %v", err)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CRL of the issuing CA listing the superseded LSC %X in %s", lsc.SerialNumber, crlDER)
		}
		time.Sleep(100 * time.Millisecond)
	}
	crlPEM := filepath.Join(data, "crl", issuingID+".pem")
	if b, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", capfFile, "-untrusted", issuingFile, "-CRLfile", crlPEM, oldFile).CombinedOutput(); err == nil || !strings.Contains(string(b), "revoked") {
		t.Errorf("openssl verify -crl_check of the superseded LSC: %v\n%s", err, b)
	}
	if b, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", capfFile, "-untrusted", issuingFile, "-CRLfile", crlPEM, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -crl_check of the renewed LSC: %v\n%s", err, b)
	}

	// After a rollover, retiring the CAPF certificate that signed the
	// issuing CA counts the phone holding an LSC of the issuing CA: it
	// authenticates through that CAPF certificate.
	if out, errOut, code := run(t, data, "ca", "regenerate", "--key-algorithm", "ec256"); code != ExitOK {
		t.Fatalf("ca regenerate: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "ca", "activate"); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := run(t, data, "ca", "retire", rootID); code != ExitConflict || !strings.Contains(errOut, "1 phones hold a valid LSC") {
		t.Errorf("retire the CAPF certificate above the issuing CA: exit %d: %s, want refused naming 1 phone", code, errOut)
	}

	// Removed by command while the phone holds its LSC: taken out of place
	// (the running serve signs new LSCs with the active CAPF certificate),
	// its key files moved to DATA/ca/issuing-ID, but still trusted.
	out, errOut, code = run(t, data, "ca", "issuer", "remove")
	if code != ExitOK || !strings.Contains(out, "stays trusted for the 1 phones") {
		t.Fatalf("issuer remove with a phone on it: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), issuingCADir)); !os.IsNotExist(err) {
		t.Errorf("DATA/ca/issuing after the removal: %v", err)
	}
	formerDir := filepath.Join(datadir.Dir(data).CA(), issuingCADir+"-"+issuingID)
	if _, err := os.Stat(filepath.Join(formerDir, "capf.key")); err != nil {
		t.Errorf("the former issuing CA's key in %s: %v", formerDir, err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(serveLog.String(), "no issuing CA: the active CAPF certificate signs LSCs") {
		if time.Now().After(deadline) {
			t.Fatalf("the running serve did not drop the issuing CA:\n%s", serveLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, _, _ := run(t, data, "ca", "status"); !strings.Contains(out, "issuing CA: none") || !strings.Contains(out, "former issuing CA: "+issuingID) || !strings.Contains(out, "1 phones: still trusted") {
		t.Errorf("ca status after the removal:\n%s", out)
	}
	// The phone re-keys authenticated by the removed issuing CA's LSC,
	// and gets one of the active CAPF certificate (the one after the
	// rollover, which it trusts with the old one).
	activeFile := filepath.Join(dir, "active.pem")
	if out, errOut, code := run(t, data, "ca", "export", "-o", activeFile); code != ExitOK {
		t.Fatalf("ca export: exit %d: %s%s", code, out, errOut)
	}
	bundle := filepath.Join(dir, "capf-bundle.pem")
	if err := os.WriteFile(bundle, append(mustRead(t, capfFile), mustRead(t, activeFile)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "device", "set", name, "--auth-mode", "lsc", "--operation", "install"); code != ExitOK {
		t.Fatalf("device set: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", bundle, "--state", state, "--retries", "0", "--auth-mode", "lsc"); code != ExitOK {
		t.Fatalf("re-key by the LSC of the removed issuing CA: exit %d: %s%s", code, out, errOut)
	}
	third := readCert(t, lscFile)
	if active := readCert(t, activeFile); third.CheckSignatureFrom(active) != nil {
		t.Errorf("after the removal the phone got %s from %s, want an LSC of the active CAPF certificate %s", third.SerialNumber, third.Issuer, active.Subject)
	}
	// The LSC it replaced goes on the former issuing CA's CRL, still
	// signed by it.
	deadline = time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(crlDER); err == nil {
			if crl, err := x509.ParseRevocationList(b); err == nil && len(crl.RevokedCertificateEntries) == 2 && crl.CheckSignatureFrom(issuing) == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the former issuing CA's CRL does not list the LSC %X the re-key superseded", renewed.SerialNumber)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Forgotten once no phone holds its LSC: its key files go, and it is
	// no longer shown.
	if _, errOut, code := run(t, data, "ca", "issuer", "forget", "abc"); code != ExitNotFound || !strings.Contains(errOut, "no former issuing CA abc") {
		t.Errorf("forget an unknown id: exit %d: %s", code, errOut)
	}
	if out, errOut, code := run(t, data, "ca", "issuer", "forget", issuingID[:8]); code != ExitOK || !strings.Contains(out, "forgot the former issuing CA "+issuingID+" (0 phones") {
		t.Fatalf("issuer forget: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(formerDir); !os.IsNotExist(err) {
		t.Errorf("%s after forget: %v", formerDir, err)
	}
	if out, _, _ := run(t, data, "ca", "status"); strings.Contains(out, "former issuing CA") {
		t.Errorf("ca status after forget:\n%s", out)
	}
	if out, _, _ := run(t, data, "audit", "--limit", "3"); !strings.Contains(out, caset.AuditIssuerForget) {
		t.Errorf("forget is not audited:\n%s", out)
	}
}

// readCert reads the first PEM certificate of path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCAIssuerDirAdopted: an issuing CA put in place before it was data
// (DATA/ca/issuing, no database row) becomes the database's on serve's
// next start, and signs; an issuer command then finds it in place.
func TestCAIssuerDirAdopted(t *testing.T) {
	data := initData(t)
	dir := t.TempDir()
	rk := ecKey(t, elliptic.P256())
	rootTmpl := caTemplate("CAPF-upgrade")
	rootTmpl.MaxPathLen = 1
	root := &outsideCA{cert: sign(t, nil, rootTmpl, rk.Public(), rk), key: rk}
	if out, errOut, code := run(t, data, "ca", "import", writePEM(t, dir, "capf.pem", nil, root.cert), writePEM(t, dir, "capf.key", rk)); code != ExitOK {
		t.Fatalf("ca import: exit %d: %s%s", code, out, errOut)
	}
	rootID, _ := caset.KeyID(root.cert)
	if out, errOut, code := run(t, data, "ca", "activate", rootID); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	// The layout of before: the directory alone.
	ik := ecKey(t, elliptic.P256())
	issuing := sign(t, root, caTemplate("Upgrade Issuing"), ik.Public(), nil)
	if err := ca.Install(filepath.Join(datadir.Dir(data).CA(), issuingCADir), issuing, ik); err != nil {
		t.Fatal(err)
	}
	_, serveLog, stop := startServeLogs(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	if !strings.Contains(serveLog.String(), "LSCs are signed by the issuing CA") {
		t.Errorf("serve did not put the issuing CA of the directory in force:\n%s", serveLog.String())
	}
	stop()
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, ok, err := st.IssuingCA(t.Context())
	st.Close()
	id, _ := caset.KeyID(issuing)
	if err != nil || !ok || r.ID != id || r.ParentID != rootID || r.KeyRef != caset.IssuingKeyPrefix+id {
		t.Fatalf("the database's issuing CA after serve = %+v %v %v, want %s below %s", r, ok, err, id, rootID)
	}
	if _, errOut, code := run(t, data, "ca", "issuer", "create"); code != ExitConflict || !strings.Contains(errOut, "in place already") {
		t.Errorf("issuer create with one in place: exit %d: %s", code, errOut)
	}
}

// TestIssuingInForce: an issuing CA signs only while valid; before or
// after, the active CAPF certificate signs (nil) and a warning says so.
func TestIssuingInForce(t *testing.T) {
	rk := ecKey(t, elliptic.P256())
	rootTmpl := caTemplate("CAPF-validity")
	rootTmpl.MaxPathLen = 1
	root := &outsideCA{cert: sign(t, nil, rootTmpl, rk.Public(), rk), key: rk}
	ik := ecKey(t, elliptic.P256())
	c := sign(t, root, caTemplate("Issuing validity"), ik.Public(), nil)
	iss, err := ca.New(c, ik, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want *ca.Authority
	}{
		{"valid", c.NotBefore.Add(time.Minute), iss},
		{"not yet", c.NotBefore.Add(-time.Minute), nil},
		{"expired", c.NotAfter.Add(time.Minute), nil},
	} {
		var logs bytes.Buffer
		if got := issuingInForce(iss, tc.at, slog.New(slog.NewTextHandler(&logs, nil))); got != tc.want {
			t.Errorf("%s: issuingInForce = %v, want %v", tc.name, got, tc.want)
		}
		if warned := strings.Contains(logs.String(), "not valid now"); warned != (tc.want == nil) {
			t.Errorf("%s: warning %v, want %v: %s", tc.name, warned, tc.want == nil, logs.String())
		}
	}
	if issuingInForce(nil, time.Now(), slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))) != nil {
		t.Error("no issuing CA gave one")
	}
}

// TestRegeneratedCAPFHoldsIssuingCA: the CAPF certificate capf ca
// regenerate makes allows an issuing CA below it (path length 1), so
// regenerate, activate and issuer create give LSCs that openssl verifies
// with the CAPF certificate as the root and the issuing CA as the
// intermediate (with pathlen 0 the create was refused).
func TestRegeneratedCAPFHoldsIssuingCA(t *testing.T) {
	data := initData(t)
	dir := t.TempDir()
	out, errOut, code := run(t, data, "ca", "regenerate", "--key-algorithm", "ec256")
	if code != ExitOK {
		t.Fatalf("regenerate: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`staged ([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no id in %q", out)
	}
	if out, errOut, code := run(t, data, "ca", "activate", m[1]); code != ExitOK {
		t.Fatalf("activate: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "ca", "issuer", "create", "--key-algorithm", "ec256"); code != ExitOK {
		t.Fatalf("issuer create under the regenerated CAPF certificate: exit %d: %s%s", code, out, errOut)
	}
	capfPEM, errOut, code := run(t, data, "ca", "export")
	if code != ExitOK {
		t.Fatalf("ca export: exit %d: %s", code, errOut)
	}
	capfFile := filepath.Join(dir, "capf.pem")
	if err := os.WriteFile(capfFile, []byte(capfPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	issuing, err := ca.Load(ca.Options{Dir: filepath.Join(datadir.Dir(data).CA(), issuingCADir)})
	if err != nil {
		t.Fatal(err)
	}
	lsc, err := issuing.Issue(t.Context(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: ecKey(t, elliptic.P256()).Public()})
	if err != nil {
		t.Fatal(err)
	}
	issuingFile := writePEM(t, dir, "issuing.pem", nil, issuing.Certificate())
	lscFile := writePEM(t, dir, "lsc.pem", nil, lsc.Certificate)
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, "-untrusted", issuingFile, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CAfile capf.pem -untrusted issuing.pem lsc.pem: %v\n%s", err, b)
	}
}
