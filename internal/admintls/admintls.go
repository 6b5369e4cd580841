// Package admintls provides the TLS certificate of the HTTPS administration
// listener: either the administrator's own files, or, by default, a server
// certificate from a small admin CA of its own kept in the data directory
// (admin-tls/ca.pem, ca-key.pem, server.pem, server-key.pem). The CA is
// what an administrator's browser trusts once; the server certificate is
// re-issued from it when it nears its end or the host's names change.
//
// The CA is name-constrained (RFC 5280 4.2.1.10, critical): it may only
// issue for the DNS names (and their subdomains) and the IP addresses the
// server certificate had when the CA was made, "localhost" and the
// loopback addresses among them, and only for server authentication. A
// stolen CA key therefore cannot impersonate other sites to a browser that
// trusts the CA. When the server certificate needs a name the constraints
// do not cover (the host was renamed, admin_listen changed), or the CA
// predates the constraints, the CA is replaced by a new one, its old key
// deleted, and LoadOrCreate says why (Result.CAReplaced): the
// administrators must trust the new ca.pem.
package admintls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/certserial"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

// DirName is the admin TLS directory's name inside the data directory.
const DirName = "admin-tls"

// The files of the admin TLS directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// The validity of the certificates, and how long before its end the server
// certificate is re-issued. 825 days is what browsers accept of a server
// certificate.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 825 * 24 * time.Hour
	RenewBefore    = 30 * 24 * time.Hour
)

// Dir returns the admin TLS directory of a data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, DirName) }

// Result is the certificate of the admin listener.
type Result struct {
	Certificate tls.Certificate   // for tls.Config.Certificates; Leaf is set
	CA          *x509.Certificate // the admin CA that signed it; nil for the administrator's files
	Issued      bool              // the server certificate was issued now
	CACreated   bool              // the admin CA was created now (for the first time, or replacing another)
	// CAReplaced says why an existing admin CA was replaced by a new one
	// (CACreated is then true); empty when it was not. Browsers that
	// trusted the old CA must be given the new ca.pem.
	CAReplaced string
}

// LoadOrCreate returns the server certificate in dir (the admin TLS
// directory, see Dir), creating dir, the admin CA and the certificate as
// needed. The certificate names the host (os.Hostname), "localhost",
// 127.0.0.1, ::1 and hosts (names or IP addresses; empty entries and
// wildcard addresses are skipped); it is re-issued when it ends within
// RenewBefore of now, its names differ, or the CA did not sign it. Keys are
// written with mode 0600.
func LoadOrCreate(dir string, hosts []string, now time.Time) (Result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("admin TLS directory: %w", err)
	}
	host, _ := os.Hostname()
	dns, ips := names(host, hosts)
	caCert, caKey, created, replaced, err := loadOrCreateCA(dir, host, dns, ips, now)
	if err != nil {
		return Result{}, err
	}
	res := Result{CA: caCert, CACreated: created, CAReplaced: replaced}
	if cert, err := loadServer(dir); err == nil && current(cert, caCert, dns, ips, now) {
		res.Certificate = cert
		return res, nil
	}
	cert, err := issueServer(dir, caCert, caKey, host, dns, ips, now)
	if err != nil {
		return Result{}, err
	}
	res.Certificate, res.Issued = cert, true
	return res, nil
}

// LoadFiles returns the administrator's certificate (PEM, the chain after
// the leaf) and key, refusing a certificate that has expired.
func LoadFiles(certFile, keyFile string, now time.Time) (Result, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Result{}, fault.Invalidf("admin certificate %s / key %s: %v", certFile, keyFile, err)
	}
	if now.After(cert.Leaf.NotAfter) {
		return Result{}, fault.Invalidf("admin certificate %s expired on %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return Result{Certificate: cert}, nil
}

// names returns the DNS names and IP addresses the server certificate is
// for, sorted and without repeats.
func names(host string, hosts []string) ([]string, []net.IP) {
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, h := range append([]string{host}, hosts...) {
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				if v4 := ip.To4(); v4 != nil {
					ip = v4
				}
				ips = append(ips, ip)
			}
			continue
		}
		dns = append(dns, strings.ToLower(h))
	}
	slices.Sort(dns)
	dns = slices.Compact(dns)
	slices.SortFunc(ips, func(a, b net.IP) int { return bytes.Compare(a, b) })
	ips = slices.CompactFunc(ips, func(a, b net.IP) bool { return a.Equal(b) })
	return dns, ips
}

// current reports whether cert is the one to keep: signed by ca, for
// exactly these names, and not ending within RenewBefore.
func current(cert tls.Certificate, ca *x509.Certificate, dns []string, ips []net.IP, now time.Time) bool {
	leaf := cert.Leaf
	if leaf == nil || leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	if now.Before(leaf.NotBefore) || now.Add(RenewBefore).After(leaf.NotAfter) {
		return false
	}
	gotDNS, gotIPs := names("", append(append([]string{}, leaf.DNSNames...), ipStrings(leaf.IPAddresses)...))
	wantIPs := make([]string, len(ips))
	for i, ip := range ips {
		wantIPs[i] = ip.String()
	}
	return slices.Equal(gotDNS, dns) && slices.Equal(ipStrings(gotIPs), wantIPs)
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

// loadOrCreateCA loads the admin CA of dir, or creates it when neither of
// its files exists, or replaces it when its name constraints do not cover
// dns and ips (replaced says why).
func loadOrCreateCA(dir, host string, dns []string, ips []net.IP, now time.Time) (cert *x509.Certificate, key crypto.Signer, created bool, replaced string, err error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		cert, key, err := loadPair(certPath, keyPath)
		if err != nil {
			return nil, nil, false, "", fmt.Errorf("admin CA: %w", err)
		}
		if !cert.IsCA {
			return nil, nil, false, "", fault.Invalidf("admin CA %s is not a CA certificate", certPath)
		}
		replaced = uncovered(cert, dns, ips)
		if replaced == "" {
			return cert, key, false, "", nil
		}
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
	default:
		return nil, nil, false, "", fault.Invalidf("admin CA in %s: need both %s and %s, or neither (to create a new CA)", dir, CAFile, CAKeyFile)
	}
	cert, key, err = createCA(certPath, keyPath, host, dns, ips, now)
	if err != nil {
		return nil, nil, false, "", err
	}
	return cert, key, true, replaced, nil
}

// uncovered returns why ca may not issue the server certificate for dns
// and ips: it has no critical name constraints (an older version made it),
// or a name lies outside them; "" when it may.
func uncovered(ca *x509.Certificate, dns []string, ips []net.IP) string {
	if !ca.PermittedDNSDomainsCritical || (len(ca.PermittedDNSDomains) == 0 && len(ca.PermittedIPRanges) == 0) {
		return "it has no name constraints (made by an older version of capf)"
	}
	for _, d := range dns {
		if !slices.ContainsFunc(ca.PermittedDNSDomains, func(c string) bool { return dnsWithin(d, c) }) {
			return fmt.Sprintf("its name constraints do not cover %s", d)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(ca.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) }) {
			return fmt.Sprintf("its name constraints do not cover %s", ip)
		}
	}
	return ""
}

// dnsWithin reports whether name is within the permitted subtree c: c
// itself or a subdomain of it (RFC 5280 4.2.1.10), ignoring case.
func dnsWithin(name, c string) bool {
	name, c = strings.ToLower(name), strings.ToLower(strings.TrimPrefix(c, "."))
	return name == c || strings.HasSuffix(name, "."+c)
}

// constraints returns the permitted subtrees of a CA for dns and ips: each
// name, and each address alone (a /32 or /128).
func constraints(dns []string, ips []net.IP) ([]string, []*net.IPNet) {
	nets := make([]*net.IPNet, len(ips))
	for i, ip := range ips {
		bits := 8 * len(ip)
		nets[i] = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
	}
	return slices.Clone(dns), nets
}

// createCA makes a new admin CA, constrained to dns and ips, and writes it
// over any previous one (the key first: the old key is gone once this
// returns).
func createCA(certPath, keyPath, host string, dns []string, ips []net.IP, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	cert, key, err := newCA(host, dns, ips, now)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certPath, keyPath, cert.Raw, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// newCA makes a new admin CA in memory.
func newCA(host string, dns []string, ips []net.IP, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("admin CA key: %w", err)
	}
	serial, err := certserial.New(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	permDNS, permIPs := constraints(dns, ips)
	cn := "CAPF admin CA"
	if host != "" {
		cn += " " + host
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"CAPF"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
		// Only TLS servers, only these names.
		ExtKeyUsage:                 []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permDNS,
		PermittedIPRanges:           permIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("admin CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("admin CA certificate: %w", err)
	}
	return cert, key, nil
}

// NewCA makes a new admin CA in memory, as LoadOrCreate does on first
// start, constrained to this host's names, "localhost", the loopback
// addresses and hosts; it writes nothing. For an admin CA kept elsewhere
// than in files (see package keys), which several nodes share: hosts
// should then name every node.
func NewCA(hosts []string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	host, _ := os.Hostname()
	dns, ips := names(host, hosts)
	return newCA(host, dns, ips, now)
}

// LoadCA reads the admin CA of dir (see Dir) without creating anything: a
// directory with neither of its files is a NotFound error.
func LoadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, fault.NotFoundf("no admin CA in %s", dir)
	case certErr != nil || keyErr != nil:
		return nil, nil, fault.Invalidf("admin CA in %s: need both %s and %s", dir, CAFile, CAKeyFile)
	}
	cert, key, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("admin CA: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, fault.Invalidf("admin CA %s is not a CA certificate", certPath)
	}
	return cert, key, nil
}

// IssueFrom is LoadOrCreate with an admin CA given rather than kept in
// dir (the cluster's, from the database): it returns the server
// certificate in dir, issuing it from ca when needed, and writes ca.pem
// there for the administrators' browsers. It never replaces the CA: names
// of this node that its constraints do not cover are an error that says
// which.
func IssueFrom(dir string, ca *x509.Certificate, caKey crypto.Signer, hosts []string, now time.Time) (Result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("admin TLS directory: %w", err)
	}
	host, _ := os.Hostname()
	dns, ips := names(host, hosts)
	if why := uncovered(ca, dns, ips); why != "" {
		return Result{}, fault.Invalidf("the cluster's admin CA %q cannot issue this node's admin certificate: %s (give every node's names to capf cluster init --admin-host, or this node --admin-cert/--admin-key)", ca.Subject.CommonName, why)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if old, err := os.ReadFile(filepath.Join(dir, CAFile)); err != nil || !bytes.Equal(old, caPEM) {
		// A stale ca-key.pem of the node's own CA must not outlive it.
		if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Result{}, fmt.Errorf("admin TLS directory: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(dir, CAFile), caPEM, 0o644, false); err != nil {
			return Result{}, err
		}
	}
	res := Result{CA: ca}
	if cert, err := loadServer(dir); err == nil && current(cert, ca, dns, ips, now) {
		res.Certificate = cert
		return res, nil
	}
	cert, err := issueServer(dir, ca, caKey, host, dns, ips, now)
	if err != nil {
		return Result{}, err
	}
	res.Certificate, res.Issued = cert, true
	return res, nil
}

// issueServer issues and writes a new server certificate.
func issueServer(dir string, ca *x509.Certificate, caKey crypto.Signer, host string, dns []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin server key: %w", err)
	}
	serial, err := certserial.New(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	cn := host
	if cn == "" {
		cn = "localhost"
	}
	notAfter := now.Add(ServerValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"CAPF"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
		SubjectKeyId: keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin server certificate: %w", err)
	}
	if err := writePair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile), der, key); err != nil {
		return tls.Certificate{}, err
	}
	return loadServer(dir)
}

// loadServer loads the server certificate and key of dir.
func loadServer(dir string) (tls.Certificate, error) {
	return tls.LoadX509KeyPair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
}

// loadPair reads a PEM certificate and its private key, a PEM file that
// only its owner may read (see keyref.ReadKeyFile).
func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fault.Invalidf("%s / %s: %v", certPath, keyPath, err)
	}
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, nil, fault.Invalidf("%s / %s: no PEM certificate in %s", certPath, keyPath, certPath)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
			return nil, nil, fault.Invalidf("%s / %s: %v", certPath, keyPath, err)
		}
	}
	signer, err := keyref.ReadKeyFile(keyPath)
	if err != nil {
		return nil, nil, fault.Invalidf("%v", err)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fault.Invalidf("%s / %s: the private key does not match the certificate", certPath, keyPath)
	}
	return cert, signer, nil
}

// writePair writes a certificate (0644) and its key (0600), key first.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode %s: %w", keyPath, err)
	}
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600, false); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, false)
}

// keyID is the SHA-1 of the public key's encoding (RFC 5280, 4.2.1.2).
func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(b)
	return sum[:]
}
