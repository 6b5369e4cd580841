// Package config holds the CAPF service parameters: plain data with safe
// defaults, a strict loader (unknown keys are refused) and a Validate that
// reports every problem at once. The parameters live in capf.json in the
// data directory; `capf serve` writes the defaults there on first start so
// administrators can see and edit them, and reads them at start-up (a
// restart applies a change, as in CallManager).
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
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
	{"capf_key", "Key of the CAPF certificate when it is first created: rsa2048, rsa3072, rsa4096, ec256, ec384."},
	{"certificate_validity_days", "Validity of issued LSCs in days, 1 to 1825 (CallManager 5.0 expressed it in years: 5 years = 1825)."},
	{"default_key", "Key a phone is asked to generate when its record names none: rsa512 … rsa4096, ec256, ec384, ec521."},
	{"key_generation_max_time", "How long a phone may take to generate its key pair, REQUEST_IN_PROGRESS included (old phones: 30+ minutes)."},
	{"key_generation_max_attempts", "How many times a phone is asked to generate a key in one session before the upgrade fails."},
	{"manufacturer_ca_bundle", "PEM file of manufacturer CA certificates that MICs (and SUDI certificates) must chain to; relative to the data directory. Empty: MIC authentication fails."},
	{"allow_expired_mic", "Accept MICs that have expired (many 79xx MICs have). Off unless the administrator decides otherwise."},
	{"tls_handshake_timeout", "Deadline for a phone's TLS handshake."},
	{"message_timeout", "Deadline for each protocol message from a phone, outside key generation."},
	{"log_level", "Trace level: debug, info, warn or error."},
	{"log_format", "text (key=value lines) or json (one JSON object per line, for log shippers)."},
	{"max_concurrent_operations", "Certificate operations that may run at once (phones generating keys included); beyond it a phone is told RETRY_LATER. 0: no limit."},
	{"max_connections_per_address", "Open connections allowed from one IP address; more are closed at once. 0: no limit."},
	{"max_connections", "Open phone connections allowed in total; more are closed at once, so a flood cannot use up the file descriptors. 0: derived from the descriptor limit (limit - 64 - 10%, at most 100000), leaving room for the database and the metrics listener."},
	{"retry_delay", "The delay sent with RETRY_LATER when the service is busy."},
	{"maintenance_windows", "When certificate operations may start, e.g. [\"Mon-Fri 22:00-06:00\", \"Sat,Sun 00:00-24:00\"]. Outside them phones with a pending operation are told to retry later. Empty: always."},
	{"maintenance_time_zone", "Time zone of the maintenance windows (IANA name such as Europe/Berlin, or Local, or UTC)."},
	{"metrics_listen", "Address of the Prometheus /metrics and /healthz listener. Empty: off."},
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
	}
}

// Validate returns every problem in c at once, as one Invalid error.
func (c Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Listen == "" {
		add("listen: empty")
	}
	switch c.TLSProfile {
	case "modern", "legacy":
	default:
		add("tls_profile %q: want modern or legacy", c.TLSProfile)
	}
	switch c.CAKey {
	case "rsa2048", "rsa3072", "rsa4096", "ec256", "ec384":
	default:
		add("capf_key %q: want rsa2048, rsa3072, rsa4096, ec256 or ec384", c.CAKey)
	}
	if c.TLSProfile == "legacy" && strings.HasPrefix(c.CAKey, "ec") {
		add("tls_profile legacy needs an RSA CAPF key: 79xx phones only do RSA key exchange")
	}
	if c.CertificateValidityDays < 1 || c.CertificateValidityDays > 1825 {
		add("certificate_validity_days %d: want 1 to 1825", c.CertificateValidityDays)
	}
	switch c.DefaultKey {
	case "rsa512", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ec521":
	default:
		add("default_key %q: want rsa512, rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384 or ec521", c.DefaultKey)
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
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log_format %q: want text or json", c.LogFormat)
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
	if len(errs) == 0 {
		return nil
	}
	return fault.Invalidf("service parameters: %s", strings.Join(errs, "; "))
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
// defaults; unknown keys, bad values and trailing data are errors naming the
// file.
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
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return c, fault.Invalidf("%s: %v", path, err)
	}
	if dec.More() {
		return c, fault.Invalidf("%s: data after the JSON object", path)
	}
	// Decode key by key so that every problem names its parameter.
	var errs []string
	for key, val := range raw {
		one := json.NewDecoder(bytes.NewReader(append(append([]byte(`{"`+key+`":`), val...), '}')))
		one.DisallowUnknownFields()
		if err := one.Decode(&c); err != nil {
			if strings.Contains(err.Error(), "unknown field") {
				errs = append(errs, fmt.Sprintf("unknown field %q", key))
			} else {
				errs = append(errs, fmt.Sprintf("%s: %v", key, err))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return c, fault.Invalidf("%s: %s", path, strings.Join(errs, "; "))
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteIfMissing writes c to dataDir/capf.json unless the file exists.
// It reports whether it wrote the file.
func WriteIfMissing(dataDir string, c Config) (bool, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return false, fmt.Errorf("write service parameters: %w", err)
	}
	return true, nil
}

// Resolve returns p relative to dataDir unless it is absolute or empty.
func Resolve(dataDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dataDir, p)
}
