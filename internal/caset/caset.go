// Package caset holds the CAPF's CA set as data: every CAPF certificate
// the phones may trust, each with an id (the hex of its subject key
// identifier), its chain, where its private key is, and a state (staged,
// active, retiring, retired). The store rows and their contract are here;
// [Set] is the live view `capf serve` gives TLS (GetCertificate), LSC
// authentication (every CA not retired) and issuance (the active CA);
// [Service] validates and audits the changes an administrator makes.
// See docs/adr/0017-ca-set.md.
package caset

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// State is where a CA stands in its life.
type State string

// The states of a CA. Exactly one CA of a non-empty set is active.
const (
	// Staged: listed in trust files and trusted for LSC authentication,
	// but not yet presented on TLS nor signing.
	Staged State = "staged"
	// Active: presented on TLS and signing new LSCs.
	Active State = "active"
	// Retiring: a former active CA, still listed and trusted, so that the
	// phones holding its LSCs authenticate until they have new ones.
	Retiring State = "retiring"
	// Retired: no longer listed nor trusted.
	Retired State = "retired"
)

// Trusted reports whether a CA in state s is listed in trust files and
// trusted for LSC authentication.
func (s State) Trusted() bool { return s == Staged || s == Active || s == Retiring }

// Valid reports whether s is one of the four states.
func (s State) Valid() bool { return s.Trusted() || s == Retired }

// Record is one CA as stored.
type Record struct {
	// ID is the hex (lower case) of the certificate's subject key
	// identifier: the key id issuances record.
	ID    string
	State State
	// Chain is the certificate chain, DER, leaf first.
	Chain []byte
	// KeyRef names the private key, the same on every backend: the id
	// of its row in the keys table on a cluster with a KEK ("capf" for
	// the CA of before the set, "ca-ID" after), which a node that keeps
	// its keys as files maps to DATA/ca/capf.key and DATA/ca/ID/capf.key.
	KeyRef    string
	CreatedAt time.Time
	ChangedAt time.Time
}

// Certificate parses the leaf of r's chain.
func (r Record) Certificate() (*x509.Certificate, error) {
	cs, err := x509.ParseCertificates(r.Chain)
	if err != nil || len(cs) == 0 {
		return nil, fault.Invalidf("CA %s: the certificate chain does not parse: %v", r.ID, err)
	}
	return cs[0], nil
}

// StateChange moves one CA from one state to another; the store refuses
// it (Conflict) when the CA is not in From any more.
type StateChange struct {
	ID       string
	From, To State
}

// Store is the persistence contract of the CA set; both backends implement
// it and pass storetest.RunCASet. Every change appends its audit event in
// the same transaction and moves the set's change counter, and on
// PostgreSQL notifies system.FleetChannel, so that every node reloads the
// set within seconds.
type Store interface {
	// ListCAs returns every CA, oldest first.
	ListCAs(ctx context.Context) ([]Record, error)
	// CASetVersion returns the set's change counter (0 before any change).
	CASetVersion(ctx context.Context) (int64, error)
	// AddCA stores r, and key (when not nil) in the keys table, with ev.
	// Conflict when a CA with r.ID exists, or r is Active and the set is
	// not empty (only the first CA of a set starts active).
	AddCA(ctx context.Context, r Record, key *keys.Record, ev device.AuditEvent) error
	// ChangeCAStates applies every change, with ev, in one transaction:
	// all or none. NotFound when a CA does not exist, Conflict when one is
	// not in its From state.
	ChangeCAStates(ctx context.Context, changes []StateChange, at time.Time, ev device.AuditEvent) error
	// CountLSCHolders returns how many devices hold, at now, an LSC that
	// the CA with key id id and subject subject issued and that is neither
	// expired nor revoked. Issuances recorded before key ids were are
	// matched by the issuer's subject.
	CountLSCHolders(ctx context.Context, id, subject string, now time.Time) (int, error)
	// IssuingCA returns the issuing CA in place; false when there is
	// none.
	IssuingCA(ctx context.Context) (IssuingRecord, bool, error)
	// PutIssuingCA stores r as the issuing CA, and key (when not nil) in
	// the keys table, with ev, and moves the set's change counter (and
	// notifies) so that every node takes it. Conflict when an issuing CA
	// is in place already, r.ID is a former issuing CA (forget it first),
	// or key's id is stored already.
	PutIssuingCA(ctx context.Context, r IssuingRecord, key *keys.Record, ev device.AuditEvent) error
	// RetireIssuingCA takes the issuing CA id out of place into the
	// former issuing CAs (removed at at), keeping its key, with ev, and
	// moves the set's change counter (and notifies) so that every node
	// stops signing new LSCs with it. NotFound when the issuing CA in
	// place is not id (or there is none).
	RetireIssuingCA(ctx context.Context, id string, at time.Time, ev device.AuditEvent) error
	// FormerIssuingCAs returns the former issuing CAs, oldest removal
	// first.
	FormerIssuingCAs(ctx context.Context) ([]IssuingRecord, error)
	// ForgetIssuingCA deletes the former issuing CA id, and its key from
	// the keys table when it is there, with ev, and moves the set's
	// change counter (and notifies). NotFound when there is no former
	// issuing CA id.
	ForgetIssuingCA(ctx context.Context, id string, ev device.AuditEvent) error
	// AddPendingKey stores key, the pending key of an offline CA (id
	// PendingKeyID), in the keys table with ev. Conflict when a key with
	// its id is stored already (one pending key at a time).
	AddPendingKey(ctx context.Context, key keys.Record, ev device.AuditEvent) error
	// DiscardPendingKey removes the pending key pendingID from the keys
	// table with ev. NotFound when it is not there.
	DiscardPendingKey(ctx context.Context, pendingID string, ev device.AuditEvent) error
	// StagePending stores r (staged) and key as AddCA does and removes
	// the pending key pendingID, in one transaction. NotFound when no key
	// pendingID is stored (another command installed it first).
	StagePending(ctx context.Context, r Record, key *keys.Record, pendingID string, ev device.AuditEvent) error
}

// PendingKeyID is the id in the keys table of the offline CA's pending
// key on a cluster with a KEK (ADR 0017): a node that keeps its keys as
// files keeps it in DATA/ca/pending.
const PendingKeyID = "ca-pending"

// IssuingRecord is the issuing CA as stored (ADR 0017, "A separate
// issuing CA"): beside the set, not a row of it.
type IssuingRecord struct {
	// ID is the hex of its subject key identifier.
	ID string
	// ParentID is the id of the CAPF certificate of the set that signed it.
	ParentID string
	// Chain is its certificate, DER.
	Chain []byte
	// KeyRef names its key as Record.KeyRef does: "issuing-ID", a row of
	// the keys table on a cluster with a KEK, DATA/ca/issuing on a node
	// that keeps its keys as files.
	KeyRef    string
	CreatedAt time.Time
	// RemovedAt is when capf ca issuer remove took it out of place (a
	// former issuing CA); zero for the one in place.
	RemovedAt time.Time
}

// IssuingKeyPrefix, followed by the issuing CA's id, is its key
// reference (IssuingRecord.KeyRef).
const IssuingKeyPrefix = "issuing-"

// Certificate parses r's certificate.
func (r IssuingRecord) Certificate() (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(r.Chain)
	if err != nil {
		return nil, fault.Invalidf("issuing CA %s: the certificate does not parse: %v", r.ID, err)
	}
	return c, nil
}

// KeyID returns the id of a CA certificate: the hex of its subject key
// identifier.
func KeyID(c *x509.Certificate) (string, error) {
	if len(c.SubjectKeyId) == 0 {
		return "", fault.Invalidf("the CA certificate %s has no subject key identifier", c.Subject)
	}
	return hex.EncodeToString(c.SubjectKeyId), nil
}

// ChainDER concatenates the DER of certs.
func ChainDER(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, c.Raw...)
	}
	return b
}

// Find returns the record of recs that ref names: its id, a unique prefix
// of it (at least 8 hex digits), or its certificate's serial in hex (case,
// colons and leading zeros ignored, as `openssl x509 -serial` prints it).
func Find(recs []Record, ref string) (Record, error) {
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(ref), ":", ""))
	if want == "" {
		return Record{}, fault.Invalidf("no CA id or serial given")
	}
	for _, c := range want {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return Record{}, fault.Invalidf("%q is neither a CA id nor a serial: want hex digits (colons allowed)", ref)
		}
	}
	var found []Record
	for _, r := range recs {
		if r.ID == want || (len(want) >= 8 && strings.HasPrefix(r.ID, want)) {
			found = append(found, r)
			continue
		}
		if c, err := r.Certificate(); err == nil && strings.TrimLeft(fmt.Sprintf("%x", c.SerialNumber), "0") == strings.TrimLeft(want, "0") {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return Record{}, fault.NotFoundf("no CAPF certificate with id or serial %s (capf ca status lists them)", ref)
	case 1:
		return found[0], nil
	}
	return Record{}, fault.Invalidf("%s names %d CAPF certificates: give the whole id", ref, len(found))
}

// OrderChanges returns changes with those that leave the active state
// first, so that at most one CA is active after each of them.
func OrderChanges(changes []StateChange) []StateChange {
	out := make([]StateChange, 0, len(changes))
	for _, c := range changes {
		if c.From == Active {
			out = append(out, c)
		}
	}
	for _, c := range changes {
		if c.From != Active {
			out = append(out, c)
		}
	}
	return out
}
