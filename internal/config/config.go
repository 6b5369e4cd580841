// Package config holds the CAPF service parameters: plain data with safe
// defaults, a strict loader (unknown keys are refused) and a Validate that
// reports every problem at once. The parameters are of two kinds (ADR
// 0011): node settings, which live in the node's capf.json in the data
// directory and apply when `capf serve` starts (listen addresses, TLS
// profile, log format, files), and fleet parameters (FleetKeys), which
// live in the database, are shared by every node and apply within seconds.
// `capf serve` writes the node settings' defaults to capf.json on first
// start so administrators can see and edit them; a capf.json of an older
// version may still hold fleet parameters, which are imported into the
// database once.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/schedule"
)

// FileName is the name of the service-parameter file in the data directory.
const FileName = "capf.json"

// Duration is a time.Duration written as a Go duration string ("30m").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "90s" or "30m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return fmt.Errorf("want a duration string such as \"90s\" or \"30m\", got %s", jsonKind(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: want a number with a unit, such as \"90s\" or \"30m\"", s)
	}
	*d = Duration(v)
	return nil
}

// Servers is the capf_servers parameter: host[:port] entries, in the
// order phones try them (see capflist). It reads a JSON list of strings,
// or a string of entries separated by commas, as `capf config set` takes
// a bare value; it is written as a list.
type Servers []string

// UnmarshalJSON reads a list of strings, or one string of comma-separated
// entries (spaces around each are dropped; an empty string is no entry).
func (s *Servers) UnmarshalJSON(b []byte) error {
	var l []string
	if err := json.Unmarshal(b, &l); err == nil {
		*s = Servers(l)
		if l == nil {
			*s = Servers{}
		}
		return nil
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		return fmt.Errorf("want a list of host[:port] strings, got a list with an entry that is not a string")
	}
	var text string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &text) != nil {
		return fmt.Errorf("want a list of host[:port] strings, or one string of them separated by commas, got %s", jsonKind(b))
	}
	out := Servers{}
	if strings.TrimSpace(text) != "" {
		for _, e := range strings.Split(text, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	*s = out
	return nil
}

// Config is the set of CAPF service parameters.
type Config struct {
	Listen                  string   `json:"listen"`
	TLSProfile              string   `json:"tls_profile"`
	CAKey                   string   `json:"capf_key"`
	CertificateValidityDays int      `json:"certificate_validity_days"`
	DefaultKey              string   `json:"default_key"`
	KeyGenerationMaxTime    Duration `json:"key_generation_max_time"`
	KeyGenerationMaxTries   int      `json:"key_generation_max_attempts"`
	ManufacturerCABundle    string   `json:"manufacturer_ca_bundle"`
	AllowExpiredMIC         bool     `json:"allow_expired_mic"`
	SUDIVerification        string   `json:"sudi_verification"`
	HandshakeTimeout        Duration `json:"tls_handshake_timeout"`
	MessageTimeout          Duration `json:"message_timeout"`
	LogLevel                string   `json:"log_level"`
	LogFormat               string   `json:"log_format"`
	MaxConcurrentOps        int      `json:"max_concurrent_operations"`
	MaxConnsPerAddress      int      `json:"max_connections_per_address"`
	MaxConns                int      `json:"max_connections"`
	RetryDelay              Duration `json:"retry_delay"`
	MaintenanceWindows      []string `json:"maintenance_windows"`
	MaintenanceTimeZone     string   `json:"maintenance_time_zone"`
	MetricsListen           string   `json:"metrics_listen"`
	AuthStringMaxFailures   int      `json:"auth_string_max_failures"`
	AuthFailuresPerAddress  int      `json:"auth_failures_per_address"`
	AuthStringBackoff       Duration `json:"auth_string_backoff"`
	TrustFileDir            string   `json:"trust_file_dir"`
	TrustFileAdd            []string `json:"trust_file_add"`
	AdminListen             string   `json:"admin_listen"`
	Database                string   `json:"database"`
	CRLListen               string   `json:"crl_listen"`
	CRLURL                  string   `json:"crl_url"`
	CAPFServers             Servers  `json:"capf_servers"`
	LSCRenewBefore          Duration `json:"lsc_renew_before"`
	ResetAMIAddress         string   `json:"reset_ami_address"`
	ResetAMIUser            string   `json:"reset_ami_user"`
	ResetAMISecretFile      string   `json:"reset_ami_secret_file"`
	ResetAMICAFile          string   `json:"reset_ami_ca_file"`
	ResetCommand            []string `json:"reset_command"`
	ResetEndpoint           string   `json:"reset_endpoint"`
	ResetTimeout            Duration `json:"reset_timeout"`
	ResetPerSecond          int      `json:"reset_per_second"`
	SASTKey                 string   `json:"sast_key"`
	PKCS11Module            string   `json:"pkcs11_module"`
	PKCS11PINFile           string   `json:"pkcs11_pin_file"`
}

// The names some parameters accept. They are the one list of each: the
// help text, `capf config validate` and the CLI's flag help use them, and
// the tests check them against the packages that implement them
// (server.TLSConfig, ca.ParseKeyAlgorithm, device.ParseKeySpec), which
// config may not import.
var (
	// TLSProfiles are the TLS profiles of the CAPF listener.
	TLSProfiles = []string{"modern", "legacy"}
	// CAPFKeys are the key types of the CAPF certificate.
	CAPFKeys = []string{"rsa2048", "rsa3072", "rsa4096", "ec256", "ec384"}
	// PhoneKeys are the key types a phone can be asked to generate.
	PhoneKeys = []string{"rsa512", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ec521"}
	// LogLevels are the log levels.
	LogLevels = []string{"debug", "info", "warn", "error"}
	// LogFormats are the log formats.
	LogFormats = []string{"text", "json"}
)

// Choices lists names as "a, b or c".
func Choices(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Param describes one service parameter for `capf config show` and the UI.
type Param struct {
	Key  string
	Help string
}

// Params lists every parameter with its help text, in display order.
var Params = []Param{
	{"listen", "Address the CAPF protocol listens on (phones use TCP 3804)."},
	{"tls_profile", "modern: TLS 1.2+ with ECDHE suites. legacy: adds TLS 1.0/1.1 for 79xx phones, with RSA key exchange only for clients that do not offer TLS 1.2 (needs an RSA CAPF key)."},
	{"capf_key", "Key of the CAPF certificate when it is first created: " + Choices(CAPFKeys) + "."},
	{"certificate_validity_days", "Validity of issued LSCs in days, 1 to 1825 (CallManager 5.0 expressed it in years: 5 years = 1825)."},
	{"default_key", "Key a phone is asked to generate when its record names none: " + Choices(PhoneKeys) + "."},
	{"key_generation_max_time", "How long a phone may take to generate its key pair, REQUEST_IN_PROGRESS included (old phones: 30+ minutes)."},
	{"key_generation_max_attempts", "How many times a phone is asked to generate a key in one session before the upgrade fails."},
	{"manufacturer_ca_bundle", "PEM file of manufacturer CA certificates that MICs (and SUDI certificates, see sudi_verification) must chain to; relative to the data directory. Empty: MIC authentication fails."},
	{"allow_expired_mic", "Accept MICs that have expired (many 79xx MICs have). Off unless the administrator decides otherwise."},
	{"sudi_verification", "SUDI_DATA that 78xx/88xx phones send: when-trusted (its signatures must verify; a chain to neither the manufacturer bundle nor the CAPF is recorded as not verified and the configured credential decides), required (refuse a SUDI that does not chain), off (ignore SUDI_DATA)."},
	{"tls_handshake_timeout", "Deadline for a phone's TLS handshake."},
	{"message_timeout", "Deadline for each protocol message from a phone, outside key generation."},
	{"log_level", "Trace level: " + Choices(LogLevels) + "."},
	{"log_format", "text (key=value lines) or json (one JSON object per line, for log shippers)."},
	{"max_concurrent_operations", "Certificate operations that may run at once across the fleet, every node counted (phones generating keys included); beyond it a phone is told RETRY_LATER. 0: no limit."},
	{"max_connections_per_address", "Open connections allowed from one IP address; more are closed at once. 0: no limit."},
	{"max_connections", "Open phone connections allowed in total; more are closed at once, so a flood cannot use up the file descriptors. 0: derived from the descriptor limit (limit - 64 - 10%, at most 100000), leaving room for the database and the metrics listener."},
	{"retry_delay", "The delay sent with RETRY_LATER when the service is busy."},
	{"maintenance_windows", "When certificate operations may start, e.g. [\"Mon-Fri 22:00-06:00\", \"Sat,Sun 00:00-24:00\"]. Outside them phones with a pending operation are told to retry later. Empty: always."},
	{"maintenance_time_zone", "Time zone of the maintenance windows (IANA name such as Europe/Berlin, or Local, or UTC)."},
	{"metrics_listen", "Address of the Prometheus /metrics and /healthz listener. Empty: off."},
	{"admin_listen", "Address of the HTTPS administration listener (web UI, REST API, /metrics, /healthz); its certificate is --admin-cert/--admin-key or one from the admin CA in admin-tls/ of the data directory. Empty: off."},
	{"crl_listen", "Address of the plain-HTTP listener of the revocation status of the LSCs: /crl (the active CA's CRL, DER), /crl/ID.crl (each CA's) and an OCSP responder at /ocsp, for 802.1X servers such as FreeRADIUS. Empty: off."},
	{"crl_url", "URL of the CRL that LSCs issued from now on name as their CRL distribution point (http://, e.g. http://capf.example.com/crl, where crl_listen or a web server serving DATA/crl answers). Empty: LSCs name none."},
	{"capf_servers", "The capfList of every phone's configuration snippet (capf phone-config, the phone page, the API): up to 5 CAPF servers host[:port] that phones try in order, moving to the next when one does not answer, e.g. [\"capf1.example.com:3804\", \"capf2.example.com\"] or capf1.example.com,capf2.example.com; an entry without a port takes the port this node listens on for phones. Empty: this node alone (its host name and phone port)."},
	{"lsc_renew_before", "Renew LSCs automatically this long before they expire (e.g. 720h): every minute one node arms Install/Upgrade, authenticated by the existing LSC with the same key type, for each phone whose valid LSC expires within it and that has no pending operation, once per LSC; the maintenance windows and max_concurrent_operations apply as for any operation. At least 1h and shorter than certificate_validity_days. 0s: off."},
	{"reset_ami_address", "Reset after Save through Asterisk: host:port of its manager interface (manager.conf, usually 127.0.0.1:5038); each reset logs in, sends PJSIPNotify with the phone's endpoint and Event=check-sync, and logs off. Needs reset_ami_user and reset_ami_secret_file. Empty: off. Applied at start."},
	{"reset_ami_user", "The manager.conf user that reset_ami_address logs in as (it needs the originate write permission PJSIPNotify requires)."},
	{"reset_ami_secret_file", "File holding that user's secret, one line, mode 0600 (refused when group or others may read it); relative to the data directory, or absolute. The secret itself never goes in capf.json."},
	{"reset_ami_ca_file", "Talk to reset_ami_address over TLS (Asterisk's manager.conf tlsenable and tlsbindaddr, usually port 5039), verifying the manager's certificate, for the host name or address of reset_ami_address, against the CA certificates in this PEM file (relative to the data directory, or absolute); the login secret then never crosses the network in clear. Empty: plain TCP, for a manager on this host."},
	{"reset_command", "Reset after Save through a program instead: [\"/absolute/path\", \"arg\", ...]; an argument that is exactly {device} becomes the phone's endpoint name, else it is appended. Run without a shell, with only PATH in its environment, killed at reset_timeout; exit status 0 is success. Excludes reset_ami_address. Empty: off."},
	{"reset_endpoint", "The PBX endpoint of a phone, from its device name: a template where {device} stands for the name, e.g. {device} (the default: the pjsip endpoint is called SEP001122334455) or cisco-{device}."},
	{"reset_timeout", "Time-out of one reset notification (connection, login and answer, or the command's run), 1s to 20s."},
	{"sast_key", "The key that signs the ITLFile.tlv of trust_file_dir instead of the primary SAST key file: pkcs11:token=LABEL;object=NAME (a key in a PKCS #11 token, with pkcs11_module and pkcs11_pin_file) or a PEM file (relative to the data directory, or absolute); it must match the primary or backup SAST certificate. capf serve --sast-key wins over it. Read at start. Empty: the primary SAST key of the data directory or the database."},
	{"pkcs11_module", "The HSM vendor's PKCS #11 module (shared library; relative to the data directory, or absolute) that opens the keys kept in a token: sast_key's, and CA keys made or imported into a token (capf ca regenerate --key pkcs11:…, capf ca import, capf ca issuer). capf serve --pkcs11-module wins over it. Read at start. Empty: none."},
	{"pkcs11_pin_file", "File holding the token's user PIN, one line, mode 0600 (relative to the data directory, or absolute), for pkcs11_module. capf serve --pin-file wins over it. The PIN itself never goes in capf.json."},
	{"reset_per_second", "Reset notifications started per second at most, over all administrators and bulk resets of this node (a bulk reset is paced by it); 1 to 50."},
	{"auth_string_max_failures", "Consecutive wrong authentication strings after which a device's string is used up (status Too Many Authentication Failures; the administrator sets a new one). After the 3rd, guesses are spaced (auth_string_backoff). 1 to 100."},
	{"auth_string_backoff", "After the 3rd consecutive wrong authentication string for a device, the wait before its next guess is evaluated; it doubles with each further failure, at most 30 min. 0s: no spacing (the limit still holds)."},
	{"auth_failures_per_address", "Authentication-string guesses one IP address may make in 10 minutes, over all devices and nodes, before it is told to retry later. 0: no per-address budget."},
	{"database", "PostgreSQL URL of the fleet's database, e.g. postgres://capf:PASSWORD@db.example:5432/capf?sslmode=verify-full; empty: the SQLite database capf.db of the data directory. --db and " + EnvDB + " win over it (flag, then environment, then this file). Every command reads it, capf serve at start. capf.json stays mode 0600: a password in a file others can read is refused; it is shown and audited as xxxxx."},
	{"trust_file_dir", "Directory (relative to the data directory, or absolute) where capf serve keeps a signed ITLFile.tlv current for a TFTP/HTTP server to hand to phones; written on start and atomically rewritten when its certificates change. Empty: off."},
	{"trust_file_add", "Other certificates the ITLFile.tlv of trust_file_dir lists, as capf trust build --add takes them: [\"ROLE=CERT.pem\", ...], ROLE one of ccm, tftp, ccm+tftp, capf, app-server, tvs (e.g. [\"ccm=/etc/asterisk/keys/asterisk.pem\"] for the SIP server a secure phone talks to); paths relative to the data directory, or absolute; read when capf serve starts (ignored while trust_file_dir is empty). Empty: none."},
}

// FleetKeys are the fleet parameters: they live in the database, every
// node of a cluster obeys the same values, and a change applies to the
// phone sessions that start after it, on every node, within seconds. Every
// other parameter is a node setting of capf.json, applied at start: what
// is about this node's sockets, files and logs. The first nine moved with
// ADR 0011; the last five, facts about the fleet that the code read only
// at start before, moved with its amendment (each key is imported from an
// old capf.json once, see system.Service.ImportFile).
var FleetKeys = []string{
	"default_key",
	"key_generation_max_time",
	"key_generation_max_attempts",
	"message_timeout",
	"retry_delay",
	"maintenance_windows",
	"maintenance_time_zone",
	"auth_string_max_failures",
	"auth_string_backoff",
	"certificate_validity_days",
	"allow_expired_mic",
	"sudi_verification",
	"max_concurrent_operations",
	"auth_failures_per_address",
	"crl_url",
	"lsc_renew_before",
	"capf_servers",
}

// HostOnlyKeys are node settings only the host's administrator may set
// (capf.json, or `capf config set` on the host), never through the API or
// the web UI. The reset notifier's name a program the server runs and a
// file it reads and sends to an address they also name: set remotely they
// would turn an administrator account into code execution on the host or
// a way to read its files (the KEK is one line of hex). The others name
// where the node keeps or reads its data: the database it opens at start
// (set remotely, the next start would hand the fleet to a server of the
// caller's choosing), the directory serve writes the ITL into, and the
// certificate files it reads (a way to write anywhere the service user
// may, or to probe the host's files).
var HostOnlyKeys = []string{
	"reset_ami_address", "reset_ami_user", "reset_ami_secret_file", "reset_ami_ca_file", "reset_command",
	"database", "trust_file_dir", "trust_file_add", "manufacturer_ca_bundle",
	"sast_key", "pkcs11_module", "pkcs11_pin_file",
}

// IsHostOnly reports whether key is one of HostOnlyKeys.
func IsHostOnly(key string) bool { return slices.Contains(HostOnlyKeys, key) }

// IsFleet reports whether key is a fleet parameter (see FleetKeys).
func IsFleet(key string) bool { return slices.Contains(FleetKeys, key) }

// IsKey reports whether key is a service parameter at all.
func IsKey(key string) bool {
	return slices.ContainsFunc(Params, func(p Param) bool { return p.Key == key })
}

// Defaults returns the parameters a fresh installation uses.
func Defaults() Config {
	return Config{
		Listen:                  ":3804",
		TLSProfile:              "modern",
		CAKey:                   "rsa2048",
		CertificateValidityDays: 1825,
		DefaultKey:              "rsa2048",
		KeyGenerationMaxTime:    Duration(30 * time.Minute),
		KeyGenerationMaxTries:   3,
		HandshakeTimeout:        Duration(30 * time.Second),
		MessageTimeout:          Duration(60 * time.Second),
		LogLevel:                "info",
		LogFormat:               "text",
		MaxConcurrentOps:        1000,
		MaxConnsPerAddress:      200,
		RetryDelay:              Duration(60 * time.Second),
		MaintenanceWindows:      []string{},
		MaintenanceTimeZone:     "Local",
		AuthStringMaxFailures:   10,
		AuthFailuresPerAddress:  20,
		AuthStringBackoff:       Duration(30 * time.Second),
		SUDIVerification:        "when-trusted",
		TrustFileDir:            "",
		TrustFileAdd:            []string{},
		CAPFServers:             Servers{},
		AdminListen:             ":8443",
		ResetCommand:            []string{},
		ResetEndpoint:           "{device}",
		ResetTimeout:            Duration(10 * time.Second),
		ResetPerSecond:          5,
	}
}

// Validate returns every problem in c at once, as one Invalid error.
func (c Config) Validate() error {
	return problemsError("service parameters", c.Problems())
}

// problemsError joins problems into one Invalid error, or returns nil.
func problemsError(prefix string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fault.Invalidf("%s: %s", prefix, strings.Join(problems, "; "))
}

// Problems returns every problem in c, each starting with the key it is
// about. It reads nothing but c: a listen address is checked for its form
// (host:port, port 0 to 65535), not resolved or bound.
func (c Config) Problems() []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Listen == "" {
		add("listen: empty")
	} else if err := CheckAddress(c.Listen); err != nil {
		add("listen %q: %v", c.Listen, err)
	}
	if c.MetricsListen != "" {
		if err := CheckAddress(c.MetricsListen); err != nil {
			add("metrics_listen %q: %v", c.MetricsListen, err)
		}
	}
	if c.AdminListen != "" {
		if err := CheckAddress(c.AdminListen); err != nil {
			add("admin_listen %q: %v", c.AdminListen, err)
		}
	}
	if c.CRLListen != "" {
		if err := CheckAddress(c.CRLListen); err != nil {
			add("crl_listen %q: %v", c.CRLListen, err)
		}
	}
	if d := time.Duration(c.LSCRenewBefore); d != 0 {
		validity := time.Duration(c.CertificateValidityDays) * 24 * time.Hour
		switch {
		case d < time.Hour:
			add("lsc_renew_before %s: want 0s (off) or at least 1h", d)
		case d >= validity:
			add("lsc_renew_before %s: must be shorter than the LSC validity (certificate_validity_days %d = %s)", d, c.CertificateValidityDays, validity)
		}
	}
	if c.CRLURL != "" {
		if err := CheckCRLURL(c.CRLURL); err != nil {
			add("crl_url %q: %v", c.CRLURL, err)
		}
	}
	if _, err := capflist.Parse(c.CAPFServers); err != nil {
		add("capf_servers: %s", fault.Message(err))
	}
	errs = append(errs, c.resetProblems()...)
	errs = append(errs, c.tokenProblems()...)
	if !slices.Contains(TLSProfiles, c.TLSProfile) {
		add("tls_profile %q: want %s", c.TLSProfile, Choices(TLSProfiles))
	}
	if !slices.Contains(CAPFKeys, c.CAKey) {
		add("capf_key %q: want %s", c.CAKey, Choices(CAPFKeys))
	}
	if c.TLSProfile == "legacy" && strings.HasPrefix(c.CAKey, "ec") {
		add("tls_profile legacy needs an RSA CAPF key: 79xx phones only do RSA key exchange")
	}
	if c.CertificateValidityDays < 1 || c.CertificateValidityDays > 1825 {
		add("certificate_validity_days %d: want 1 to 1825", c.CertificateValidityDays)
	}
	if !slices.Contains(PhoneKeys, c.DefaultKey) {
		add("default_key %q: want %s", c.DefaultKey, Choices(PhoneKeys))
	}
	if d := time.Duration(c.KeyGenerationMaxTime); d < time.Second || d > 24*time.Hour {
		add("key_generation_max_time %s: want 1s to 24h", d)
	}
	if c.KeyGenerationMaxTries < 1 || c.KeyGenerationMaxTries > 10 {
		add("key_generation_max_attempts %d: want 1 to 10", c.KeyGenerationMaxTries)
	}
	if d := time.Duration(c.HandshakeTimeout); d < 100*time.Millisecond || d > 10*time.Minute {
		add("tls_handshake_timeout %s: want 100ms to 10m", d)
	}
	if d := time.Duration(c.MessageTimeout); d < 100*time.Millisecond || d > time.Hour {
		add("message_timeout %s: want 100ms to 1h", d)
	}
	if !slices.Contains(LogLevels, c.LogLevel) {
		add("log_level %q: want %s", c.LogLevel, Choices(LogLevels))
	}
	if !slices.Contains(LogFormats, c.LogFormat) {
		add("log_format %q: want %s", c.LogFormat, Choices(LogFormats))
	}
	switch c.SUDIVerification {
	case "when-trusted", "required", "off":
	default:
		add("sudi_verification %q: want when-trusted, required or off", c.SUDIVerification)
	}
	if c.MaxConcurrentOps < 0 {
		add("max_concurrent_operations %d: want 0 (no limit) or more", c.MaxConcurrentOps)
	}
	if c.MaxConnsPerAddress < 0 {
		add("max_connections_per_address %d: want 0 (no limit) or more", c.MaxConnsPerAddress)
	}
	if c.MaxConns < 0 {
		add("max_connections %d: want 0 (derived from the descriptor limit) or more", c.MaxConns)
	}
	if d := time.Duration(c.RetryDelay); d < time.Second || d > 24*time.Hour {
		add("retry_delay %s: want 1s to 24h", d)
	}
	if _, err := c.Windows(); err != nil {
		add("%v", err)
	}
	if c.AuthStringMaxFailures < 1 || c.AuthStringMaxFailures > 100 {
		add("auth_string_max_failures %d: want 1 to 100", c.AuthStringMaxFailures)
	}
	if d := time.Duration(c.AuthStringBackoff); d < 0 || d > time.Hour {
		add("auth_string_backoff %s: want 0s to 1h", d)
	}
	if c.AuthFailuresPerAddress < 0 {
		add("auth_failures_per_address %d: want 0 (no budget) or more", c.AuthFailuresPerAddress)
	}
	if err := CheckDatabase(c.Database); err != nil {
		add("database: %v", err)
	}
	if strings.ContainsFunc(c.TrustFileDir, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		add("trust_file_dir %q: control characters in a path", c.TrustFileDir)
	}
	for _, e := range c.TrustFileAdd {
		role, path, ok := strings.Cut(e, "=")
		switch {
		case !ok || strings.TrimSpace(role) == "" || path == "":
			add("trust_file_add entry %q: want ROLE=CERT.pem, e.g. ccm=asterisk.pem", e)
		case strings.ContainsFunc(e, func(r rune) bool { return r < ' ' || r == 0x7f }):
			add("trust_file_add entry %q: control characters", e)
		}
	}
	return errs
}

// EnvDB is the environment variable that gives --db its default (the
// store package's store.EnvDB, which config may not import).
const EnvDB = "CAPF_DB"

// CheckDatabase checks the form of the database node setting: empty, or a
// postgres:// (postgresql://) URL that parses. The error never repeats
// the value, which may hold a password.
func CheckDatabase(db string) error {
	if db == "" {
		return nil
	}
	u, err := url.Parse(db)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("want a postgres:// URL such as postgres://capf:PASSWORD@db.example:5432/capf, or empty for the SQLite database of the data directory")
	}
	return nil
}

// RedactDatabase returns db with its password, if any, replaced by
// "xxxxx", for display and audit.
func RedactDatabase(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		if CheckDatabase(db) != nil && !strings.Contains(db, "@") {
			return db
		}
		return "xxxxx" // does not parse: it may hold anything
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// HasPassword reports whether the database URL db carries a password.
func HasPassword(db string) bool {
	u, err := url.Parse(db)
	if err != nil {
		return strings.Contains(db, "@")
	}
	_, ok := u.User.Password()
	return ok || u.Query().Has("password")
}

// CheckAddress checks the form of a listen address as net.Listen("tcp")
// takes it: host:port with an optional host (name or IP literal, IPv6 in
// brackets) and a port number 0 to 65535 (0: any free port).
func CheckAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("want host:port or :port (%s)", ae.Err)
		}
		return fmt.Errorf("want host:port or :port")
	}
	if port == "" {
		return fmt.Errorf("missing port number")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /\\") {
		return fmt.Errorf("host %q is not a host name or IP address", host)
	}
	return nil
}

// Windows parses the maintenance windows in their time zone.
func (c Config) Windows() (*schedule.Windows, error) {
	loc, err := time.LoadLocation(c.MaintenanceTimeZone)
	if err != nil {
		return nil, fmt.Errorf("maintenance_time_zone %q: %v", c.MaintenanceTimeZone, err)
	}
	w, err := schedule.Parse(c.MaintenanceWindows, loc)
	if err != nil {
		return nil, fmt.Errorf("maintenance_windows: %v", err)
	}
	return w, nil
}

// Load reads dataDir/capf.json over the defaults. A missing file gives the
// defaults. Otherwise every problem is reported at once, in one Invalid
// error naming the file: a syntax error with its line and column, each key
// that does not decode (unknown key, wrong type, bad duration) by name, and
// the value checks of Validate on the keys that did decode.
func Load(dataDir string) (Config, error) {
	c := Defaults()
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read service parameters: %w", err)
	}
	c, problems := Decode(b)
	if err := problemsError(path, problems); err != nil {
		return c, err
	}
	return c, nil
}

// Decode reads a capf.json document over the defaults and returns the
// result with every problem found, decoding and value checks together. A
// key that does not decode keeps its default, and the value checks about
// it are left out, so each problem is reported once.
func Decode(b []byte) (Config, []string) { return DecodeOver(b, nil) }

// DecodeOver is Decode with some keys set over the document's, as
// command-line flags set them; nil b stands for an empty document (no
// file). The checks apply to the result.
func DecodeOver(b []byte, set map[string]any) (Config, []string) {
	c := Defaults()
	raw := map[string]json.RawMessage{}
	if b != nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&raw); err != nil {
			return c, []string{decodeProblem(b, err)}
		}
		if _, err := dec.Token(); err != io.EOF {
			line, col := lineCol(b, dec.InputOffset())
			return c, []string{fmt.Sprintf("line %d, column %d: data after the JSON object", line, col)}
		}
		if raw == nil { // the document is null
			raw = map[string]json.RawMessage{}
		}
	}
	for k, v := range set {
		j, err := json.Marshal(v)
		if err != nil {
			return c, []string{fmt.Sprintf("%s: %v", k, err)}
		}
		raw[k] = j
	}
	known := map[string]bool{}
	for _, p := range Params {
		known[p.Key] = true
	}
	// Decode key by key so that every problem names its parameter.
	var errs []string
	failed := map[string]bool{}
	for key, val := range raw {
		if !known[key] {
			errs = append(errs, fmt.Sprintf("unknown key %q", key))
			failed[key] = true
			continue
		}
		doc, _ := json.Marshal(map[string]json.RawMessage{key: val})
		if err := json.Unmarshal(doc, &c); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s", key, valueProblem(err)))
			failed[key] = true
		}
	}
	sort.Strings(errs)
	for _, p := range c.Problems() {
		if !failed[problemKey(p)] {
			errs = append(errs, p)
		}
	}
	return c, errs
}

// problemKey returns the parameter a Problems entry is about: its first
// word, up to a space or colon.
func problemKey(p string) string {
	if i := strings.IndexAny(p, " :"); i >= 0 {
		return p[:i]
	}
	return p
}

// decodeProblem describes a document that is not a JSON object.
func decodeProblem(b []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(b, se.Offset)
		return fmt.Sprintf("line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or cut short: want a JSON object such as {\"listen\": \":3804\"}"
	case errors.As(err, &te):
		return fmt.Sprintf("want a JSON object of parameters, got %s", te.Value)
	}
	return err.Error()
}

// valueProblem describes a value that does not decode into its parameter,
// in JSON terms rather than Go's.
func valueProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32:
			want = "a whole number"
			if te.Value == "number" {
				return "want a whole number, got a fraction or a number out of range"
			}
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Slice:
			want = "a list of strings"
		}
		return fmt.Sprintf("want %s, got %s", want, jsonTerm(te.Value))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonTerm names a JSON value kind as encoding/json reports it.
func jsonTerm(v string) string {
	switch v {
	case "number", "string", "array", "object":
		return "a " + v
	case "bool":
		return "true or false"
	}
	if strings.HasPrefix(v, "number ") {
		return "the number " + strings.TrimPrefix(v, "number ")
	}
	return v
}

// jsonKind names the kind of a raw JSON value.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// lineCol converts a byte offset in b to a 1-based line and column.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// WriteIfMissing writes the node settings of c (never its fleet
// parameters, which live in the database) to dataDir/capf.json unless the
// file exists. It reports whether it wrote the file.
func WriteIfMissing(dataDir string, c Config) (bool, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	b, err := NodeJSON(c)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return false, fmt.Errorf("write service parameters: %w", err)
	}
	return true, nil
}

// NodeJSON returns the node settings of c as an indented JSON object in
// the order of Params, without the fleet parameters.
func NodeJSON(c Config) ([]byte, error) {
	all, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode service parameters: %w", err)
	}
	var vals map[string]json.RawMessage
	if err := json.Unmarshal(all, &vals); err != nil {
		return nil, fmt.Errorf("encode service parameters: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString("{\n")
	first := true
	for _, p := range Params {
		if IsFleet(p.Key) {
			continue
		}
		if !first {
			buf.WriteString(",\n")
		}
		first = false
		k, _ := json.Marshal(p.Key)
		fmt.Fprintf(&buf, "  %s: %s", k, vals[p.Key])
	}
	buf.WriteString("\n}")
	return buf.Bytes(), nil
}

// Resolve returns p relative to dataDir unless it is absolute or empty.
func Resolve(dataDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dataDir, p)
}

// CheckCRLURL checks a CRL distribution point: an absolute http:// URL
// (RFC 5280 4.2.1.13 expects HTTP, and a fetcher must not need TLS to
// check revocation), with a host, without user information or fragment,
// printable ASCII, at most 512 bytes.
func CheckCRLURL(s string) error {
	if len(s) > 512 {
		return fmt.Errorf("longer than 512 bytes")
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("want visible ASCII characters, no spaces")
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("not a URL")
	case u.Scheme != "http":
		return fmt.Errorf("want an http:// URL (CRL fetchers use plain HTTP)")
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("want a host")
	case u.User != nil:
		return fmt.Errorf("no user information")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("no fragment")
	}
	return nil
}

// resetProblems checks the reset_* node settings (their form only: the
// secret file is read when the notifier is built).
// tokenProblems returns the problems of the PKCS #11 node settings: a PIN
// file is for a module (a module alone is set first; a key in its token
// then asks for the PIN when it opens), and sast_key is one line.
func (c Config) tokenProblems() []string {
	var errs []string
	if c.PKCS11PINFile != "" && c.PKCS11Module == "" {
		errs = append(errs, "pkcs11_pin_file: needs pkcs11_module, the module that opens the token the PIN is for (set it first)")
	}
	if strings.ContainsAny(c.SASTKey, "\x00\r\n") {
		errs = append(errs, "sast_key: a key reference is one line")
	}
	return errs
}

func (c Config) resetProblems() []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	ctl := func(s string) bool { return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) }
	if c.ResetAMIAddress != "" {
		if err := CheckAddress(c.ResetAMIAddress); err != nil {
			add("reset_ami_address %q: %v", c.ResetAMIAddress, err)
		}
		if c.ResetAMIUser == "" || ctl(c.ResetAMIUser) {
			add("reset_ami_user %q: reset_ami_address needs the manager.conf user, without control characters", c.ResetAMIUser)
		}
		if c.ResetAMISecretFile == "" || ctl(c.ResetAMISecretFile) {
			add("reset_ami_secret_file %q: reset_ami_address needs the file holding the user's secret (mode 0600)", c.ResetAMISecretFile)
		}
		if len(c.ResetCommand) > 0 {
			add("reset_command: give reset_ami_address or reset_command, not both")
		}
		if ctl(c.ResetAMICAFile) {
			add("reset_ami_ca_file %q: a control character in the path", c.ResetAMICAFile)
		}
	} else if c.ResetAMICAFile != "" {
		add("reset_ami_ca_file %q: only with reset_ami_address (the manager it verifies)", c.ResetAMICAFile)
	}
	if len(c.ResetCommand) > 0 {
		switch {
		case !filepath.IsAbs(c.ResetCommand[0]):
			add("reset_command %q: the program must be an absolute path", c.ResetCommand[0])
		case slices.ContainsFunc(c.ResetCommand, func(a string) bool { return strings.ContainsRune(a, 0) }):
			add("reset_command: an argument holds a NUL byte")
		}
	}
	if c.ResetEndpoint != "" && (!strings.Contains(c.ResetEndpoint, "{device}") || ctl(c.ResetEndpoint)) {
		add("reset_endpoint %q: want a template with {device} in it, e.g. {device} or cisco-{device}, and no control characters", c.ResetEndpoint)
	}
	if d := time.Duration(c.ResetTimeout); d < time.Second || d > 20*time.Second {
		add("reset_timeout %s: want 1s to 20s (a reset answers within the admin listener's 30s)", d)
	}
	if c.ResetPerSecond < 1 || c.ResetPerSecond > 50 {
		add("reset_per_second %d: want 1 to 50", c.ResetPerSecond)
	}
	return errs
}
