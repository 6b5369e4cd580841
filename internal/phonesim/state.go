package phonesim

import (
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files of the state directory.
const (
	FileLSC        = "lsc.pem"         // the LSC certificate
	FileLSCKey     = "lsc-key.pem"     // the LSC private key
	FileMIC        = "mic.pem"         // the MIC certificate
	FileMICKey     = "mic-key.pem"     // the MIC private key
	FileSUDI       = "sudi.pem"        // the SUDI certificate
	FileSUDIKey    = "sudi-key.pem"    // the SUDI private key
	FilePendingKey = "pending-key.pem" // the key pair generated for an enrolment in progress
)

// LoadLSC returns the LSC saved in a state directory, or nil and no error if
// there is none.
func LoadLSC(stateDir string) (*Credential, error) {
	return loadCredential(stateDir, FileLSC, FileLSCKey)
}

// state is the phone's flash: its credentials and the pending key, kept in
// memory and, when dir is set, in PEM files written atomically.
type state struct {
	dir     string
	lsc     *Credential
	mic     *Credential
	sudi    *Credential
	pending crypto.Signer
}

// openState loads the state directory (creating it), then saves the
// credentials the options provide over what it held.
func openState(c *config) (*state, error) {
	s := &state{dir: c.StateDir}
	if s.dir != "" {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		var err error
		if s.lsc, err = loadCredential(s.dir, FileLSC, FileLSCKey); err != nil {
			return nil, err
		}
		if s.mic, err = loadCredential(s.dir, FileMIC, FileMICKey); err != nil {
			return nil, err
		}
		if s.sudi, err = loadCredential(s.dir, FileSUDI, FileSUDIKey); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(filepath.Join(s.dir, FilePendingKey))
		switch {
		case err == nil:
			if s.pending, err = parseKeyPEM(data); err != nil {
				return nil, fmt.Errorf("%s: %w", FilePendingKey, err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if c.LSC != nil {
		if err := s.setLSC(c.LSC); err != nil {
			return nil, err
		}
	}
	if c.MIC != nil {
		s.mic = c.MIC
		if err := s.save(FileMIC, FileMICKey, c.MIC); err != nil {
			return nil, err
		}
	}
	if c.SUDI != nil {
		s.sudi = c.SUDI
		if err := s.save(FileSUDI, FileSUDIKey, c.SUDI); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// setLSC installs an LSC, replacing any earlier one, and forgets the pending
// key it was issued for.
func (s *state) setLSC(c *Credential) error {
	if err := s.save(FileLSC, FileLSCKey, c); err != nil {
		return err
	}
	s.lsc = c
	if s.pending != nil && samePublicKey(s.pending.Public(), c.Key.Public()) {
		return s.setPending(nil)
	}
	return nil
}

// deleteLSC removes the LSC and reports whether there was one.
func (s *state) deleteLSC() (bool, error) {
	had := s.lsc != nil
	s.lsc = nil
	if s.dir == "" {
		return had, nil
	}
	for _, f := range []string{FileLSC, FileLSCKey} {
		err := os.Remove(filepath.Join(s.dir, f))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return had, err
		}
	}
	return had, nil
}

// setPending keeps k as the key pair being enrolled; nil clears it.
func (s *state) setPending(k crypto.Signer) error {
	s.pending = k
	if s.dir == "" {
		return nil
	}
	path := filepath.Join(s.dir, FilePendingKey)
	if k == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := marshalKey(k)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// save writes a credential as a certificate file and a key file. The key is
// written first, so a crash between the two leaves the old certificate with
// a key that does not match, which loading reports, rather than a
// certificate without a key.
func (s *state) save(certFile, keyFile string, c *Credential) error {
	if s.dir == "" {
		return nil
	}
	key, err := marshalKey(c.Key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, keyFile), key); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate.Raw}))
}

// loadCredential reads a certificate file and a key file from dir; nil and
// no error when the certificate file does not exist.
func loadCredential(dir, certFile, keyFile string) (*Credential, error) {
	cert, err := os.ReadFile(filepath.Join(dir, certFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("%s without its key: %w", certFile, err)
	}
	c, err := ParseCredential(append(cert, key...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, certFile), err)
	}
	return c, nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key block")
		}
		if b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY" {
			return parsePrivateKey(b.Bytes)
		}
	}
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
