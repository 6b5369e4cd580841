package trustfile

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/trust"
)

// Entries is the list every file of this CAPF starts with: both SAST
// identities, the primary again with the TFTP role (phones check .sgn
// files against a TFTP certificate), and each CAPF certificate in capfs
// with the CAPF role, in order.
func Entries(ks *trust.Keystore, capfs []*x509.Certificate) []trust.Entry {
	out := []trust.Entry{
		{Role: trust.RoleSAST, Cert: ks.Primary.Cert},
		{Role: trust.RoleSAST, Cert: ks.Backup.Cert},
		{Role: trust.RoleTFTP, Cert: ks.Primary.Cert},
	}
	for _, c := range capfs {
		out = append(out, trust.Entry{Role: trust.RoleCAPF, Cert: c})
	}
	return out
}

// SameRecords reports whether recs list exactly entries (role and
// certificate), in order.
func SameRecords(recs []trust.Record, entries []trust.Entry) bool {
	if len(recs) != len(entries) {
		return false
	}
	for i, r := range recs {
		if r.Role != entries[i].Role || !bytes.Equal(r.Certificate, entries[i].Cert.Raw) {
			return false
		}
	}
	return true
}

// ConfigAdds reads the trust_file_add entries ("ROLE=CERT.pem", paths
// relative to dataDir): every problem names its entry. The SAST role is
// refused: a file lists this CAPF's two SAST certificates and phones take
// no more.
func ConfigAdds(dataDir string, adds []string) ([]trust.Entry, []string) {
	var (
		out      []trust.Entry
		problems []string
	)
	for _, a := range adds {
		roleName, path, ok := strings.Cut(a, "=")
		if !ok || path == "" {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: want ROLE=CERT.pem, e.g. ccm=asterisk.pem", a))
			continue
		}
		role, err := trust.ParseRole(strings.TrimSpace(roleName))
		if err != nil {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: %v", a, err))
			continue
		}
		if role == trust.RoleSAST {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: the file lists this CAPF's own two SAST certificates, and phones take no more", a))
			continue
		}
		c, err := trust.ReadCertificate(config.Resolve(dataDir, path))
		if err != nil {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: %v", a, err))
			continue
		}
		out = append(out, trust.Entry{Role: role, Cert: c})
	}
	return out, problems
}

// Successor is whether phones that installed an old trust file accept a
// new one: a phone accepts a new file only when one of the old file's SAST
// certificates signed it.
type Successor struct {
	// NotTrustFile is why the old bytes are not a trust file (nil if they
	// are); such a file binds no phone, but replacing it is the caller's
	// call.
	NotTrustFile error
	// Accepted: the new signer is one of the old file's SAST certificates.
	Accepted bool
	// SAST are the subjects of the old file's SAST records, for the
	// message when it is not accepted.
	SAST []string
}

// CheckSuccessor applies the successor rule to the old file's bytes and
// the certificate that signs the new file.
func CheckSuccessor(old []byte, signer *x509.Certificate) Successor {
	f, err := trust.Parse(old)
	if err != nil {
		return Successor{NotTrustFile: err}
	}
	var s Successor
	for _, r := range f.Records {
		if r.Role != trust.RoleSAST {
			continue
		}
		if bytes.Equal(r.Certificate, signer.Raw) {
			return Successor{Accepted: true}
		}
		s.SAST = append(s.SAST, r.SubjectName)
	}
	return s
}

// CAPFListing is how a trust file lists one CAPF certificate.
type CAPFListing struct {
	Subject string   // the certificate's subject, in the file's text form
	SHA256  string   // of the certificate, upper-case hex
	Roles   []string // the roles the file lists it with; none: not in the file
	Listed  bool     // listed with the CAPF role, as phones need it
}

// Problem is what is wrong with the listing, "" when the certificate is
// listed with the CAPF role.
func (l CAPFListing) Problem() string {
	switch {
	case l.Listed:
		return ""
	case len(l.Roles) > 0:
		return fmt.Sprintf("the current CAPF certificate %s is listed only with role %s, not CAPF", l.Subject, strings.Join(l.Roles, ", "))
	default:
		return fmt.Sprintf("the current CAPF certificate %s (SHA-256 %s) is not in the file", l.Subject, l.SHA256)
	}
}

// CheckCAPF says how f lists the CAPF certificate capf: a phone accepts a
// CAPF session's certificate only when its trust file lists it with the
// CAPF role.
func CheckCAPF(f *trust.File, capf *x509.Certificate) CAPFListing {
	s := sha256.Sum256(capf.Raw)
	l := CAPFListing{Subject: NameOf(capf), SHA256: fmt.Sprintf("%X", s)}
	for _, r := range f.Records {
		if bytes.Equal(r.Certificate, capf.Raw) {
			l.Roles = append(l.Roles, r.Role.String())
			if r.Role == trust.RoleCAPF {
				l.Listed = true
			}
		}
	}
	return l
}

// NameOf returns the certificate's subject in the trust file's text form.
func NameOf(c *x509.Certificate) string {
	if s, err := trust.NameText(c.RawSubject); err == nil {
		return s
	}
	return c.Subject.String()
}

// SignerLabel names the identity of ks that s is: "primary SAST" or
// "backup SAST".
func SignerLabel(ks *trust.Keystore, s trust.Signing) string {
	if bytes.Equal(s.Cert.Raw, ks.Backup.Cert.Raw) {
		return "backup SAST"
	}
	return "primary SAST"
}
