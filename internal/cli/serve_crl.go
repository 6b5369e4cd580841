package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lease"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/revocation"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/tcpbind"
	"github.com/capf-server/capf/internal/telemetry"
)

// leaseCRL is the lease of the CRL publisher: one node of the fleet builds
// the CRLs, every node serves them.
const leaseCRL = "crl-publisher"

// leaseRenewal is the lease of the LSC renewal job.
const leaseRenewal = "lsc-renewal"

// CRLDir is the directory of the data directory where each CA's latest CRL
// is written, as ID.crl (DER) and ID.pem.
const CRLDir = "crl"

// The CRL listener's bounds: a few 802.1X servers fetch CRLs and ask OCSP;
// a flood of connections cannot take more than this.
const (
	crlMaxConns      = 64
	crlMaxPerAddress = 8
)

// revocationParts are the revocation publisher (a once-per-fleet job), the
// node's CRL and OCSP server, and the use cases on issued LSCs.
type revocationParts struct {
	publisher *revocation.Publisher
	server    *revocation.Server
	certs     *lsc.Service
}

// newRevocation builds the revocation parts for the CAs of set that are
// not retired, the issuing CA and the former issuing CAs in force (the
// active one first, as they are at each use) over st,
// writing CRLs to DATA/crl.
func newRevocation(dataDir string, st revocation.Store, certStore lsc.Store, set *caset.Set, log *slog.Logger) (*revocationParts, error) {
	dir := filepath.Join(dataDir, CRLDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("CRL directory: %w", err)
	}
	issuers := func() []revocation.Issuer {
		a := set.Active()
		out := []revocation.Issuer{{Cert: a.Certificate(), Signer: a.Signer()}}
		if iss := issuingSigner(set); iss != nil { // the issuing CA signs its LSCs' CRL and OCSP
			out = append(out, revocation.Issuer{Cert: iss.Certificate(), Signer: iss.Signer()})
		}
		for _, iss := range set.Issuers() {
			if iss.State.Trusted() && iss.State != caset.Active {
				out = append(out, revocation.Issuer{Cert: iss.Cert, Signer: iss.Authority.Signer()})
			}
		}
		for _, f := range set.FormerInForce() { // a removed issuing CA signs its LSCs' CRL until forgotten
			if f.Signer != nil {
				out = append(out, revocation.Issuer{Cert: f.Cert, Signer: f.Signer})
			}
		}
		return out
	}
	srv := revocation.NewServer(revocation.ServerOptions{Store: st, IssuersNow: issuers, Dir: dir, Logger: log})
	pub := revocation.NewPublisher(revocation.PublisherOptions{Store: st, IssuersNow: issuers, Published: srv.Refresh, Logger: log})
	certs := lsc.NewService(lsc.Options{Store: certStore, Revoked: pub.Kick})
	return &revocationParts{publisher: pub, server: srv, certs: certs}, nil
}

// job is the publisher's once-per-fleet job.
func (r *revocationParts) job() lease.Job {
	return lease.Job{Name: leaseCRL, Every: time.Second, Run: r.publisher.Run}
}

// run keeps the node's CRLs current until ctx ends; the returned function
// waits for it to stop.
func (r *revocationParts) run(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() { defer close(done); r.server.Run(ctx) }()
	return func() { <-done }
}

// serveCRL serves the CRLs and OCSP on sock (plain HTTP), bounded like the
// admin listener: timeouts on every read and write, at most crlMaxConns
// connections (idle ones evicted first) and crlMaxPerAddress from one
// address. It returns the server to close and the address it listens on.
func (r *revocationParts) serveCRL(sock *tcpbind.Socket, log *slog.Logger) (*http.Server, string, error) {
	ln, err := sock.Listen()
	if err != nil {
		return nil, "", err
	}
	hs := adminhttp.NewServer(r.server)
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	gln, _ := adminhttp.Guard(hs, ln, adminhttp.Limits{MaxConns: crlMaxConns, MaxPerAddress: crlMaxPerAddress, Logger: log})
	go func() { _ = hs.Serve(gln) }()
	return hs, crlURL(ln.Addr()), nil
}

// crlURL is how the startup lines name the CRL listener.
func crlURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = nodeHostname()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// kickingStore is the sessions' store that tells the CRL publisher of
// this node when a session changed which LSC a phone holds (a new one
// supersedes the old, a Delete revokes it): the publisher, if this node
// holds its lease, regenerates the CRL at once instead of at its next
// check. The kick is a non-blocking channel send.
type kickingStore struct {
	session.Store
	kick func()
}

// FinishAttempt implements session.Store.
func (k kickingStore) FinishAttempt(ctx context.Context, o device.Outcome) error {
	err := k.Store.FinishAttempt(ctx, o)
	if err == nil && (o.SetLSC != nil || o.ClearLSC) {
		k.kick()
	}
	return err
}

// renewalJob arms the renewal of LSCs nearing expiry, every minute, once
// per fleet, while the fleet parameter lsc_renew_before (read live) is set.
func renewalJob(st lsc.RenewalDevices, params session.Params, metrics *telemetry.Metrics, log *slog.Logger) lease.Job {
	r := lsc.NewRenewal(st, nil)
	return lease.Job{Name: leaseRenewal, Every: time.Minute, Run: func(ctx context.Context) error {
		armed, err := r.Run(ctx, params.Current().RenewBefore)
		metrics.RenewalsArmed(len(armed))
		if len(armed) > 0 {
			log.Info("armed Install/Upgrade to renew LSCs nearing expiry", "phones", len(armed), "first", armed[0])
		}
		return err
	}}
}
