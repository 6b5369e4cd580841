package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/wire"
)

const sid = 0x01020304

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// fakeStore keeps devices and outcomes in memory, claims devices as the
// real store does (one open attempt each), and logs the order of calls.
type fakeStore struct {
	mu         sync.Mutex
	devices    map[string]device.Device
	attempts   map[int64]device.Attempt
	open       map[string]int64 // device → open attempt
	outcomes   []device.Outcome // FinishAttempt, and RecordAuthFailure as an outcome
	failures   []device.AuthFailure
	issuances  []device.Issuance
	fetched    []device.FetchedCertificate
	calls      []string
	getErr     error
	issueErr   error // RecordIssuance fails with it
	guessesCAS int   // CountAuthGuess calls that succeeded
	// openElsewhere is the attempts open on other nodes; countLag is how
	// many of them CountOpenAttempts does not see yet (they were claimed
	// after it counted).
	openElsewhere, countLag int
}

func newFakeStore(ds ...device.Device) *fakeStore {
	s := &fakeStore{devices: map[string]device.Device{}, attempts: map[int64]device.Attempt{}, open: map[string]int64{}}
	for _, d := range ds {
		s.devices[d.Name] = d
	}
	return s
}

func (s *fakeStore) GetDevice(_ context.Context, name string) (device.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return device.Device{}, s.getErr
	}
	d, ok := s.devices[name]
	if !ok {
		return d, fault.NotFoundf("device %s", name)
	}
	return d, nil
}

func (s *fakeStore) CountOpenAttempts(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open) + s.openElsewhere - s.countLag, nil
}

func (s *fakeStore) StartAttempt(_ context.Context, a device.Attempt) (device.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[a.Device]
	if !ok {
		return device.Claim{}, fault.NotFoundf("device %s", a.Device)
	}
	if id, busy := s.open[a.Device]; busy {
		return device.Claim{}, fault.Conflictf("device %s has attempt %d open", a.Device, id)
	}
	if a.MaxOpen > 0 && len(s.open)+s.openElsewhere >= a.MaxOpen {
		return device.Claim{}, fault.New(fault.Throttled, "max_concurrent_operations (%d) reached across the fleet", a.MaxOpen)
	}
	id := int64(len(s.attempts) + 1)
	s.attempts[id] = a
	s.open[a.Device] = id
	d.AuthFailures = 0
	if d.Operation != device.OpNone {
		d.Status = device.StatusInProgress
	}
	s.devices[a.Device] = d
	s.calls = append(s.calls, "start")
	return device.Claim{AttemptID: id}, nil
}

func (s *fakeStore) RecordIssuance(_ context.Context, is device.Issuance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issueErr != nil {
		return s.issueErr
	}
	s.issuances = append(s.issuances, is)
	s.calls = append(s.calls, "issuance")
	return nil
}

func (s *fakeStore) FinishAttempt(_ context.Context, o device.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.attempts[o.AttemptID]
	if !ok || s.open[a.Device] != o.AttemptID || a.Node != o.Node {
		return fault.Conflictf("attempt %d is not open for node %q", o.AttemptID, o.Node)
	}
	delete(s.open, a.Device)
	s.outcomes = append(s.outcomes, o)
	s.calls = append(s.calls, "finish")
	return nil
}

func (s *fakeStore) SaveFetchedCertificate(_ context.Context, fc device.FetchedCertificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched = append(s.fetched, fc)
	return nil
}

func (s *fakeStore) CountAuthGuess(_ context.Context, name string, seen, max int, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[name]
	if d.AuthFailures != seen || d.AuthString == "" || (max > 0 && d.AuthFailures >= max) {
		return false, nil
	}
	d.AuthFailures++
	d.LastAuthFailure = at
	s.devices[name] = d
	s.guessesCAS++
	return true, nil
}

func (s *fakeStore) RecordAuthFailure(_ context.Context, f device.AuthFailure) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
	s.outcomes = append(s.outcomes, device.Outcome{Device: f.Attempt.Device, Result: f.Attempt.Result, Reason: f.Attempt.Reason, SUDI: f.Attempt.SUDI})
	s.calls = append(s.calls, "auth-failure")
	d := s.devices[f.Attempt.Device]
	if f.MaxFailures > 0 && d.AuthFailures >= f.MaxFailures && d.AuthString != "" {
		d.AuthString = ""
		d.Status = device.FailedStatus(d.Operation, device.ReasonTooManyAuthFailures)
		s.devices[d.Name] = d
		return true, nil
	}
	return false, nil
}

func (s *fakeStore) lastOutcome(t *testing.T) device.Outcome {
	t.Helper()
	if len(s.outcomes) == 0 {
		t.Fatal("no outcome recorded")
	}
	return s.outcomes[len(s.outcomes)-1]
}

// fakeIssuer signs real certificates with a throwaway EC CA.
type fakeIssuer struct {
	key      *ecdsa.PrivateKey
	cert     *x509.Certificate
	err      error
	validity []time.Duration // of each request
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CAPF"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &fakeIssuer{key: key, cert: cert}
}

func (f *fakeIssuer) Issue(_ context.Context, req ca.IssueRequest) (*ca.Issued, error) {
	f.validity = append(f.validity, req.Validity)
	if f.err != nil {
		return nil, f.err
	}
	serial := big.NewInt(0xABCDEF)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: req.DeviceName},
		NotBefore: t0, NotAfter: t0.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.cert, req.PublicKey, f.key)
	if err != nil {
		return nil, err
	}
	c, _ := x509.ParseCertificate(der)
	return &ca.Issued{Serial: serial, SerialHex: "ABCDEF", DER: der, Certificate: c, NotBefore: c.NotBefore, NotAfter: c.NotAfter}, nil
}

// fakeAuth accepts or refuses as told and remembers what it saw.
type fakeAuth struct {
	err      error
	cert     *x509.Certificate
	kind     auth.CertKind // of cert; MIC when empty
	seen     []auth.Presented
	policies []auth.Policy
}

func (a *fakeAuth) AuthenticateWith(pol auth.Policy, mode device.AuthMode, _ string, p auth.Presented) (auth.Result, error) {
	a.seen = append(a.seen, p)
	a.policies = append(a.policies, pol)
	if a.err != nil {
		return auth.Result{}, a.err
	}
	r := auth.Result{Method: mode}
	if a.cert != nil {
		r.Certificate, r.CertKind = a.cert, auth.CertMIC
		if a.kind != "" {
			r.CertKind = a.kind
		}
	}
	return r, nil
}

type fakeTracer struct{ kinds []string }

func (f *fakeTracer) WriteTrace(_, kind string, _ *x509.Certificate) (string, error) {
	f.kinds = append(f.kinds, kind)
	return "/trace/" + kind, nil
}

type fixture struct {
	clock  *fakeClock
	store  *fakeStore
	issuer *fakeIssuer
	auth   *fakeAuth
	tracer *fakeTracer
	deps   *Deps
	s      *Session
}

const phone = "SEP001122334455"

func newFixture(t *testing.T, d device.Device) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{now: t0}, store: newFakeStore(d), issuer: newFakeIssuer(t), auth: &fakeAuth{}, tracer: &fakeTracer{}}
	f.deps = &Deps{Store: f.store, Issuer: f.issuer, Auth: f.auth, Tracer: f.tracer, Locks: NewDeviceLocks(), Now: f.clock.Now,
		Config: Config{KeyGenMaxTime: 10 * time.Minute, KeyGenMaxAttempts: 2, MessageTimeout: time.Minute, DefaultKey: device.RSA2048, RetryDelay: 30 * time.Second}}
	f.s = New(f.deps, sid, "192.0.2.10:5000")
	return f
}

// withWindows sets the maintenance windows and starts the session anew, as
// fleet parameters apply from a session's start.
func (f *fixture) withWindows(w Windows) {
	f.withConfig(func(c *Config) { c.Windows = w })
}

// withConfig changes the fleet parameters and starts the session anew.
func (f *fixture) withConfig(change func(*Config)) {
	change(&f.deps.Config)
	f.s = New(f.deps, sid, "192.0.2.10:5000")
}

func pending(op device.Operation, key device.KeySpec) device.Device {
	return device.Device{Name: phone, SecurityProfile: device.NonSecure, AuthMode: device.AuthNull, Operation: op, Key: key, Status: device.StatusPending}
}

func authResponse(name string) *wire.Message {
	m := wire.New(wire.CmdAuthResponse, sid).AddUint8(wire.TagVersion, 3)
	if name != "" {
		m.AddString(wire.TagDeviceName, name)
	}
	return m.AddString(wire.TagPassword, "")
}

func pkix256(t *testing.T) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return der
}

func rsaKeyDER(t *testing.T, bits int) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return der
}

func keyResponse(der []byte) *wire.Message {
	return wire.New(wire.CmdKeyGenerateResponse, sid).Add(wire.TagPublicKey, der)
}

func reasonMsg(cmd wire.Command, r wire.Reason) *wire.Message {
	return wire.New(cmd, sid).AddUint8(wire.TagReason, uint8(r))
}

// expectEnd checks that step ends the session with reason r.
func expectEnd(t *testing.T, step Step, r wire.Reason) {
	t.Helper()
	if step.Reply == nil || step.Reply.Command != wire.CmdEndSession || !step.Done {
		t.Fatalf("step = %+v, want END_SESSION and done", step)
	}
	got, err := step.Reply.Uint8(wire.TagReason)
	if err != nil || wire.Reason(got) != r {
		t.Fatalf("END_SESSION reason = %v (%v), want %v", wire.Reason(got), err, r)
	}
}

func expectReply(t *testing.T, step Step, cmd wire.Command) {
	t.Helper()
	if step.Reply == nil || step.Reply.Command != cmd || step.Done {
		t.Fatalf("step = %+v, want %s and not done", step, cmd)
	}
	if step.Reply.SessionID != sid {
		t.Fatalf("reply session id %#x, want %#x", step.Reply.SessionID, sid)
	}
}

func TestStart(t *testing.T) {
	f := newFixture(t, pending(device.OpInstall, device.RSA2048))
	m := f.s.Start()
	b, _ := m.Encode()
	want := []byte{0x55, 0x01, 0x01, 0x02, 0x03, 0x04, 0x00, 0x04, 0x07, 0x00, 0x01, 0x03}
	if string(b) != string(want) {
		t.Fatalf("AUTH_REQUEST = % x, want % x", b, want)
	}
	if f.s.State() != AwaitAuth {
		t.Fatalf("state %s", f.s.State())
	}
}

func TestAuthStep(t *testing.T) {
	tests := []struct {
		name       string
		dev        device.Device
		msg        *wire.Message
		setup      func(f *fixture)
		wantCmd    wire.Command
		wantReason wire.Reason // for END_SESSION
		wantState  State
		wantStatus string // outcome recorded, "" for none
	}{
		{name: "fail/unknown-device", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse("SEP00112233AAAA"),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonUnknownDevice, wantState: Done},
		{name: "fail/invalid-device-name", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse("bogus"),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonUnknownDevice, wantState: Done},
		{name: "fail/no-device-name", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse(""),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done},
		{name: "fail/bad-version", dev: pending(device.OpInstall, device.RSA2048),
			msg:     wire.New(wire.CmdAuthResponse, sid).AddUint8(wire.TagVersion, 9).AddString(wire.TagDeviceName, phone),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done},
		{name: "ok/nothing-pending", dev: pending(device.OpNone, device.RSA2048), msg: authResponse(phone),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonNoAction, wantState: Done},
		{name: "ok/lowercase-name-normalized", dev: pending(device.OpNone, device.RSA2048), msg: authResponse("sep001122334455"),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonNoAction, wantState: Done},
		{name: "fail/deadline-passed", dev: func() device.Device {
			d := pending(device.OpInstall, device.RSA2048)
			d.Deadline = t0.Add(-time.Minute)
			return d
		}(), msg: authResponse(phone), wantCmd: wire.CmdEndSession, wantReason: wire.ReasonNoAction, wantState: Done,
			wantStatus: "Upgrade Failed: User Initiated Request Late/Timedout"},
		{name: "fail/auth-refused", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse(phone),
			setup: func(f *fixture) {
				f.auth.err = &auth.Error{Reason: device.ReasonInvalidAuthString, Detail: "mismatch"}
			},
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done,
			wantStatus: "Upgrade Failed: Invalid Authentication String"},
		{name: "fail/malformed-sha2-signed-data", dev: pending(device.OpInstall, device.RSA2048),
			msg:     authResponse(phone).Add(wire.TagSHA2SignedData, []byte{3, 0}),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done,
			wantStatus: "Upgrade Failed: Invalid Credentials"},
		{name: "retry/store-down", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse(phone),
			setup:   func(f *fixture) { f.store.getErr = errors.New("disk on fire") },
			wantCmd: wire.CmdRetryLater, wantState: Done},
		{name: "retry/device-busy", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse(phone),
			setup:   func(f *fixture) { f.store.open[phone] = 99 },
			wantCmd: wire.CmdRetryLater, wantState: Done},
		{name: "ok/install-asks-key", dev: pending(device.OpInstall, device.RSA2048), msg: authResponse(phone),
			wantCmd: wire.CmdKeyGenerateRequest, wantState: AwaitKey},
		{name: "ok/delete-asks-delete", dev: pending(device.OpDelete, device.RSA2048), msg: authResponse(phone),
			wantCmd: wire.CmdDeleteCertificateRequest, wantState: AwaitDelete},
		{name: "ok/troubleshoot-asks-fetch", dev: pending(device.OpTroubleshoot, device.RSA2048), msg: authResponse(phone),
			wantCmd: wire.CmdFetchCertificateRequest, wantState: AwaitFetch},
		{name: "fail/wrong-session-id", dev: pending(device.OpInstall, device.RSA2048),
			msg:     wire.New(wire.CmdAuthResponse, sid+1).AddString(wire.TagDeviceName, phone),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done},
		{name: "fail/unexpected-command", dev: pending(device.OpInstall, device.RSA2048), msg: keyResponse([]byte{1}),
			wantCmd: wire.CmdEndSession, wantReason: wire.ReasonRefused, wantState: Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.dev)
			if tt.setup != nil {
				tt.setup(f)
			}
			f.s.Start()
			step := f.s.Handle(context.Background(), tt.msg)
			if tt.wantCmd == wire.CmdEndSession {
				expectEnd(t, step, tt.wantReason)
			} else if step.Reply == nil || step.Reply.Command != tt.wantCmd {
				t.Fatalf("reply = %+v, want %s", step.Reply, tt.wantCmd)
			}
			if f.s.State() != tt.wantState {
				t.Errorf("state = %s, want %s", f.s.State(), tt.wantState)
			}
			if tt.wantStatus == "" {
				if len(f.store.outcomes) != 0 {
					t.Errorf("outcome recorded: %+v", f.store.outcomes)
				}
			} else if got := f.store.lastOutcome(t).Result; got != tt.wantStatus {
				t.Errorf("status = %q, want %q", got, tt.wantStatus)
			}
		})
	}
}

func TestKeyGenerateRequestElements(t *testing.T) {
	tests := []struct {
		key  device.KeySpec
		want []wire.Element
	}{
		{device.RSA2048, []wire.Element{{Tag: wire.TagKeyType, Value: []byte{0}}, {Tag: wire.TagKeySize, Value: []byte{0x08, 0x00}}}},
		{device.RSA512, []wire.Element{{Tag: wire.TagKeyType, Value: []byte{0}}, {Tag: wire.TagKeySize, Value: []byte{0x02, 0x00}}}},
		{device.EC256, []wire.Element{{Tag: wire.TagKeyType, Value: []byte{1}}, {Tag: wire.TagCurve, Value: []byte{0}}}},
		{device.EC384, []wire.Element{{Tag: wire.TagKeyType, Value: []byte{1}}, {Tag: wire.TagCurve, Value: []byte{1}}}},
		{device.EC521, []wire.Element{{Tag: wire.TagKeyType, Value: []byte{1}}, {Tag: wire.TagCurve, Value: []byte{2}}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.key), func(t *testing.T) {
			f := newFixture(t, pending(device.OpInstall, tt.key))
			step := f.s.Handle(context.Background(), authResponse(phone))
			expectReply(t, step, wire.CmdKeyGenerateRequest)
			if fmt.Sprint(step.Reply.Elements) != fmt.Sprint(tt.want) {
				t.Errorf("elements = %v, want %v", step.Reply.Elements, tt.want)
			}
		})
	}
}

// toAwaitKey runs a fixture to the key-generation state.
func toAwaitKey(t *testing.T, key device.KeySpec) *fixture {
	t.Helper()
	f := newFixture(t, pending(device.OpInstall, key))
	expectReply(t, f.s.Handle(context.Background(), authResponse(phone)), wire.CmdKeyGenerateRequest)
	return f
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	t.Run("ok/progress-then-key-then-store", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		for i := 0; i < 3; i++ {
			f.clock.now = f.clock.now.Add(2 * time.Minute)
			if step := f.s.Handle(ctx, wire.New(wire.CmdRequestInProgress, sid)); step.Reply != nil || step.Done {
				t.Fatalf("REQUEST_IN_PROGRESS answered: %+v", step)
			}
		}
		if f.s.Deadline() != t0.Add(10*time.Minute) {
			t.Errorf("deadline during key generation = %v, want the key-generation limit", f.s.Deadline())
		}
		step := f.s.Handle(ctx, keyResponse(pkix256(t)))
		expectReply(t, step, wire.CmdStoreCertificateRequest)
		if got := fmt.Sprint(f.store.calls); got != "[start issuance]" {
			t.Fatalf("calls before sending the certificate = %s, want issuance recorded first", got)
		}
		v, _ := step.Reply.Get(wire.TagCertificate)
		typ, der, err := wire.UnwrapCertificate(v)
		if err != nil || typ != wire.CertLSC || string(der) != string(f.store.issuances[0].DER) {
			t.Fatalf("certificate element: type %v err %v, DER matches record: %v", typ, err, string(der) == string(f.store.issuances[0].DER))
		}
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdStoreCertificateResponse, wire.ReasonSuccess)), wire.ReasonSuccess)
		o := f.store.lastOutcome(t)
		if o.Result != "Upgrade Success" || !o.Completed || o.SetLSC == nil || o.SetLSC.Serial != "ABCDEF" || o.AuthMode != "null" {
			t.Fatalf("outcome = %+v", o)
		}
		if f.s.Summary().KeyWaits != 3 {
			t.Errorf("key waits = %d", f.s.Summary().KeyWaits)
		}
	})
	t.Run("ok/keygen-failure-asks-again", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		step := f.s.Handle(ctx, reasonMsg(wire.CmdKeyGenerateResponse, wire.ReasonRefused))
		expectReply(t, step, wire.CmdKeyGenerateRequest)
		expectReply(t, f.s.Handle(ctx, keyResponse(pkix256(t))), wire.CmdStoreCertificateRequest)
	})
	t.Run("fail/keygen-attempts-exhausted", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		expectReply(t, f.s.Handle(ctx, reasonMsg(wire.CmdKeyGenerateResponse, wire.ReasonRefused)), wire.CmdKeyGenerateRequest)
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdKeyGenerateResponse, wire.ReasonRefused)), wire.ReasonRefused)
		if got := f.store.lastOutcome(t).Result; got != "Upgrade Failed: Key Generation Failed" {
			t.Errorf("status %q", got)
		}
	})
	t.Run("fail/key-after-deadline", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		f.clock.now = t0.Add(11 * time.Minute)
		expectEnd(t, f.s.Handle(ctx, keyResponse(pkix256(t))), wire.ReasonRefused)
		if got := f.store.lastOutcome(t).Result; got != "Upgrade Failed: Key Generation Timeout" {
			t.Errorf("status %q", got)
		}
	})
	t.Run("fail/wrong-key-type", func(t *testing.T) {
		f := toAwaitKey(t, device.RSA1024)
		expectEnd(t, f.s.Handle(ctx, keyResponse(pkix256(t))), wire.ReasonRefused)
		if got := f.store.lastOutcome(t).Result; got != "Upgrade Failed: Invalid Public Key" {
			t.Errorf("status %q", got)
		}
		if len(f.store.issuances) != 0 {
			t.Error("a certificate was issued for the wrong key")
		}
	})
	t.Run("fail/wrong-rsa-size", func(t *testing.T) {
		f := toAwaitKey(t, device.RSA2048)
		expectEnd(t, f.s.Handle(ctx, keyResponse(rsaKeyDER(t, 1024))), wire.ReasonRefused)
	})
	t.Run("fail/garbage-key", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		expectEnd(t, f.s.Handle(ctx, keyResponse([]byte{0x30, 0x03, 0x01})), wire.ReasonRefused)
	})
	t.Run("fail/issuer-error-not-sent", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		f.issuer.err = errors.New("HSM unplugged")
		expectEnd(t, f.s.Handle(ctx, keyResponse(pkix256(t))), wire.ReasonRefused)
		if got := f.store.lastOutcome(t).Result; got != "Upgrade Failed: Internal Error" {
			t.Errorf("status %q", got)
		}
	})
	t.Run("fail/phone-refuses-store", func(t *testing.T) {
		f := toAwaitKey(t, device.EC256)
		f.s.Handle(ctx, keyResponse(pkix256(t)))
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdStoreCertificateResponse, wire.ReasonRefused)), wire.ReasonRefused)
		o := f.store.lastOutcome(t)
		if o.Result != "Upgrade Failed: Phone Refused Certificate" || o.Completed || o.SetLSC != nil {
			t.Errorf("outcome %+v", o)
		}
		if len(f.store.issuances) != 1 {
			t.Error("the issued certificate must stay on record")
		}
	})
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T) *fixture
		want    string
	}{
		{"before-auth-records-nothing", func(t *testing.T) *fixture { return newFixture(t, pending(device.OpInstall, device.EC256)) }, ""},
		{"during-keygen", func(t *testing.T) *fixture { return toAwaitKey(t, device.EC256) }, "Upgrade Failed: Phone Communication Failure"},
		{"keygen-timeout", func(t *testing.T) *fixture {
			f := toAwaitKey(t, device.EC256)
			f.clock.now = t0.Add(time.Hour)
			return f
		}, "Upgrade Failed: Key Generation Timeout"},
		{"awaiting-store", func(t *testing.T) *fixture {
			f := toAwaitKey(t, device.EC256)
			f.s.Handle(ctx, keyResponse(pkix256(t)))
			return f
		}, "Upgrade Failed: Phone Communication Failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.prepare(t)
			f.s.Abort(ctx, errors.New("connection reset"))
			f.s.Close()
			if f.s.State() != Done {
				t.Errorf("state %s", f.s.State())
			}
			if tt.want == "" {
				if len(f.store.outcomes) != 0 {
					t.Errorf("outcome recorded: %+v", f.store.outcomes)
				}
				return
			}
			o := f.store.lastOutcome(t)
			if o.Result != tt.want || o.Completed {
				t.Errorf("outcome %+v, want %q and operation kept for the phone's retry", o, tt.want)
			}
			if _, open := f.store.open[phone]; open {
				t.Error("the device's attempt was left open")
			}
		})
	}
}

func TestDeleteAndTroubleshoot(t *testing.T) {
	ctx := context.Background()
	t.Run("ok/delete", func(t *testing.T) {
		f := newFixture(t, pending(device.OpDelete, device.EC256))
		f.s.Handle(ctx, authResponse(phone))
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdDeleteCertificateResponse, wire.ReasonSuccess)), wire.ReasonSuccess)
		if o := f.store.lastOutcome(t); o.Result != "Delete Success" || !o.ClearLSC || !o.Completed {
			t.Errorf("outcome %+v", o)
		}
	})
	t.Run("ok/delete-nothing-there", func(t *testing.T) {
		f := newFixture(t, pending(device.OpDelete, device.EC256))
		f.s.Handle(ctx, authResponse(phone))
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdDeleteCertificateResponse, wire.ReasonRefused)), wire.ReasonSuccess)
	})
	t.Run("fail/delete-odd-reason", func(t *testing.T) {
		f := newFixture(t, pending(device.OpDelete, device.EC256))
		f.s.Handle(ctx, authResponse(phone))
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdDeleteCertificateResponse, wire.Reason(42))), wire.ReasonRefused)
		if o := f.store.lastOutcome(t); o.Result != "Delete Failed: Phone Refused Delete" || o.Completed {
			t.Errorf("outcome %+v", o)
		}
	})
	t.Run("ok/troubleshoot-records-auth-and-fetched-certificates", func(t *testing.T) {
		f := newFixture(t, pending(device.OpTroubleshoot, device.EC256))
		f.auth.cert = newFakeIssuer(t).cert // pretend the phone authenticated with this as its MIC
		f.s.Handle(ctx, authResponse(phone))
		resp := reasonMsg(wire.CmdFetchCertificateResponse, wire.ReasonSuccess).
			Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, f.issuer.cert.Raw))
		expectEnd(t, f.s.Handle(ctx, resp), wire.ReasonNoAction)
		if o := f.store.lastOutcome(t); o.Result != "Troubleshoot Success" || !o.Completed {
			t.Errorf("outcome %+v", o)
		}
		if fmt.Sprint(f.tracer.kinds) != "[MIC LSC]" || len(f.store.fetched) != 2 {
			t.Errorf("traces %v, fetched %d", f.tracer.kinds, len(f.store.fetched))
		}
	})
	t.Run("ok/troubleshoot-lsc-presented-and-fetched-recorded-once", func(t *testing.T) {
		f := newFixture(t, pending(device.OpTroubleshoot, device.EC256))
		f.auth.cert, f.auth.kind = f.issuer.cert, auth.CertLSC // authenticated with its LSC
		f.s.Handle(ctx, authResponse(phone))
		resp := reasonMsg(wire.CmdFetchCertificateResponse, wire.ReasonSuccess).
			Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, f.issuer.cert.Raw)) // and fetched the same
		expectEnd(t, f.s.Handle(ctx, resp), wire.ReasonNoAction)
		if o := f.store.lastOutcome(t); o.Result != "Troubleshoot Success" || !o.Completed {
			t.Errorf("outcome %+v", o)
		}
		if fmt.Sprint(f.tracer.kinds) != "[LSC]" || len(f.store.fetched) != 1 {
			t.Errorf("traces %v, fetched %d; want the one LSC once", f.tracer.kinds, len(f.store.fetched))
		}
	})
	t.Run("fail/troubleshoot-nothing-on-phone", func(t *testing.T) {
		f := newFixture(t, pending(device.OpTroubleshoot, device.EC256))
		f.s.Handle(ctx, authResponse(phone))
		expectEnd(t, f.s.Handle(ctx, reasonMsg(wire.CmdFetchCertificateResponse, wire.ReasonRefused)), wire.ReasonNoAction)
		if o := f.store.lastOutcome(t); o.Result != "Troubleshoot Failed: No Certificate On Phone" || o.Completed {
			t.Errorf("outcome %+v", o)
		}
	})
	t.Run("fail/troubleshoot-garbage-certificate", func(t *testing.T) {
		f := newFixture(t, pending(device.OpTroubleshoot, device.EC256))
		f.s.Handle(ctx, authResponse(phone))
		resp := reasonMsg(wire.CmdFetchCertificateResponse, wire.ReasonSuccess).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, []byte("junk")))
		expectEnd(t, f.s.Handle(ctx, resp), wire.ReasonRefused)
	})
}

func TestCheckKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name string
		pub  any
		spec device.KeySpec
		ok   bool
	}{
		{"ok/rsa1024", &rk.PublicKey, device.RSA1024, true},
		{"fail/rsa-size", &rk.PublicKey, device.RSA2048, false},
		{"fail/rsa-for-ec", &rk.PublicKey, device.EC256, false},
		{"ok/p384", &ec.PublicKey, device.EC384, true},
		{"fail/curve", &ec.PublicKey, device.EC256, false},
		{"fail/ec-for-rsa", &ec.PublicKey, device.RSA2048, false},
		{"fail/other-type", []byte{1}, device.RSA2048, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckKey(tt.pub, tt.spec); (err == nil) != tt.ok {
				t.Errorf("CheckKey = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
