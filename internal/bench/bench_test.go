package bench

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

func ms10(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms10(7), 99, 7 * time.Millisecond},
		{"p50-of-4", ms10(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p95-of-4", ms10(1, 2, 3, 4), 95, 4 * time.Millisecond},
		{"p100-is-max", ms10(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{"p50-of-100", hundred, 50, 50 * time.Millisecond},
		{"p95-of-100", hundred, 95, 95 * time.Millisecond},
		{"p99-of-100", hundred, 99, 99 * time.Millisecond},
		{"p99-of-101", append(hundred[:100:100], 500*time.Millisecond), 99, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	var r Report
	r.setLatencies(ms10(9, 1, 5, 3, 7))
	if r.LatencyP50 != 5*time.Millisecond || r.LatencyMax != 9*time.Millisecond || r.LatencyP99 != 9*time.Millisecond {
		t.Errorf("setLatencies of unsorted values: p50 %v p99 %v max %v", r.LatencyP50, r.LatencyP99, r.LatencyMax)
	}
}

func sampleReport() *Report {
	return &Report{
		Params: Params{
			Mode: ModeSpawned, Server: "127.0.0.1:3804", Phones: 60, Concurrency: 8,
			PhoneKey: "ec256", CAPFKey: "rsa2048", Operation: "install", Waiting: 20,
			WaitingDelay: time.Minute, KeyPool: 16, SourceAddrs: 64, CPUs: 2,
			ServerParams: map[string]any{"capf_key": "rsa2048"},
		},
		Attempted: 60, Succeeded: 58, Failed: 2, RetryLater: 1,
		FirstErrors: []string{"phonesim: DEVICE: boom (2×)"},
		Duration:    1500 * time.Millisecond, PerSecond: 38.67,
		LatencyP50: 12345 * time.Microsecond, LatencyP95: 20 * time.Millisecond,
		LatencyP99: 30 * time.Millisecond, LatencyMax: 31*time.Millisecond + 7*time.Microsecond,
		ServerMeasured: true, ServerCPU: 870 * time.Millisecond, CPUPerEnrollment: 15 * time.Millisecond,
		PeakRSSBytes: 30 << 20, ServerWarnings: 3, ServerLog: []string{"level=WARN msg=x"},
		Waiting: 20, WaitingReached: 20, WaitingHeld: 19, WaitingErrors: []string{"late"},
		Setup: 2 * time.Second, ClientCPU: 400 * time.Millisecond, Notes: []string{"a note"},
	}
}

func TestReportJSON(t *testing.T) {
	r := sampleReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"attempted": 60.0, "succeeded": 58.0, "failed": 2.0, "retry_later": 1.0,
		"duration_ms": 1500.0, "latency_p50_ms": 12.345, "latency_max_ms": 31.007,
		"server_cpu_ms": 870.0, "cpu_per_enrollment_ms": 15.0, "peak_rss_bytes": float64(30 << 20),
		"waiting_held": 19.0, "client_cpu_ms": 400.0, "waiting_delay_ms": 60000.0, "per_second": 38.67, "server_measured": true,
	} {
		if raw[key] != want {
			t.Errorf("%s = %v, want %v", key, raw[key], want)
		}
	}
	if p, _ := raw["params"].(map[string]any); p["mode"] != "spawned" || p["phone_key"] != "ec256" {
		t.Errorf("params %v", raw["params"])
	}
	for key := range raw {
		if strings.ContainsAny(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Errorf("key %q is not snake case", key)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Errorf("round trip changed the report:\n%s\n%s", b, b2)
	}
	if back.LatencyP50 != r.LatencyP50 || back.Params.WaitingDelay != time.Minute {
		t.Errorf("round trip: p50 %v, waiting delay %v", back.LatencyP50, back.Params.WaitingDelay)
	}
}

func TestReportText(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"60 phones, concurrency 8, phone key ec256, operation install",
		"(spawned, CAPF key rsa2048)",
		"succeeded        58",
		"failed           2 (retry later 1)",
		"enrollments/s    38.7",
		"latency p50      12.3ms",
		"latency max      31ms",
		"870ms (15ms per enrollment)",
		"30.0 MiB",
		"19 held of 20",
		"phonesim: DEVICE: boom (2×)",
		"note: a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	r := sampleReport()
	r.ServerMeasured, r.Waiting = false, 0
	b.Reset()
	_ = r.WriteText(&b)
	if !strings.Contains(b.String(), "not measured") || strings.Contains(b.String(), "held of") {
		t.Errorf("unmeasured report:\n%s", b.String())
	}
}

func TestProc(t *testing.T) {
	// Burn some CPU so that the reading is above one tick.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = fmt.Sprint(x)
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU = %v, %v; want > 0", cpu, err)
	}
	rss, err := procPeakRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("procPeakRSS = %d, %v; want at least 1 MiB", rss, err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU of no process: no error")
	}
}

func TestParseProc(t *testing.T) {
	stat := "4242 (capf (serve) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 130 0 0 20 0 9 0 12345 1000000 5000 18446744073709551615\n"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 3800*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.8s", cpu, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 3"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
	status := "Name:\tcapf\nVmPeak:\t  123 kB\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\n"
	if v, err := parseStatusKB([]byte(status), "VmHWM"); err != nil || v != 2<<20 {
		t.Errorf("VmHWM = %d, %v; want 2 MiB", v, err)
	}
	if _, err := parseStatusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("missing key: no error")
	}
	if _, err := parseStatusKB([]byte("VmHWM: 12 pages\n"), "VmHWM"); err == nil {
		t.Error("unit other than kB: no error")
	}
}

func TestKeyPool(t *testing.T) {
	spec := phonesim.KeySpec{Type: wire.KeyEC, Curve: wire.CurveP256}
	p, err := newKeyPool(context.Background(), spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		k, err := p.KeyGen(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if k != p.keys[i%3] {
			t.Errorf("call %d: not key %d of the pool", i, i%3)
		}
	}
	if p.keys[0] == p.keys[1] || p.keys[1] == p.keys[2] {
		t.Error("the pool repeats a key")
	}
	other := phonesim.KeySpec{Type: wire.KeyEC, Curve: wire.CurveP384}
	k, err := p.KeyGen(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if ek, ok := k.(*ecdsa.PrivateKey); !ok || ek.Curve.Params().BitSize != 384 {
		t.Errorf("another kind of key: got %T, want a fresh P-384 key", k)
	}
	if _, err := newKeyPool(context.Background(), phonesim.KeySpec{Type: wire.KeyRSA, Bits: 99999}, 2); err == nil {
		t.Error("impossible key: no error")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      uint64
		want   string
	}{
		{"SEP", 0, "SEP000000000000"},
		{"SEP", 0xBEEF, "SEP00000000BEEF"},
		{"SEPBE", 1, "SEPBE0000000001"},
		{"CSFBENCH", 26, "CSFBENCH00000000001A"},
	} {
		if got := deviceName(tc.prefix, tc.n); got != tc.want {
			t.Errorf("deviceName(%q, %d) = %q, want %q", tc.prefix, tc.n, got, tc.want)
		}
	}
	for i, want := range map[int]string{0: "127.0.0.1", 249: "127.0.0.250", 250: "127.0.1.1", 63999: "127.0.255.250"} {
		if got := sourceAddr(i); got != want {
			t.Errorf("sourceAddr(%d) = %s, want %s", i, got, want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:3804": true, "localhost:1": true, "127.9.9.9:1": true, "[::1]:3804": false, "10.0.0.1:3804": false, "nonsense": false} {
		if got := isIPv4Loopback(addr); got != want {
			t.Errorf("isIPv4Loopback(%q) = %v", addr, got)
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"no-phones", Options{}, []string{"phones 0"}},
		{"bad-values", Options{Phones: 1, PhoneKey: "dsa", Operation: "delete", SourceAddrs: -1, Waiting: -1}, []string{"phone key", "operation \"delete\"", "source addresses", "waiting -1"}},
		{"external-without-data", Options{Phones: 1, Server: "127.0.0.1:3804"}, []string{"data directory", "CAPF certificate"}},
		{"external-bad-address", Options{Phones: 1, Server: "nowhere", NoProvision: true, CAFile: "x"}, []string{"server \"nowhere\""}},
		{"external-list-bad-entry", Options{Phones: 1, Server: "127.0.0.1:3804, nowhere", NoProvision: true, CAFile: "x"}, []string{"server \"nowhere\""}},
		{"external-list-repeat", Options{Phones: 1, Server: "127.0.0.1:3804,127.0.0.1:3804", NoProvision: true, CAFile: "x"}, []string{"\"127.0.0.1:3804\" listed twice"}},
		{"external-list-six", Options{Phones: 1, Server: "a:1,b:1,c:1,d:1,e:1,f:1", NoProvision: true, CAFile: "x"}, []string{"6 listed", "at most 5"}},
		{"waiting-without-install", Options{Phones: 1, Waiting: 1, Operation: "none"}, []string{"operation install"}},
		{"bad-prefix", Options{Phones: 1, NamePrefix: "PHONE"}, []string{"name prefix"}},
		{"db-not-postgres", Options{Phones: 1, DB: "mysql://db.example/capf"}, []string{"want a postgres:// URL"}},
		{"nodes-without-postgres", Options{Phones: 1, Nodes: 2}, []string{"2 nodes", "--db postgres://"}},
		{"nodes-external", Options{Phones: 1, Nodes: 2, DB: "postgres://db/capf", Server: "127.0.0.1:3804", NoProvision: true, CAFile: "x"}, []string{"only a server the run spawns"}},
		{"nodes-in-process", Options{Phones: 1, Nodes: 2, DB: "postgres://db/capf", StartServer: func(context.Context, string, string) (string, func(), error) { return "", nil, nil }}, []string{"only a server the run spawns"}},
		{"too-many-nodes", Options{Phones: 1, Nodes: MaxNodes + 1, DB: "postgres://db/capf"}, []string{"nodes 6: want 1 to 5"}},
		{"negative-nodes", Options{Phones: 1, Nodes: -1}, []string{"nodes -1"}},
		{"profile-external", Options{Phones: 1, CPUProfile: "cpu.pprof", Server: "127.0.0.1:3804", NoProvision: true, CAFile: "x"}, []string{"CPU profile is written by a server the run spawns"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o, nil)
			if fault.KindOf(err) != fault.Invalid {
				t.Errorf("error %v is not Invalid", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

// TestUnreachableDB: a --db that does not answer stops the run before any
// server starts, with an error naming the database (not its password).
func TestUnreachableDB(t *testing.T) {
	dsn := "postgres://capf:secret@/capf?host=" + t.TempDir() + "&sslmode=disable"
	_, err := Run(context.Background(), Options{Phones: 1, DB: dsn, Executable: "/nonexistent/capf"}, nil)
	if err == nil || !strings.Contains(err.Error(), "connect") || !strings.Contains(err.Error(), "postgres://capf:") {
		t.Fatalf("error %v: want a connect error naming the database", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the password", err)
	}
}

func TestServerParams(t *testing.T) {
	o, err := Options{Phones: 1, Waiting: 1, WaitingDelay: time.Hour, ServerParams: map[string]any{"max_concurrent_operations": 5, "log_level": "warn"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := serverParams(o)
	if p["capf_key"] != "rsa2048" || p["key_generation_max_time"] != "1h5m0s" || p["max_concurrent_operations"] != 5 || p["log_level"] != "warn" {
		t.Errorf("params %v", p)
	}
	if known := knownParams(); !known["capf_key"] || known["no_such_key"] {
		t.Errorf("known params %v", known)
	}
}

func TestErrorLog(t *testing.T) {
	var e errorLog
	for i := range 15 {
		e.add(fmt.Sprintf("error %d", i))
	}
	e.add("error 3")
	e.add("error 14")
	got := e.list()
	if len(got) != MaxErrors || got[3] != "error 3 (2×)" || got[0] != "error 0" {
		t.Errorf("list %q", got)
	}
}
