package cli

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/phonesim"
)

func init() { subcommands = append(subcommands, newPhoneCmd) }

// phoneFlags are the flags of capf phone.
type phoneFlags struct {
	server, ca                     string
	authMode, authString           string
	lsc, mic, sudi, sudiKey, state string
	sendAuthType                   bool
	keygenDelay, progressInterval  time.Duration
	retries                        int
	retryInterval, timeout         time.Duration
	tlsLegacy                      bool
	failKeygen, disconnectOnStore  int
	refuseStore, disconnectAuth    bool
	json, verbose                  bool
}

func newPhoneCmd(g *globals) *cobra.Command {
	var f phoneFlags
	cmd := &cobra.Command{
		Use:   "phone NAME",
		Short: "Act as a Cisco IP phone talking to a CAPF server",
		Long: `Act as the Cisco IP phone or softphone NAME (e.g. SEP58971ECC97C1, CSFJDOE):
connect to the CAPF server, authenticate, and answer its requests (generate a key
and store the LSC, return a certificate, delete the LSC) until it ends the session.

--server takes the phone's capfList: up to five servers, HOST or HOST:PORT
(port 3804 by default), separated by commas. The phone starts with the first;
when a server cannot be reached or drops the connection before the session
ends, it tries the next at once; a retry (waiting --retry-interval) comes only
after every server failed in a row, and starts over at the top of the list. A
RETRY_LATER is a retry too: after its delay the phone asks the same server again.

The phone's flash (its LSC, MIC and pending key) lives in --state, by default
<data>/phones/NAME, so a later run authenticates with an LSC installed earlier.
The authentication mode defaults to "string" with --auth-string, else "mic" with
--mic, else "lsc" with --lsc or an LSC in the state, else "null".

AUTH_RESPONSE carries exactly what a hardware phone sends: REASON, VERSION,
DEVICE_NAME and PASSWORD, or for the certificate modes CERTIFICATE, SIGNED_DATA
and SHA2_SIGNED_DATA; plus SUDI_DATA with --sudi (signed over the session id,
little-endian, and the SUDI certificate). Never AUTH_TYPE unless --send-auth-type.

` + phoneExitHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("phone: expected one device name, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPhone(cmd, g, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "CAPF server HOST[:PORT], or the phone's capfList: up to 5 separated by commas, tried in order (required; port 3804 by default)")
	fl.StringVar(&f.ca, "ca", "", "PEM file with the CAPF certificate(s) the phone trusts, as in its CTL/ITL (required)")
	fl.StringVar(&f.authMode, "auth-mode", "", "authentication (capfAuthMode): string, null, lsc (lsc-then-mic) or mic (default: see above)")
	fl.StringVar(&f.authString, "auth-string", "", "authentication string (digits) for --auth-mode string")
	fl.StringVar(&f.lsc, "lsc", "", "PEM file with an LSC certificate and key to import into the state")
	fl.StringVar(&f.mic, "mic", "", "PEM file with the phone's MIC certificate and key")
	fl.StringVar(&f.sudi, "sudi", "", "PEM file with the phone's SUDI certificate (and its key, unless --sudi-key); sends SUDI_DATA")
	fl.StringVar(&f.sudiKey, "sudi-key", "", "PEM file with the SUDI private key, when it is not in the --sudi file")
	fl.BoolVar(&f.sendAuthType, "send-auth-type", false, "experiment: add AUTH_TYPE to AUTH_RESPONSE (phones never send it; strict servers refuse it)")
	fl.StringVar(&f.state, "state", "", "state directory, the phone's flash (default <data>/phones/NAME)")
	fl.DurationVar(&f.keygenDelay, "keygen-delay", 0, "minimum time key generation takes")
	fl.DurationVar(&f.progressInterval, "progress-interval", 10*time.Second, "interval of REQUEST_IN_PROGRESS while generating a key (0 = none)")
	fl.IntVar(&f.retries, "retries", phonesim.DefaultRetries, "sessions to retry after a communication failure or RETRY_LATER")
	fl.DurationVar(&f.retryInterval, "retry-interval", phonesim.DefaultRetryInterval, "wait before a retry")
	fl.DurationVar(&f.timeout, "timeout", phonesim.DefaultMessageTimeout, "timeout for each server message, the connect and the TLS handshake")
	fl.BoolVar(&f.tlsLegacy, "tls-legacy", false, "speak only TLS 1.0 with RSA key exchange, like a 79xx phone")
	fl.IntVar(&f.failKeygen, "fail-keygen", 0, "fault: answer the first N key generation requests with failure")
	fl.IntVar(&f.disconnectOnStore, "disconnect-on-store", 0, "fault: hang up instead of answering the first N store requests")
	fl.BoolVar(&f.refuseStore, "refuse-store", false, "fault: refuse every certificate the server stores")
	fl.BoolVar(&f.disconnectAuth, "disconnect-after-auth", false, "fault: hang up right after authenticating, like a power cut")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every message to stderr")
	return cmd
}

func runPhone(cmd *cobra.Command, g *globals, f *phoneFlags, name string) error {
	o, err := f.options(g, name)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))

	res, runErr := phonesim.Run(cmd.Context(), o)
	outcome := phoneOutcome(name, res, runErr)
	if f.json {
		code := ExitOK
		if outcome != nil {
			code = exitCode(outcome)
		}
		if err := writePhoneJSON(g.stdout, name, res, runErr, code); err != nil {
			return err
		}
	} else if runErr == nil {
		fmt.Fprintln(g.stdout, phoneSummary(name, res))
	}
	return outcome
}

// options turns the flags into simulator options; every mistake is a usage
// error.
func (f *phoneFlags) options(g *globals, name string) (phonesim.Options, error) {
	o := phonesim.Options{
		DeviceName:          name,
		AuthString:          f.authString,
		StateDir:            f.state,
		KeygenDelay:         f.keygenDelay,
		ProgressInterval:    f.progressInterval,
		RetryInterval:       f.retryInterval,
		MessageTimeout:      f.timeout,
		FailKeygen:          f.failKeygen,
		DisconnectOnStore:   f.disconnectOnStore,
		RefuseStore:         f.refuseStore,
		DisconnectAfterAuth: f.disconnectAuth,
		SendAuthType:        f.sendAuthType,
	}
	if f.server == "" {
		return o, usagef("phone: --server is required")
	}
	servers, err := phonesim.ParseServerList(f.server)
	if err != nil {
		return o, usagef("phone: --server: %v", err)
	}
	o.Servers = servers
	if f.ca == "" {
		return o, usagef("phone: --ca is required (the CAPF certificate from the phone's CTL)")
	}
	trust, err := phonesim.LoadTrust(f.ca)
	if err != nil {
		return o, usagef("phone: --ca: %v", err)
	}
	o.Trust = trust
	if f.authMode != "" {
		m, err := phonesim.ParseAuthMode(f.authMode)
		if err != nil {
			return o, usagef("phone: --auth-mode: %v", err)
		}
		o.AuthMode = m
	}
	for _, c := range []struct {
		flag, path string
		dst        **phonesim.Credential
	}{{"--lsc", f.lsc, &o.LSC}, {"--mic", f.mic, &o.MIC}} {
		if c.path == "" {
			continue
		}
		cred, err := phonesim.LoadCredential(c.path)
		if err != nil {
			return o, usagef("phone: %s: %v", c.flag, err)
		}
		*c.dst = cred
	}
	if f.sudi != "" {
		cred, err := loadSplitCredential(f.sudi, f.sudiKey)
		if err != nil {
			return o, usagef("phone: --sudi: %v", err)
		}
		o.SUDI = cred
	} else if f.sudiKey != "" {
		return o, usagef("phone: --sudi-key needs --sudi")
	}
	switch {
	case f.retries < 0:
		return o, usagef("phone: --retries must not be negative")
	case f.retries == 0:
		o.Retries = -1 // the simulator reads 0 as its default
	default:
		o.Retries = f.retries
	}
	if f.failKeygen < 0 || f.disconnectOnStore < 0 {
		return o, usagef("phone: --fail-keygen and --disconnect-on-store must not be negative")
	}
	if f.keygenDelay < 0 || f.progressInterval < 0 || f.retryInterval < 0 || f.timeout < 0 {
		return o, usagef("phone: durations must not be negative")
	}
	if f.tlsLegacy {
		o.MinVersion, o.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		o.CipherSuites = phonesim.LegacyCipherSuites()
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(g.dir().Phones(), stateDirName(name))
	}
	return o, nil
}

// loadSplitCredential reads a certificate and its key from certPath, or the
// certificate from certPath and the key from keyPath when keyPath is set.
func loadSplitCredential(certPath, keyPath string) (*phonesim.Credential, error) {
	if keyPath == "" {
		return phonesim.LoadCredential(certPath)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("--sudi-key: %w", err)
	}
	c, err := phonesim.ParseCredential(append(append(certPEM, '\n'), keyPEM...))
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", certPath, keyPath, err)
	}
	return c, nil
}

// stateDirName makes a device name safe as one path element. Names are not
// validated (a server must be testable with bad ones), so anything outside
// [A-Za-z0-9._-] becomes '_', and a leading dot too.
func stateDirName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if b[0] == '.' {
		b[0] = '_' // neither ".", ".." nor a hidden directory
	}
	return string(b)
}

// phoneSummary is the one-line report of a finished run.
func phoneSummary(name string, r *phonesim.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: END_SESSION reason %d (%s)", name, uint8(r.EndReason), r.EndReason)
	if r.ReasonInfo != "" {
		fmt.Fprintf(&b, " %q", r.ReasonInfo)
	}
	if len(r.Operations) > 0 {
		fmt.Fprintf(&b, "; answered %s", strings.Join(r.Operations, ", "))
	} else {
		b.WriteString("; no operation")
	}
	if c := r.Installed; c != nil {
		fmt.Fprintf(&b, "; installed LSC serial %s subject %q", fmt.Sprintf("%X", c.SerialNumber.Bytes()), c.Subject.String())
	}
	if r.Fetched {
		b.WriteString("; returned a certificate")
	}
	if r.Deleted {
		b.WriteString("; deleted the LSC")
	}
	fmt.Fprintf(&b, "; %d session(s)", r.Sessions)
	if r.Failovers > 0 {
		fmt.Fprintf(&b, ", %d move(s) to the next server, ended on %s", r.Failovers, r.Server)
	}
	if r.RetryLaterCount > 0 {
		fmt.Fprintf(&b, ", %d RETRY_LATER", r.RetryLaterCount)
	}
	return b.String()
}

// phoneJSON is the --json output.
type phoneJSON struct {
	Device        string    `json:"device"`
	Ended         bool      `json:"ended"`
	EndReason     *uint8    `json:"end_reason,omitempty"`
	EndReasonName string    `json:"end_reason_name,omitempty"`
	ReasonInfo    string    `json:"reason_info,omitempty"`
	Operations    []string  `json:"operations"`
	Installed     *certJSON `json:"installed,omitempty"`
	Fetched       bool      `json:"fetched"`
	Deleted       bool      `json:"deleted"`
	Sessions      int       `json:"sessions"`
	RetryLater    int       `json:"retry_later"`
	Server        string    `json:"server,omitempty"`
	Failovers     int       `json:"failovers"`
	ExitCode      int       `json:"exit_code"`
	Error         string    `json:"error,omitempty"`
}

type certJSON struct {
	Serial   string    `json:"serial"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

func writePhoneJSON(w io.Writer, name string, r *phonesim.Result, runErr error, code int) error {
	out := phoneJSON{
		Device:     name,
		Ended:      runErr == nil,
		Operations: r.Operations,
		Fetched:    r.Fetched,
		Deleted:    r.Deleted,
		Sessions:   r.Sessions,
		RetryLater: r.RetryLaterCount,
		Server:     r.Server,
		Failovers:  r.Failovers,
		ExitCode:   code,
	}
	if out.Operations == nil {
		out.Operations = []string{}
	}
	if runErr == nil {
		code := uint8(r.EndReason)
		out.EndReason, out.EndReasonName, out.ReasonInfo = &code, r.EndReason.String(), r.ReasonInfo
	} else {
		out.Error = runErr.Error()
	}
	if c := r.Installed; c != nil {
		out.Installed = &certJSON{
			Serial:   fmt.Sprintf("%X", c.SerialNumber.Bytes()),
			Subject:  c.Subject.String(),
			Issuer:   c.Issuer.String(),
			NotAfter: c.NotAfter.UTC(),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
