package phonesim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// options returns phone options for the fake server with test timings.
func (s *fakeServer) options(t *testing.T, name string) Options {
	t.Helper()
	return Options{
		Server:         s.addr(),
		Trust:          []*x509.Certificate{s.tlsCert},
		DeviceName:     name,
		StateDir:       t.TempDir(),
		RetryInterval:  10 * time.Millisecond,
		MessageTimeout: 5 * time.Second,
		KeyGen:         testKeyGen,
	}
}

// testKeyGen hands out cached 2048-bit RSA keys and generates the rest.
func testKeyGen(ctx context.Context, spec KeySpec) (crypto.Signer, error) {
	if spec.Type == wire.KeyRSA && spec.Bits == 2048 {
		return cachedRSAKey(), nil
	}
	return GenerateKey(ctx, spec)
}

func run(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// verifySig checks a phone signature over payload: raw PKCS#1 v1.5 for RSA,
// ASN.1 ECDSA for EC.
func verifySig(pub crypto.PublicKey, h crypto.Hash, payload, sig []byte) error {
	var digest []byte
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(payload)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(payload)
		digest = d[:]
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.Hash(0), digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	}
	return errors.New("unknown key type")
}

// checkCertAuth verifies a certificate AUTH_RESPONSE byte by byte.
func checkCertAuth(m *wire.Message, name string, want *x509.Certificate, typ wire.CertType) error {
	// Exactly what a phone sends: no AUTH_TYPE, no PASSWORD.
	allowed := map[wire.Tag]bool{wire.TagReason: true, wire.TagVersion: true, wire.TagDeviceName: true,
		wire.TagCertificate: true, wire.TagSignedData: true, wire.TagSHA2SignedData: true, wire.TagSUDIData: true}
	for _, e := range m.Elements {
		if !allowed[e.Tag] {
			return errors.New("AUTH_RESPONSE carries " + e.Tag.String() + ", which phones do not send")
		}
	}
	if r, _ := m.Get(wire.TagReason); !bytes.Equal(r, []byte{1}) {
		return errors.New("REASON is not 1")
	}
	if m.Has(wire.TagPassword) {
		return errors.New("PASSWORD sent with a certificate")
	}
	cv, _ := m.Get(wire.TagCertificate)
	wantCV := append([]byte{0x01, 0, 0, 0x00, byte(typ)}, want.Raw...)
	binary.BigEndian.PutUint16(wantCV[1:3], uint16(len(want.Raw)+2))
	if !bytes.Equal(cv, wantCV) {
		return errors.New("CERTIFICATE is not the wrapped " + typ.String())
	}
	payload := append(append([]byte(name), 0), want.Raw...)
	sig1, _ := m.Get(wire.TagSignedData)
	if err := verifySig(want.PublicKey, crypto.SHA1, payload, sig1); err != nil {
		return errors.New("SIGNED_DATA: " + err.Error())
	}
	v, _ := m.Get(wire.TagSHA2SignedData)
	id, sig512, err := wire.ParseSHA2SignedData(v)
	if err != nil {
		return err
	}
	if id != wire.HashSHA512 {
		return errors.New("SHA2_SIGNED_DATA hash id " + id.String())
	}
	if err := verifySig(want.PublicKey, crypto.SHA512, payload, sig512); err != nil {
		return errors.New("SHA2_SIGNED_DATA: " + err.Error())
	}
	return nil
}

func TestInstallThenAuthenticateWithLSC(t *testing.T) {
	tests := []struct {
		name    string
		req     func(*wire.Message) // adds the key elements
		checkPK func(crypto.PublicKey) bool
		keyGen  KeyGenFunc
	}{
		{
			name:    "rsa/1024-default-generator",
			req:     func(m *wire.Message) { m.AddUint8(wire.TagKeyType, 0).AddUint16(wire.TagKeySize, 1024) },
			checkPK: func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 1024 },
		},
		{
			name:    "rsa/key-size-alone-2048",
			req:     func(m *wire.Message) { m.AddUint16(wire.TagKeySize, 2048) },
			checkPK: func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 },
		},
		{
			name:    "rsa/nothing-means-2048",
			req:     func(*wire.Message) {},
			checkPK: func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 },
		},
		{
			name:    "ec/P-384",
			req:     func(m *wire.Message) { m.AddUint8(wire.TagKeyType, 1).AddUint8(wire.TagCurve, 1) },
			checkPK: func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() },
		},
		{
			name:    "ec/no-curve-means-P-256",
			req:     func(m *wire.Message) { m.AddUint8(wire.TagKeyType, 1) },
			checkPK: func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var installed atomic.Pointer[x509.Certificate]
			var spec atomic.Pointer[KeySpec]
			const name = "SEP0011223344AA"
			srv := newFakeServer(t, func(c *srvConn, n int) {
				m := c.auth()
				switch n {
				case 0:
					if pw, _ := m.Get(wire.TagPassword); m.Has(wire.TagAuthType) || !bytes.Equal(pw, []byte{0}) {
						c.fail("first session: PASSWORD %v (want empty, null string), AUTH_TYPE sent: %v", pw, m.Has(wire.TagAuthType))
					}
					req := c.msg(wire.CmdKeyGenerateRequest)
					tc.req(req)
					pub, _ := c.keygen(req)
					if pub == nil || !tc.checkPK(pub) {
						c.fail("public key %T is not what was asked", pub)
					}
					cert := c.srv.ca.issue(t, name, pub)
					installed.Store(cert)
					c.send(c.msg(wire.CmdStoreCertificateRequest).
						AddUint8(wire.TagCertificateType, 1).
						Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, cert.Raw)))
					if r, _ := c.expect(wire.CmdStoreCertificateResponse).Get(wire.TagReason); !bytes.Equal(r, []byte{1}) {
						c.fail("STORE reason %v, want 1", r)
					}
					c.end(wire.ReasonSuccess)
				case 1:
					if err := checkCertAuth(m, name, installed.Load(), wire.CertLSC); err != nil {
						c.fail("LSC authentication: %v", err)
					}
					c.end(wire.ReasonNoAction)
				}
			})
			o := srv.options(t, name)
			o.KeyGen = func(ctx context.Context, s KeySpec) (crypto.Signer, error) {
				spec.Store(&s)
				return testKeyGen(ctx, s)
			}
			res := run(t, o)
			if res.EndReason != wire.ReasonSuccess || res.Installed == nil || !res.Installed.Equal(installed.Load()) {
				t.Fatalf("result %+v, want success and the issued LSC installed", res)
			}
			if want := []string{"KEY_GENERATE_REQUEST", "STORE_CERTIFICATE_REQUEST"}; !slices.Equal(res.Operations, want) {
				t.Errorf("operations %v, want %v", res.Operations, want)
			}
			lsc, err := LoadLSC(o.StateDir)
			if err != nil || lsc == nil || !lsc.Certificate.Equal(res.Installed) {
				t.Fatalf("LoadLSC = %v, %v; want the installed LSC", lsc, err)
			}
			if _, err := os.Stat(filepath.Join(o.StateDir, FilePendingKey)); !os.IsNotExist(err) {
				t.Errorf("pending key still in the state after the store: %v", err)
			}

			// A later run of the same phone authenticates with that LSC.
			o2 := srv.options(t, name)
			o2.StateDir = o.StateDir
			res = run(t, o2)
			if res.EndReason != wire.ReasonNoAction || res.Installed != nil || srv.sessions() != 2 {
				t.Errorf("second run %+v (sessions %d), want no-action", res, srv.sessions())
			}
		})
	}
}

func TestAuthResponseContents(t *testing.T) {
	ca := newTestCA(t, "manufacturer")
	micRSA := ca.credential(t, "SEP0011223344AA", true)
	micEC := ca.credential(t, "SEP0011223344AA", false)
	lsc := ca.credential(t, "SEP0011223344AA", false)
	sudi := ca.credential(t, "SUDI", true)

	tests := []struct {
		name  string
		setup func(*Options)
		check func(t *testing.T, m *wire.Message, sessionID uint32)
	}{
		{
			name:  "string",
			setup: func(o *Options) { o.AuthString = "123456" },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				wantElements(t, m, map[wire.Tag][]byte{
					wire.TagVersion:    {3},
					wire.TagDeviceName: []byte("SEP0011223344AA\x00"),
					wire.TagReason:     {1},
					wire.TagPassword:   []byte("123456\x00"),
				})
			},
		},
		{
			name:  "null",
			setup: func(o *Options) {},
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				wantElements(t, m, map[wire.Tag][]byte{
					wire.TagVersion:    {3},
					wire.TagDeviceName: []byte("SEP0011223344AA\x00"),
					wire.TagReason:     {1},
					wire.TagPassword:   {0},
				})
			},
		},
		{
			name:  "mic/rsa",
			setup: func(o *Options) { o.MIC = micRSA },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				if err := checkCertAuth(m, "SEP0011223344AA", micRSA.Certificate, wire.CertMIC); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "mic/ec-with-sudi",
			setup: func(o *Options) { o.AuthMode = AuthModeMIC; o.MIC = micEC; o.SUDI = sudi },
			check: func(t *testing.T, m *wire.Message, id uint32) {
				if err := checkCertAuth(m, "SEP0011223344AA", micEC.Certificate, wire.CertMIC); err != nil {
					t.Error(err)
				}
				v, _ := m.Get(wire.TagSUDIData)
				sd, err := wire.ParseSUDIData(v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sd.Certificate, sudi.Certificate.Raw) {
					t.Error("SUDI_DATA certificate is not the SUDI")
				}
				payload := append(binary.LittleEndian.AppendUint32(nil, id), sudi.Certificate.Raw...)
				if err := verifySig(sudi.Certificate.PublicKey, crypto.SHA1, payload, sd.SHA1Sig); err != nil {
					t.Errorf("SUDI SHA-1 signature: %v", err)
				}
				if err := verifySig(sudi.Certificate.PublicKey, crypto.SHA512, payload, sd.SHA512Sig); err != nil {
					t.Errorf("SUDI SHA-512 signature: %v", err)
				}
			},
		},
		{
			name:  "lsc-mode/falls-back-to-mic",
			setup: func(o *Options) { o.AuthMode = AuthModeLSC; o.MIC = micRSA },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				if err := checkCertAuth(m, "SEP0011223344AA", micRSA.Certificate, wire.CertMIC); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "lsc-mode/prefers-lsc",
			setup: func(o *Options) { o.AuthMode = AuthModeLSC; o.MIC = micRSA; o.LSC = lsc },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				if err := checkCertAuth(m, "SEP0011223344AA", lsc.Certificate, wire.CertLSC); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "mic-mode/falls-back-to-lsc",
			setup: func(o *Options) { o.AuthMode = AuthModeMIC; o.LSC = lsc },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				if err := checkCertAuth(m, "SEP0011223344AA", lsc.Certificate, wire.CertLSC); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:  "string/send-auth-type-on-request",
			setup: func(o *Options) { o.AuthString = "123456"; o.SendAuthType = true },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				wantElements(t, m, map[wire.Tag][]byte{
					wire.TagReason:     {1},
					wire.TagVersion:    {3},
					wire.TagDeviceName: []byte("SEP0011223344AA\x00"),
					wire.TagAuthType:   {1},
					wire.TagPassword:   []byte("123456\x00"),
				})
			},
		},
		{
			name:  "softphone/version-2",
			setup: func(o *Options) { o.DeviceName = "CSFJDOE"; o.AuthString = "42" },
			check: func(t *testing.T, m *wire.Message, _ uint32) {
				wantElements(t, m, map[wire.Tag][]byte{
					wire.TagVersion:    {2},
					wire.TagDeviceName: []byte("CSFJDOE\x00"),
					wire.TagReason:     {1},
					wire.TagPassword:   []byte("42\x00"),
				})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type got struct {
				m  *wire.Message
				id uint32
			}
			ch := make(chan got, 1)
			srv := newFakeServer(t, func(c *srvConn, _ int) {
				ch <- got{c.auth(), c.id}
				c.end(wire.ReasonNoAction)
			})
			o := srv.options(t, "SEP0011223344AA")
			tc.setup(&o)
			res := run(t, o)
			if res.EndReason != wire.ReasonNoAction {
				t.Errorf("end reason %v", res.EndReason)
			}
			g := <-ch
			if g.m.SessionID != g.id {
				t.Errorf("session id %08x, want %08x", g.m.SessionID, g.id)
			}
			tc.check(t, g.m, g.id)
		})
	}
}

// wantElements requires m to hold exactly these elements.
func wantElements(t *testing.T, m *wire.Message, want map[wire.Tag][]byte) {
	t.Helper()
	if len(m.Elements) != len(want) {
		t.Errorf("%d elements, want %d", len(m.Elements), len(want))
	}
	for tag, v := range want {
		if got, _ := m.Get(tag); !bytes.Equal(got, v) {
			t.Errorf("%s = %q, want %q", tag, got, v)
		}
	}
}

func TestFetch(t *testing.T) {
	ca := newTestCA(t, "manufacturer")
	mic := ca.credential(t, "SEP1", false)
	lsc := ca.credential(t, "SEP1", false)
	tests := []struct {
		name     string
		lsc, mic *Credential
		certType int // -1: no CERTIFICATE_TYPE
		want     *Credential
		wantType wire.CertType
	}{
		{"lsc-by-default", lsc, mic, -1, lsc, wire.CertLSC},
		{"mic-when-no-lsc", nil, mic, -1, mic, wire.CertMIC},
		{"mic-asked", lsc, mic, 2, mic, wire.CertMIC},
		{"lsc-asked", lsc, mic, 1, lsc, wire.CertLSC},
		{"lsc-asked-none", nil, mic, 1, nil, 0},
		{"nothing", nil, nil, -1, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan *wire.Message, 1)
			srv := newFakeServer(t, func(c *srvConn, _ int) {
				c.auth()
				req := c.msg(wire.CmdFetchCertificateRequest)
				if tc.certType >= 0 {
					req.AddUint8(wire.TagCertificateType, uint8(tc.certType))
				}
				c.send(req)
				ch <- c.expect(wire.CmdFetchCertificateResponse)
				c.end(wire.ReasonNoAction)
			})
			o := srv.options(t, "SEP1")
			o.AuthMode, o.LSC, o.MIC = AuthModeNull, tc.lsc, tc.mic
			res := run(t, o)
			m := <-ch
			if tc.want == nil {
				wantElements(t, m, map[wire.Tag][]byte{wire.TagReason: {7}})
				if res.Fetched {
					t.Error("Fetched set without a certificate")
				}
				return
			}
			wantElements(t, m, map[wire.Tag][]byte{
				wire.TagReason:      {1},
				wire.TagCertificate: wire.WrapCertificate(tc.wantType, tc.want.Certificate.Raw),
			})
			if !res.Fetched || !slices.Equal(res.Operations, []string{"FETCH_CERTIFICATE_REQUEST"}) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	ca := newTestCA(t, "capf")
	lsc := ca.credential(t, "SEP1", false)
	reasons := make(chan []byte, 2)
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.send(c.msg(wire.CmdDeleteCertificateRequest))
		r, _ := c.expect(wire.CmdDeleteCertificateResponse).Get(wire.TagReason)
		reasons <- r
		c.end(wire.ReasonSuccess)
	})
	o := srv.options(t, "SEP1")
	o.LSC = lsc
	res := run(t, o)
	if r := <-reasons; !bytes.Equal(r, []byte{1}) || !res.Deleted {
		t.Errorf("first delete: reason %v, Deleted %v; want 1, true", r, res.Deleted)
	}
	if l, err := LoadLSC(o.StateDir); l != nil || err != nil {
		t.Errorf("LSC still in the state: %v, %v", l, err)
	}
	o.LSC = nil
	res = run(t, o)
	if r := <-reasons; !bytes.Equal(r, []byte{7}) || res.Deleted {
		t.Errorf("second delete: reason %v, Deleted %v; want 7, false", r, res.Deleted)
	}
}

func TestPendingKeySurvivesRestart(t *testing.T) {
	pubs := make(chan crypto.PublicKey, 1)
	reasons := make(chan []byte, 1)
	srv := newFakeServer(t, func(c *srvConn, n int) {
		c.auth()
		if n == 0 {
			pub, _ := c.keygen(c.msg(wire.CmdKeyGenerateRequest).AddUint8(wire.TagKeyType, 1))
			pubs <- pub
			return // the server crashes before storing
		}
		cert := c.srv.ca.issue(t, "SEP1", <-pubs)
		c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, cert.Raw)))
		r, _ := c.expect(wire.CmdStoreCertificateResponse).Get(wire.TagReason)
		reasons <- r
		c.end(wire.ReasonSuccess)
	})
	o := srv.options(t, "SEP1")
	o.Retries = -1
	if _, err := Run(context.Background(), o); err == nil {
		t.Fatal("Run succeeded although the server hung up")
	}
	res := run(t, o) // the phone "restarts" with the same flash
	if r := <-reasons; !bytes.Equal(r, []byte{1}) || res.Installed == nil {
		t.Errorf("store after restart: reason %v, installed %v", r, res.Installed)
	}
}

func TestLoadCredential(t *testing.T) {
	ca := newTestCA(t, "ca")
	rsaCred := ca.credential(t, "r", true)
	ecCred := ca.credential(t, "e", false)
	pemOf := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	certPEM := func(c *Credential) []byte { return pemOf("CERTIFICATE", c.Certificate.Raw) }
	pkcs8 := func(c *Credential) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}
	sec1, err := x509.MarshalECPrivateKey(ecCred.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want *Credential
	}{
		{"pkcs8-rsa", append(certPEM(rsaCred), pkcs8(rsaCred)...), rsaCred},
		{"pkcs1-key-first", append(pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaCred.Key.(*rsa.PrivateKey))), certPEM(rsaCred)...), rsaCred},
		{"sec1", append(certPEM(ecCred), pemOf("EC PRIVATE KEY", sec1)...), ecCred},
		{"fail/mismatch", append(certPEM(rsaCred), pkcs8(ecCred)...), nil},
		{"fail/no-key", certPEM(rsaCred), nil},
		{"fail/no-cert", pkcs8(rsaCred), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cred.pem")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadCredential(path)
			if tc.want == nil {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Certificate.Equal(tc.want.Certificate) || !samePublicKey(c.Key.Public(), tc.want.Key.Public()) {
				t.Error("loaded a different credential")
			}
			again, err := c.PEM()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseCredential(again); err != nil {
				t.Errorf("PEM does not round-trip: %v", err)
			}
		})
	}
}
