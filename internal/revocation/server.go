package revocation

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

// DefaultPoll is how often a server looks for a newer CRL in the database.
const DefaultPoll = 10 * time.Second

// ServerOptions configure a [Server].
type ServerOptions struct {
	Store Store
	// Issuers are the CAs served; the first is the active CA, whose CRL
	// /crl serves.
	Issuers []Issuer
	// IssuersNow, when set, gives the CAs served (the active one first)
	// at each use instead of Issuers: a CA set that changes while the
	// node runs.
	IssuersNow func() []Issuer
	// Dir, when set, receives each CA's latest CRL as ID.crl (DER) and
	// ID.pem, rewritten atomically when a newer one appears.
	Dir string
	// Poll is how often Run looks for newer CRLs; DefaultPoll when zero.
	Poll time.Duration
	// OCSPValidity is nextUpdate - thisUpdate of an OCSP response;
	// DefaultOCSPValidity when zero.
	OCSPValidity time.Duration
	Now          func() time.Time // time.Now when nil
	Logger       *slog.Logger     // slog.Default() when nil
}

// Server serves the CRLs and answers OCSP requests on one node.
type Server struct {
	o       ServerOptions
	refresh chan struct{}

	mu   sync.RWMutex
	crls map[string]lsc.CRL // by key id
}

// NewServer returns a server for o; Run keeps its CRLs current.
func NewServer(o ServerOptions) *Server {
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.OCSPValidity <= 0 {
		o.OCSPValidity = DefaultOCSPValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{o: o, refresh: make(chan struct{}, 1), crls: map[string]lsc.CRL{}}
}

// Refresh asks Run to look for newer CRLs at once. It never blocks.
func (s *Server) Refresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// Run loads the CRLs now, then whenever refreshed and every Poll, until
// ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		if err := s.Load(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("load CRLs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.refresh:
		case <-t.C:
		}
	}
}

// issuers returns the CAs served now, the active one first.
func (s *Server) issuers() []Issuer {
	if s.o.IssuersNow != nil {
		return s.o.IssuersNow()
	}
	return s.o.Issuers
}

// Load fetches each CA's latest CRL from the database and, for one newer
// than the server holds, serves it from now on and writes it to Dir.
func (s *Server) Load(ctx context.Context) error {
	var errs []error
	for _, iss := range s.issuers() {
		kid := iss.KeyID()
		c, err := s.o.Store.GetCRL(ctx, kid)
		if fault.KindOf(err) == fault.NotFound {
			continue // not published yet
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.RLock()
		held := s.crls[kid]
		s.mu.RUnlock()
		if c.Number <= held.Number {
			continue
		}
		if s.o.Dir != "" {
			if err := writeFiles(s.o.Dir, c); err != nil {
				errs = append(errs, err)
			}
		}
		s.mu.Lock()
		if c.Number > s.crls[kid].Number {
			s.crls[kid] = c
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// writeFiles writes c as ID.crl and ID.pem in dir.
func writeFiles(dir string, c lsc.CRL) error {
	base := filepath.Join(dir, c.IssuerKeyID)
	if err := atomicfile.Write(base+".crl", c.DER, 0o644, false); err != nil {
		return fmt.Errorf("write CRL: %w", err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.DER})
	if err := atomicfile.Write(base+".pem", p, 0o644, false); err != nil {
		return fmt.Errorf("write CRL: %w", err)
	}
	return nil
}

// crl returns the CRL held for key id kid.
func (s *Server) crl(kid string) (lsc.CRL, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.crls[kid]
	return c, ok
}

// Paths of the handler.
const (
	PathCRL  = "/crl"
	PathOCSP = "/ocsp"
)

// ServeHTTP serves GET and HEAD /crl (the active CA's CRL, DER), GET and
// HEAD /crl/ID.crl (CA ID's), and OCSP requests at /ocsp (POST, or GET
// /ocsp/BASE64). Anything else is refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := r.URL.Path
	switch {
	case p == PathOCSP || strings.HasPrefix(p, PathOCSP+"/"):
		s.serveOCSP(w, r)
	case p == PathCRL || strings.HasPrefix(p, PathCRL+"/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveCRL(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveCRL(w http.ResponseWriter, r *http.Request) {
	var kid string
	if r.URL.Path == PathCRL {
		issuers := s.issuers()
		if len(issuers) == 0 {
			http.NotFound(w, r)
			return
		}
		kid = issuers[0].KeyID()
	} else {
		name := strings.TrimPrefix(r.URL.Path, PathCRL+"/")
		id, ok := strings.CutSuffix(name, ".crl")
		if !ok || !isKeyID(id) {
			http.NotFound(w, r)
			return
		}
		kid = id
	}
	c, ok := s.crl(kid)
	if !ok {
		http.Error(w, "no CRL of this CA has been published yet", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Last-Modified", c.ThisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Expires", c.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("ETag", fmt.Sprintf(`"%s-%d"`, kid, c.Number))
	h.Set("Cache-Control", "public, max-age=60")
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
}

// isKeyID reports whether s looks like a key id: lower-case hex, bounded.
func isKeyID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
