package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

// Issuer is one issuing CA: its certificate and the signer of its key.
type Issuer struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// KeyID returns the CA's key id: the hex of its subject key identifier.
func (i Issuer) KeyID() string { return KeyID(i.Cert) }

// KeyID returns the key id of the CA certificate c.
func KeyID(c *x509.Certificate) string { return hex.EncodeToString(c.SubjectKeyId) }

// Store is the part of lsc.Store the publisher and the server use.
type Store interface {
	ListRevoked(ctx context.Context, issuerKeyID string, now time.Time) ([]lsc.Record, error)
	CountRevoked(ctx context.Context, issuerKeyID string) (int64, error)
	SaveCRL(ctx context.Context, c lsc.CRL) (bool, error)
	GetCRL(ctx context.Context, issuerKeyID string) (lsc.CRL, error)
	GetCertificate(ctx context.Context, serial string) (lsc.Record, error)
}

// The CRL schedule's defaults.
const (
	// DefaultValidity is how long a CRL is valid (nextUpdate - thisUpdate).
	DefaultValidity = 7 * 24 * time.Hour
	// DefaultCheck is how often the publisher looks for revocations made
	// elsewhere (another node, a capf cert revoke) and for a CRL that
	// nears its nextUpdate: one COUNT on an index per CA.
	DefaultCheck = 5 * time.Second
	// DefaultCoalesce is the least time between two looks that kicks
	// start.
	DefaultCoalesce = time.Second
)

// PublisherOptions configure a [Publisher].
type PublisherOptions struct {
	Store   Store
	Issuers []Issuer // the CAs whose CRLs are published
	// IssuersNow, when set, gives the CAs in force at each look instead
	// of Issuers: a CA set that changes while the node runs.
	IssuersNow func() []Issuer
	// Validity is nextUpdate - thisUpdate of each CRL; DefaultValidity
	// when zero. A CRL is regenerated once half of it has passed, so
	// fetchers never hold one past its nextUpdate while a node runs.
	Validity time.Duration
	// Check is the pause between two looks of Run; DefaultCheck when zero.
	Check time.Duration
	// Coalesce is the least time between two looks that a Kick starts;
	// DefaultCoalesce when zero. Kicks within it wait for its end and are
	// served by one look, so that a fleet enrolling hundreds of phones a
	// second costs one look a second, not one per enrolment.
	Coalesce time.Duration
	// Published, when set, is called after a new CRL was stored (to serve
	// it on this node at once). It must not block.
	Published func()
	Now       func() time.Time // time.Now when nil
	Rand      io.Reader        // crypto/rand when nil
	Logger    *slog.Logger     // slog.Default() when nil
}

// Publisher builds and stores the CRLs. Run it on one node at a time.
type Publisher struct {
	o    PublisherOptions
	kick chan struct{}

	mu     sync.Mutex
	counts map[string]int64 // by key id: CountRevoked when the CA's CRL was last found current
}

// NewPublisher returns a publisher for o.
func NewPublisher(o PublisherOptions) *Publisher {
	if o.Validity <= 0 {
		o.Validity = DefaultValidity
	}
	if o.Check <= 0 {
		o.Check = DefaultCheck
	}
	if o.Coalesce <= 0 {
		o.Coalesce = DefaultCoalesce
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Publisher{o: o, kick: make(chan struct{}, 1), counts: map[string]int64{}}
}

// Kick asks Run to look again at once (a revocation was made on this
// node). It never blocks.
func (p *Publisher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run publishes now, then whenever kicked and every Check, until ctx ends
// (the lease it runs under was lost, or the node stops). It returns nil
// then; a failed round is logged and tried again at the next.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.o.Check)
	defer t.Stop()
	for {
		if err := p.Publish(ctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Warn("publish CRLs", "err", err)
		}
		looked := time.Now()
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
			// Kicks come with every LSC a session installs: wait out the
			// rest of Coalesce, so that they cost one look together.
			if wait := p.o.Coalesce - time.Since(looked); wait > 0 {
				w := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					w.Stop()
					return nil
				case <-w.C:
				}
				select { // a kick that came while waiting is served now
				case <-p.kick:
				default:
				}
			}
		case <-t.C:
		}
	}
}

// Publish brings every CA's stored CRL up to date: it builds and stores a
// new one when the revoked LSCs differ from the stored CRL's entries, when
// half of its validity has passed, or when there is none. While the count
// of revocations has not moved since it last found a CA's CRL current, it
// reads nothing more of that CA's.
func (p *Publisher) Publish(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	issuers := p.o.Issuers
	if p.o.IssuersNow != nil {
		issuers = p.o.IssuersNow()
	}
	for _, iss := range issuers {
		if err := p.publishOne(ctx, iss); err != nil {
			errs = append(errs, fmt.Errorf("CA %s: %w", iss.KeyID(), err))
		}
	}
	return errors.Join(errs...)
}

func (p *Publisher) publishOne(ctx context.Context, iss Issuer) error {
	now := p.o.Now().UTC()
	kid := iss.KeyID()
	count, err := p.o.Store.CountRevoked(ctx, kid)
	if err != nil {
		return err
	}
	cur, err := p.o.Store.GetCRL(ctx, kid)
	found := err == nil
	if err != nil && fault.KindOf(err) != fault.NotFound {
		return err
	}
	fresh := found && now.Before(cur.ThisUpdate.Add(p.o.Validity/2))
	if last, ok := p.counts[kid]; ok && last == count && fresh {
		return nil
	}
	revoked, err := p.o.Store.ListRevoked(ctx, kid, now)
	if err != nil {
		return err
	}
	revoked = ofIssuer(revoked, iss)
	if fresh && sameEntries(cur.DER, revoked) {
		p.counts[kid] = count
		return nil
	}
	number := now.UnixMicro()
	if number <= cur.Number {
		number = cur.Number + 1
	}
	c := lsc.CRL{IssuerKeyID: kid, Number: number, ThisUpdate: now.Truncate(time.Second),
		NextUpdate: now.Truncate(time.Second).Add(p.o.Validity)}
	if c.DER, err = Build(p.o.Rand, iss, revoked, c.Number, c.ThisUpdate, c.NextUpdate); err != nil {
		return err
	}
	saved, err := p.o.Store.SaveCRL(ctx, c)
	if err != nil {
		return err
	}
	p.counts[kid] = count
	if saved {
		p.o.Logger.Info("published a new CRL", "ca", kid, "number", c.Number, "entries", len(revoked), "next_update", c.NextUpdate)
		if p.o.Published != nil {
			p.o.Published()
		}
	}
	return nil
}

// ofIssuer keeps the records iss signed: those of its key id, and those
// recorded without one whose certificate names iss's key.
func ofIssuer(rs []lsc.Record, iss Issuer) []lsc.Record {
	kid := iss.KeyID()
	out := rs[:0]
	for _, r := range rs {
		if r.IssuerKeyID == "" {
			c, err := x509.ParseCertificate(r.DER)
			if err != nil || !bytes.Equal(c.AuthorityKeyId, iss.Cert.SubjectKeyId) {
				continue
			}
		} else if r.IssuerKeyID != kid {
			continue
		}
		out = append(out, r)
	}
	return out
}

// sameEntries reports whether the CRL der lists exactly the revocations rs
// (serial, time and reason).
func sameEntries(der []byte, rs []lsc.Record) bool {
	crl, err := x509.ParseRevocationList(der)
	if err != nil || len(crl.RevokedCertificateEntries) != len(rs) {
		return false
	}
	want := make(map[string]lsc.Record, len(rs))
	for _, r := range rs {
		want[r.Serial] = r
	}
	for _, e := range crl.RevokedCertificateEntries {
		r, ok := want[fmt.Sprintf("%X", e.SerialNumber.Bytes())]
		if !ok || !e.RevocationTime.Equal(r.RevokedAt.Truncate(time.Second)) || e.ReasonCode != int(r.Reason) {
			return false
		}
	}
	return true
}

// Build returns the DER of a CRL of iss numbered number, valid from
// thisUpdate to nextUpdate, listing rs, signed by iss.
func Build(random io.Reader, iss Issuer, rs []lsc.Record, number int64, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	for _, r := range rs {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("build CRL: stored serial %q is not hex", r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   serial,
			RevocationTime: r.RevokedAt.UTC().Truncate(time.Second),
			ReasonCode:     int(r.Reason), // 0 (unspecified) leaves the extension out, as RFC 5280 asks
		})
	}
	der, err := x509.CreateRevocationList(random, tmpl, iss.Cert, iss.Signer)
	if err != nil {
		return nil, fmt.Errorf("build CRL of %s: %w", iss.KeyID(), err)
	}
	return der, nil
}
