package trustfile

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trust"
)

// ServedName is the name of the file serve keeps in trust_file_dir, as
// phones ask for it.
const ServedName = "ITLFile.tlv"

// AuditServe is the audit action of each rewrite of the served file.
const AuditServe = "trust.serve-rewrite"

// Auditor records an audit event that goes with no device change (the
// store's AppendAudit).
type Auditor interface {
	AppendAudit(ctx context.Context, ev device.AuditEvent) error
}

// Service keeps the trust file serve writes to trust_file_dir and answers
// what the edges ask about it and about the SAST signers.
type Service struct {
	// Path is the served file (trust_file_dir/ITLFile.tlv); "": serve
	// keeps no trust file.
	Path string
	// Keystore opens the SAST signers (the data directory's, or a
	// cluster's in the database); it runs at each use.
	Keystore func() (*trust.Keystore, error)
	// CAPF are the CAPF certificates the file lists with the CAPF role.
	CAPF []*x509.Certificate
	// CAPFNow, when set, gives them at each use instead of CAPF: the CA
	// set of a running server, whose certificates change (ADR 0017).
	CAPFNow func() []*x509.Certificate
	// Adds are the trust_file_add entries listed after this CAPF's own.
	Adds []trust.Entry
	// Audit records each rewrite before it happens; nil: not audited.
	Audit Auditor
	// Signer chooses the identity that signs, from the keystore Keystore
	// opened (a key kept in a PKCS #11 token, say); nil: the primary SAST
	// key of the keystore.
	Signer func(*trust.Keystore) (trust.Signing, error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrNoServedFile is returned when serve keeps no trust file.
var ErrNoServedFile = fault.NotFoundf("serve keeps no trust file: trust_file_dir is not set")

// capfs returns the CAPF certificates listed now.
func (s *Service) capfs() []*x509.Certificate {
	if s.CAPFNow != nil {
		return s.CAPFNow()
	}
	return s.CAPF
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Rewrite is what one Sync did.
type Rewrite struct {
	Written bool
	Records int
	Bytes   int
	SHA256  string // of the new file, lower-case hex
}

// Sync writes the served file when it is missing, unreadable, does not
// verify, or lists other records (role and certificate) than Entries and
// Adds would now; a file that differs only in its timestamp is left
// alone, unless force. It signs with the primary SAST key, or as Signer
// chooses. Before it
// writes, it records the rewrite for actor in Audit (when set) and writes
// nothing if that fails.
func (s *Service) Sync(ctx context.Context, actor device.Actor, force bool) (Rewrite, error) {
	if s.Path == "" {
		return Rewrite{}, ErrNoServedFile
	}
	ks, err := s.Keystore()
	if err != nil {
		return Rewrite{}, err
	}
	entries := append(Entries(ks, s.capfs()), s.Adds...)
	if old, err := os.ReadFile(s.Path); err == nil {
		if f, err := trust.Parse(old); err == nil && f.Verify() == nil && SameRecords(f.Records, entries) && !force {
			return Rewrite{}, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Rewrite{}, fmt.Errorf("read %s: %w", s.Path, err)
	}
	sign := s.Signer
	if sign == nil {
		sign = func(ks *trust.Keystore) (trust.Signing, error) { return ks.Primary.Signing() }
	}
	signer, err := sign(ks)
	if err != nil {
		return Rewrite{}, err
	}
	now := s.now()
	b, err := trust.Build(trust.BuildOptions{FileName: ServedName, Signer: signer, Entries: entries, Now: now})
	if err != nil {
		return Rewrite{}, err
	}
	sum := sha256.Sum256(b)
	rw := Rewrite{Written: true, Records: len(entries), Bytes: len(b), SHA256: hex.EncodeToString(sum[:])}
	if s.Audit != nil {
		ev := device.AuditEvent{At: now.UTC(), Actor: actor, Action: AuditServe, Target: ServedName,
			Detail: fmt.Sprintf("rewrote %s: %d records, %d bytes, sha256 %s", s.Path, rw.Records, rw.Bytes, rw.SHA256)}
		if err := s.Audit.AppendAudit(ctx, ev); err != nil {
			return Rewrite{}, fmt.Errorf("audit the rewrite of %s: %w", s.Path, err)
		}
	}
	if err := atomicfile.Write(s.Path, b, 0o644, false); err != nil {
		return Rewrite{}, err
	}
	return rw, nil
}

// Served is the served file as it is now.
type Served struct {
	Path string
	// Raw is the file's bytes; nil when it is missing.
	Raw []byte
	// View describes it; nil when it is missing or does not parse.
	View *FileView
	// ParseError says why it does not parse ("" when it does).
	ParseError string
	// CAPF is how it lists each CAPF certificate of the service.
	CAPF []CAPFListing
}

// Problems lists what keeps phones from trusting this CAPF with the file:
// missing, unparsable, a signature that does not verify, a CAPF
// certificate not listed with the CAPF role. None: it is fine.
func (s Served) Problems() []string {
	switch {
	case s.Raw == nil:
		return []string{"the file is missing (serve writes it at start and every minute)"}
	case s.View == nil:
		return []string{"the file is not a trust file: " + s.ParseError}
	}
	var out []string
	if !s.View.Verified {
		out = append(out, "the signature does not verify: "+s.View.VerifyError)
	}
	for _, l := range s.CAPF {
		if p := l.Problem(); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Current reads the served file (at most trust.MaxParseSize bytes) and
// checks it against the CAPF certificates.
func (s *Service) Current(ctx context.Context) (Served, error) {
	if s.Path == "" {
		return Served{}, ErrNoServedFile
	}
	out := Served{Path: s.Path}
	fh, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return Served{}, fmt.Errorf("open %s: %w", s.Path, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(trust.MaxParseSize)+1))
	if err != nil {
		return Served{}, fmt.Errorf("read %s: %w", s.Path, err)
	}
	out.Raw = b
	if len(b) > trust.MaxParseSize {
		out.Raw = b[:0]
		out.ParseError = fmt.Sprintf("larger than %d bytes", trust.MaxParseSize)
		return out, nil
	}
	f, err := trust.Parse(b)
	if err != nil {
		out.ParseError = err.Error()
		return out, nil
	}
	v := ViewOf(f)
	out.View = &v
	for _, c := range s.capfs() {
		out.CAPF = append(out.CAPF, CheckCAPF(f, c))
	}
	return out, nil
}

// Signers describes the SAST signing identities now.
func (s *Service) Signers(ctx context.Context) ([]Signer, error) {
	ks, err := s.Keystore()
	if err != nil {
		return nil, err
	}
	return Signers(ks, s.now()), nil
}
