package server

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TraceDir writes the certificates Troubleshoot retrieves to trace files,
// one per device and certificate type (DEVICE-LSC.pem, DEVICE-MIC.pem), as
// CallManager writes one CAPF trace file per certificate type. A newer
// retrieval replaces the file.
type TraceDir struct {
	Dir string
	Now func() time.Time
}

// WriteTrace writes cert with a readable header and returns the path.
func (t TraceDir) WriteTrace(deviceName, kind string, cert *x509.Certificate) (string, error) {
	if err := os.MkdirAll(t.Dir, 0o750); err != nil {
		return "", fmt.Errorf("trace dir: %w", err)
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, deviceName)
	path := filepath.Join(t.Dir, safe+"-"+kind+".pem")
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# CAPF troubleshoot trace: %s certificate of %s\n", kind, deviceName)
	fmt.Fprintf(&b, "# retrieved: %s\n", now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# subject:   %s\n# issuer:    %s\n# serial:    %X\n", cert.Subject, cert.Issuer, cert.SerialNumber)
	fmt.Fprintf(&b, "# valid:     %s to %s\n", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o640); err != nil {
		return "", fmt.Errorf("write trace: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write trace: %w", err)
	}
	return path, nil
}
