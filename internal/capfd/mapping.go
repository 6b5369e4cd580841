package capfd

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/safetext"
)

// Options is what Map checks the rows against.
type Options struct {
	// CAPF is the capfd CAPF certificate (its --capf file): an LSC it
	// signed is carried over.
	CAPF *x509.Certificate
	// Issuers are further CAs whose LSCs are carried over (capfd's
	// --issuer file).
	Issuers []*x509.Certificate
	// Now is the time an LSC's expiry is judged at.
	Now time.Time
}

// Skipped is a row Map could not carry over, and why.
type Skipped struct {
	N      int    // the row's position, as in Row.N
	Name   string // the device name as stored, made safe to print
	Reason string
}

// Note is something about a row that was carried over that the
// administrator should know.
type Note struct {
	N    int
	Name string
	Text string
}

// Plan is what Map makes of capfd's rows: the import rows for
// [device.Service.Import], and what it could not or only partly carry
// over.
type Plan struct {
	Rows    []device.ImportRow
	Skipped []Skipped
	Notes   []Note
	// Counts of the rows carried over, by what they became.
	Operations map[device.Operation]int
	AuthModes  map[device.AuthMode]int
	LSCs       int // rows carried over with their LSC
}

// Map turns capfd's rows into device import rows, one per row it can
// carry over whole, with every value checked the way the CSV import checks
// it (device names, authentication strings and key specs by the device
// package's own parsers). A row with any value it cannot carry over is
// skipped whole and listed with the reason, so that nothing is half
// imported:
//   - device_name: a name the device package refuses, or one that
//     another row already gave (names are upper-cased);
//   - operation: install → install, fetch → troubleshoot (CAPF's
//     certificate fetch), delete → delete, none or empty → none; anything
//     else is unknown;
//   - authentication: password → By Authentication String (the password,
//     4 to 10 digits, is the string), certificate → By Existing
//     Certificate (Precedence LSC), "no password" or empty → By Null
//     String;
//   - curve_name secp256r1, secp384r1, secp521r1 → ec256, ec384, ec521;
//     else key_size 512 to 4096 → rsa512 … rsa4096; neither → the
//     default key;
//   - certificate: PEM of one X.509 certificate signed by opts.CAPF or one
//     of opts.Issuers; serial_number, when given (hexadecimal, with or
//     without colons, or decimal), must be the certificate's.
//
// Map keeps a row and adds a note when not_valid_before or
// not_valid_after disagree with the certificate (the certificate's own
// dates are kept), when the LSC has expired or does not name the device
// (a phone cannot authenticate with it), and when a password row has no
// password while an operation is pending (a new string is generated).
func Map(rows []Row, o Options) Plan {
	p := Plan{Operations: map[device.Operation]int{}, AuthModes: map[device.AuthMode]int{}}
	seen := map[string]int{}
	for _, r := range rows {
		var notes []string
		ir, err := mapRow(r, o, &notes)
		if err == "" {
			if prev, dup := seen[ir.Device.Name]; dup {
				err = fmt.Sprintf("device %s is also row %d", ir.Device.Name, prev)
			}
		}
		if err != "" {
			p.Skipped = append(p.Skipped, Skipped{N: r.N, Name: r.Name(), Reason: err})
			continue
		}
		seen[ir.Device.Name] = r.N
		for _, n := range notes {
			p.Notes = append(p.Notes, Note{N: r.N, Name: ir.Device.Name, Text: n})
		}
		p.Rows = append(p.Rows, ir)
		p.Operations[ir.Device.Operation]++
		mode := ir.Device.AuthMode
		if !ir.Given.AuthMode {
			mode = device.AuthNull
		}
		p.AuthModes[mode]++
		if ir.LSC != nil {
			p.LSCs++
		}
	}
	return p
}

// mapRow maps one row; a non-empty string is why it cannot be.
func mapRow(r Row, o Options, notes *[]string) (device.ImportRow, string) {
	ir := device.ImportRow{Line: r.N, MustCreate: true}
	d := &ir.Device
	name, err := device.NormalizeName(r.DeviceName)
	if err != nil {
		return ir, "device_name: " + err.Error()
	}
	d.Name = name

	switch v := norm(r.Operation); v {
	case "install":
		d.Operation = device.OpInstall
	case "fetch":
		d.Operation = device.OpTroubleshoot
	case "delete":
		d.Operation = device.OpDelete
	case "none", "":
		d.Operation = device.OpNone
	default:
		return ir, fmt.Sprintf("operation %q is unknown: want install, fetch, delete or none", safetext.Bound(r.Operation, 32))
	}
	ir.Given.Operation = true

	switch norm(r.Authentication) {
	case "password":
		d.AuthMode, ir.Given.AuthMode = device.AuthString, true
		pw := strings.TrimSpace(r.Password)
		switch {
		case pw != "":
			if err := device.ValidateAuthString(pw); err != nil {
				return ir, "password: must be 4 to 10 digits, as a phone's keypad enters it"
			}
			d.AuthString, ir.Given.AuthString = pw, true
		case d.Operation != device.OpNone:
			*notes = append(*notes, "authentication is password but there is no password: a new authentication string is generated (capf device show)")
		}
	case "certificate":
		d.AuthMode, ir.Given.AuthMode = device.AuthLSC, true
	case "no password", "":
		d.AuthMode, ir.Given.AuthMode = device.AuthNull, true
	default:
		return ir, fmt.Sprintf("authentication %q is unknown: want password, certificate or no password", safetext.Bound(r.Authentication, 32))
	}
	if d.AuthMode != device.AuthString && strings.TrimSpace(r.Password) != "" {
		*notes = append(*notes, "a password is stored but authentication is not password: the password is not carried over")
	}

	switch curve, size := norm(r.CurveName), strings.TrimSpace(r.KeySize); {
	case curve != "":
		switch curve {
		case "secp256r1", "prime256v1":
			d.Key = device.EC256
		case "secp384r1":
			d.Key = device.EC384
		case "secp521r1":
			d.Key = device.EC521
		default:
			return ir, fmt.Sprintf("curve_name %q is unknown: want secp256r1, secp384r1 or secp521r1", safetext.Bound(r.CurveName, 32))
		}
		ir.Given.Key = true
	case size != "":
		k, err := device.ParseKeySpec("rsa" + size)
		if err != nil {
			return ir, fmt.Sprintf("key_size %q: want 512, 1024, 2048, 3072 or 4096 (bits of an RSA key)", safetext.Bound(size, 32))
		}
		d.Key, ir.Given.Key = k, true
	}

	if strings.TrimSpace(r.Certificate) == "" {
		if strings.TrimSpace(r.SerialNumber) != "" {
			*notes = append(*notes, "serial_number is set but there is no certificate: nothing to carry over")
		}
		return ir, ""
	}
	cert, why := parseLSC(r, o)
	if why != "" {
		return ir, why
	}
	if !strings.EqualFold(cert.Subject.CommonName, name) {
		*notes = append(*notes, fmt.Sprintf("the LSC's subject CN %q does not name the device: the phone cannot authenticate with it", safetext.Bound(cert.Subject.CommonName, 64)))
	}
	if o.Now.After(cert.NotAfter) {
		*notes = append(*notes, "the LSC expired on "+cert.NotAfter.UTC().Format(time.RFC3339)+": carried over, shown as expired")
	}
	for _, c := range []struct {
		col, v string
		want   time.Time
	}{
		{"not_valid_before", r.NotValidBefore, cert.NotBefore},
		{"not_valid_after", r.NotValidAfter, cert.NotAfter},
	} {
		if strings.TrimSpace(c.v) == "" {
			continue
		}
		t, ok := parseTime(c.v)
		switch {
		case !ok:
			*notes = append(*notes, fmt.Sprintf("%s %q is not a time: the certificate's own date is kept", c.col, safetext.Bound(c.v, 40)))
		case t.Sub(c.want).Abs() > time.Second:
			*notes = append(*notes, fmt.Sprintf("%s %s differs from the certificate's %s: the certificate's is kept", c.col,
				t.UTC().Format(time.RFC3339), c.want.UTC().Format(time.RFC3339)))
		}
	}
	ir.LSC = &device.Certificate{
		Serial: fmt.Sprintf("%X", cert.SerialNumber.Bytes()), Issuer: cert.Issuer.String(),
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), DER: cert.Raw,
	}
	return ir, ""
}

// parseLSC parses the row's certificate and checks its issuer and serial.
func parseLSC(r Row, o Options) (*x509.Certificate, string) {
	data := []byte(r.Certificate)
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return nil, "certificate: no PEM certificate in the column"
	}
	if rest, _ := pem.Decode(data); rest != nil && rest.Type == "CERTIFICATE" {
		return nil, "certificate: the column holds more than one certificate"
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "certificate does not parse: " + safetext.Bound(err.Error(), 120)
	}
	if !signedBy(cert, o) {
		return nil, fmt.Sprintf("certificate (issuer %q) was not signed by the CAPF certificate (or an --issuer): a phone could not authenticate with it", safetext.Bound(cert.Issuer.String(), 120))
	}
	if s := strings.TrimSpace(r.SerialNumber); s != "" {
		if !serialMatches(s, cert.SerialNumber) {
			return nil, fmt.Sprintf("serial_number %q does not match the certificate's serial %X", safetext.Bound(s, 80), cert.SerialNumber.Bytes())
		}
	}
	return cert, ""
}

// signedBy reports whether cert's signature verifies under the CAPF
// certificate or one of the issuers (whose names must match too).
func signedBy(cert *x509.Certificate, o Options) bool {
	for _, ca := range append([]*x509.Certificate{o.CAPF}, o.Issuers...) {
		if ca == nil || !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
			continue
		}
		if err := cert.CheckSignatureFrom(ca); err == nil {
			return true
		}
		// CheckSignatureFrom wants a CA certificate with certSign where
		// there is a key usage; capfd's self-made CAs may lack both,
		// so check the signature alone.
		if err := ca.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err == nil {
			return true
		}
	}
	return false
}

// serialMatches reports whether s is the serial n as capfd may have
// written it: decimal (Python's str of the integer), or hexadecimal with
// an optional 0x and optional colons, in either case. Digits alone are
// read both ways.
func serialMatches(s string, n *big.Int) bool {
	s = strings.TrimSpace(s)
	if d, ok := new(big.Int).SetString(s, 10); ok && d.Cmp(n) == 0 {
		return true
	}
	h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), ":", "")
	x, ok := new(big.Int).SetString(h, 16)
	return ok && x.Cmp(n) == 0
}

// parseTime reads a time as Python's str or isoformat of a datetime, or
// RFC 3339; a time without a zone is UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
