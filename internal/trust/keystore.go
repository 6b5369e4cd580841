package trust

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/certserial"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

// The two SAST identities of a keystore.
const (
	Primary = "primary"
	Backup  = "backup"
)

// DefaultSASTValidity is the lifetime of a created SAST certificate: 20
// years, since replacing a SAST means re-signing every phone's trust file
// with the old one first.
const DefaultSASTValidity = 20 * 365 * 24 * time.Hour

// KeystoreOptions configures [OpenKeystore].
type KeystoreOptions struct {
	// Dir holds sast-primary.key|.pem and sast-backup.key|.pem; it is
	// created with mode 0700 on first use.
	Dir string
	// Validity of created certificates; zero means DefaultSASTValidity.
	Validity time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of serial numbers and subject suffixes; nil means
	// crypto/rand.Reader.
	Rand io.Reader
}

// Identity is one SAST signing identity. Key is nil when the private key
// is not in the data directory (exported and kept offline).
type Identity struct {
	Name     string // Primary or Backup
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertPath string
	KeyPath  string
}

// Signing returns the identity as a signer, or a NotFound error when its
// key is offline.
func (id Identity) Signing() (Signing, error) {
	if id.Key == nil {
		where := "the database"
		if id.KeyPath != "" {
			where = filepath.Dir(id.KeyPath)
		}
		return Signing{}, fault.NotFoundf("the %s SAST key is not in %s (exported and removed?): sign with --signer-key FILE", id.Name, where)
	}
	return Signing{Cert: id.Cert, Key: id.Key}, nil
}

// Keystore holds the primary and backup SAST identities. Every trust file
// lists both, so that losing one key does not force a factory reset of
// every phone.
type Keystore struct {
	Dir     string
	Primary Identity
	Backup  Identity
}

// Identities returns the primary and the backup.
func (k *Keystore) Identities() []Identity { return []Identity{k.Primary, k.Backup} }

// OpenKeystore loads the two SAST identities from o.Dir, creating both
// (RSA 2048, self-signed, keys 0600) when the directory holds none of
// their files; created reports that. It refuses to create anything when
// only some files exist, and a key that does not match its certificate is
// an error.
func OpenKeystore(o KeystoreOptions) (ks *Keystore, created bool, err error) {
	if o.Dir == "" {
		return nil, false, fault.Invalidf("SAST keystore directory not set")
	}
	if o.Validity == 0 {
		o.Validity = DefaultSASTValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	ks = &Keystore{Dir: o.Dir}
	found, err := anyFile(o.Dir)
	if err != nil {
		return nil, false, err
	}
	if !found {
		if err := create(o); err != nil {
			return nil, false, err
		}
		created = true
	}
	if ks.Primary, err = loadIdentity(o.Dir, Primary); err != nil {
		return nil, false, err
	}
	if ks.Backup, err = loadIdentity(o.Dir, Backup); err != nil {
		return nil, false, err
	}
	if bytes.Equal(ks.Primary.Cert.Raw, ks.Backup.Cert.Raw) {
		return nil, false, fault.Invalidf("SAST keystore %s: primary and backup are the same certificate", o.Dir)
	}
	return ks, created, nil
}

// create generates and writes both identities.
func create(o KeystoreOptions) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("SAST keystore: %w", err)
	}
	ids, err := generate(o)
	if err != nil {
		return err
	}
	for _, id := range ids {
		pk, err := x509.MarshalPKCS8PrivateKey(id.Key)
		if err != nil {
			return fmt.Errorf("SAST keystore: encode %s key: %w", id.Name, err)
		}
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Cert.Raw})
		if err := atomicfile.Write(filepath.Join(o.Dir, "sast-"+id.Name+".key"), keyPEM, 0o600, true); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(o.Dir, "sast-"+id.Name+".pem"), certPEM, 0o644, true); err != nil {
			return err
		}
	}
	return nil
}

// GenerateKeystore makes a new primary and backup SAST identity (RSA 2048,
// self-signed) in memory, as OpenKeystore does on first use, and writes
// nothing: for keys kept elsewhere than in files (see package keys).
// o.Dir is not used.
func GenerateKeystore(o KeystoreOptions) (*Keystore, error) {
	if o.Validity == 0 {
		o.Validity = DefaultSASTValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	ids, err := generate(o)
	if err != nil {
		return nil, err
	}
	return NewKeystore(o.Dir, ids[0], ids[1])
}

// NewKeystore assembles a keystore from two identities loaded elsewhere
// than from files (see package keys); where names where they are kept,
// for messages. A key, when present, must match its certificate.
func NewKeystore(where string, primary, backup Identity) (*Keystore, error) {
	primary.Name, backup.Name = Primary, Backup
	for _, id := range []Identity{primary, backup} {
		if id.Cert == nil {
			return nil, fault.Invalidf("SAST keystore %s: the %s certificate is missing", where, id.Name)
		}
		if id.Key != nil {
			if err := matches(id.Key, id.Cert); err != nil {
				return nil, fmt.Errorf("SAST keystore %s: %s: %w", where, id.Name, err)
			}
		}
	}
	if bytes.Equal(primary.Cert.Raw, backup.Cert.Raw) {
		return nil, fault.Invalidf("SAST keystore %s: primary and backup are the same certificate", where)
	}
	return &Keystore{Dir: where, Primary: primary, Backup: backup}, nil
}

// sastTemplate is the certificate of a SAST identity: self-signed, for
// signatures, named after the identity and a suffix shared by the pair.
func sastTemplate(name string, suffix []byte, o KeystoreOptions) (*x509.Certificate, error) {
	serial, err := certserial.New(o.Rand)
	if err != nil {
		return nil, err
	}
	now := o.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         fmt.Sprintf("CAPF SAST %s %s", name, hex.EncodeToString(suffix)),
			OrganizationalUnit: []string{"SAST"},
			Organization:       []string{"CAPF"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, nil
}

// NewSASTCertificate makes the self-signed SAST certificate of an
// identity named name (Primary or Backup) for a key kept elsewhere, a
// hardware token say: key signs it, as the keystore's own identities are
// made. The key must be RSA of at most 2048 bits, as phones require.
func NewSASTCertificate(name string, key crypto.Signer, o KeystoreOptions) (*x509.Certificate, error) {
	if name != Primary && name != Backup {
		return nil, fault.Invalidf("SAST identity %q: want %s or %s", name, Primary, Backup)
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fault.Invalidf("a SAST key must be RSA (phones verify trust files with RSA), not %T", key.Public())
	}
	if bits := pub.N.BitLen(); bits > 2048 {
		return nil, fault.Invalidf("the SAST key is RSA %d bits: phones accept at most 2048", bits)
	}
	if o.Validity == 0 {
		o.Validity = DefaultSASTValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	var suffix [4]byte
	if _, err := io.ReadFull(o.Rand, suffix[:]); err != nil {
		return nil, fmt.Errorf("SAST certificate: random: %w", err)
	}
	tmpl, err := sastTemplate(name, suffix[:], o)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(o.Rand, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("SAST certificate: sign: %w", err)
	}
	return x509.ParseCertificate(der)
}

// generate makes both identities in memory.
func generate(o KeystoreOptions) ([]Identity, error) {
	var suffix [4]byte
	if _, err := io.ReadFull(o.Rand, suffix[:]); err != nil {
		return nil, fmt.Errorf("SAST keystore: random: %w", err)
	}
	var ids []Identity
	for _, name := range []string{Primary, Backup} {
		key, err := rsa.GenerateKey(o.Rand, 2048)
		if err != nil {
			return nil, fmt.Errorf("SAST keystore: generate %s key: %w", name, err)
		}
		tmpl, err := sastTemplate(name, suffix[:], o)
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificate(o.Rand, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, fmt.Errorf("SAST keystore: create %s certificate: %w", name, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("SAST keystore: parse %s certificate: %w", name, err)
		}
		ids = append(ids, Identity{Name: name, Cert: cert, Key: key})
	}
	return ids, nil
}

// LoadKeystore loads the two SAST identities of dir like OpenKeystore,
// but never creates them: a directory with none of their files is a
// NotFound error.
func LoadKeystore(dir string) (*Keystore, error) {
	found, err := anyFile(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fault.NotFoundf("no SAST identities in %s", dir)
	}
	ks, _, err := OpenKeystore(KeystoreOptions{Dir: dir})
	return ks, err
}

// anyFile reports whether dir holds any file of the two identities.
func anyFile(dir string) (bool, error) {
	for _, name := range []string{Primary, Backup} {
		for _, ext := range []string{".key", ".pem"} {
			if _, err := os.Stat(filepath.Join(dir, "sast-"+name+ext)); err == nil {
				return true, nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("SAST keystore: %w", err)
			}
		}
	}
	return false, nil
}

// loadIdentity reads one identity; its certificate must exist, its key
// may be absent.
func loadIdentity(dir, name string) (Identity, error) {
	id := Identity{Name: name, CertPath: filepath.Join(dir, "sast-"+name+".pem"), KeyPath: filepath.Join(dir, "sast-"+name+".key")}
	b, err := os.ReadFile(id.CertPath)
	if errors.Is(err, fs.ErrNotExist) {
		return id, fault.NotFoundf("SAST keystore: %s is missing while other SAST files exist; restore it from a backup (a new identity would not be accepted by phones that trust the old one)", id.CertPath)
	}
	if err != nil {
		return id, fmt.Errorf("SAST keystore: %w", err)
	}
	certs, _, err := decodePEM(b, id.CertPath)
	if err != nil {
		return id, err
	}
	if len(certs) != 1 {
		return id, fault.Invalidf("%s: want one certificate, found %d", id.CertPath, len(certs))
	}
	id.Cert = certs[0]
	b, err = os.ReadFile(id.KeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("SAST keystore: %w", err)
	}
	_, key, err := decodePEM(b, id.KeyPath)
	if err != nil {
		return id, err
	}
	if key == nil {
		return id, fault.Invalidf("%s: no private key in it", id.KeyPath)
	}
	if err := matches(key, id.Cert); err != nil {
		return id, fmt.Errorf("%s: %w", id.KeyPath, err)
	}
	id.Key = key
	return id, nil
}

// matches checks that key is the private key of cert.
func matches(key crypto.Signer, cert *x509.Certificate) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return fault.Invalidf("the private key does not match the certificate %s", cert.Subject)
	}
	return nil
}

// decodePEM reads the certificates and the (at most one) private key of a
// PEM file. Anything that is not PEM is an Invalid error naming the file.
func decodePEM(b []byte, name string) ([]*x509.Certificate, crypto.Signer, error) {
	var certs []*x509.Certificate
	var key crypto.Signer
	rest := b
	blocks := 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		blocks++
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, fault.Invalidf("%s: certificate %d: %v", name, len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY":
			if key != nil {
				return nil, nil, fault.Invalidf("%s: more than one private key", name)
			}
			k, err := keyref.ParseBlock(blk)
			if err != nil {
				return nil, nil, fault.Invalidf("%s: private key: %v", name, err)
			}
			key = k
		default:
			return nil, nil, fault.Invalidf("%s: unexpected PEM block %q", name, blk.Type)
		}
	}
	if blocks == 0 {
		return nil, nil, fault.Invalidf("%s: not a PEM file (no -----BEGIN block)", name)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, fault.Invalidf("%s: data after the last PEM block", name)
	}
	return certs, key, nil
}

// ReadCertificate reads one certificate from a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fault.NotFoundf("%s: no such file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	certs, key, err := decodePEM(b, path)
	if err != nil {
		return nil, err
	}
	if key != nil {
		return nil, fault.Invalidf("%s holds a private key: give the certificate alone", path)
	}
	if len(certs) != 1 {
		return nil, fault.Invalidf("%s: want one certificate, found %d", path, len(certs))
	}
	return certs[0], nil
}

// ReadSigning reads a signing identity from one PEM file holding a private
// key and its certificate, as written by [Keystore.ExportBackup].
func ReadSigning(path string) (Signing, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Signing{}, fault.NotFoundf("%s: no such file", path)
	}
	if err != nil {
		return Signing{}, fmt.Errorf("read %s: %w", path, err)
	}
	certs, key, err := decodePEM(b, path)
	if err != nil {
		return Signing{}, err
	}
	if key == nil || len(certs) != 1 {
		return Signing{}, fault.Invalidf("%s: want one private key and one certificate, found %d key(s) and %d certificate(s)", path, btoi(key != nil), len(certs))
	}
	if err := matches(key, certs[0]); err != nil {
		return Signing{}, fmt.Errorf("%s: %w", path, err)
	}
	return Signing{Cert: certs[0], Key: key}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ExportBackup writes the backup key and certificate to path (one PEM
// file, mode 0600; an existing file is not replaced). With remove, it then
// deletes the backup key from the data directory so that it lives only
// offline; the certificate stays, since every file must still list it.
func (k *Keystore) ExportBackup(path string, remove bool) error {
	id := k.Backup
	if id.Key == nil {
		return fault.NotFoundf("the backup SAST key is not in %s: it was exported and removed already", k.Dir)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return fmt.Errorf("export backup: %w", err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Cert.Raw})...)
	if err := atomicfile.Write(path, data, 0o600, true); err != nil {
		return err
	}
	if !remove {
		return nil
	}
	// Read the export back before the only other copy goes.
	s, err := ReadSigning(path)
	if err != nil || !bytes.Equal(s.Cert.Raw, id.Cert.Raw) {
		return fmt.Errorf("export backup: %s does not read back; the key was not removed: %v", path, err)
	}
	if err := os.Remove(id.KeyPath); err != nil {
		return fmt.Errorf("export backup: remove %s: %w", id.KeyPath, err)
	}
	k.Backup.Key = nil
	return nil
}
