package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Params records what was run.
type Params struct {
	Mode         string         `json:"mode"` // spawned, in-process or external
	Server       string         `json:"server"`
	Phones       int            `json:"phones"`
	Concurrency  int            `json:"concurrency"`
	PhoneKey     string         `json:"phone_key"`
	CAPFKey      string         `json:"capf_key,omitempty"` // empty for an external server
	Operation    string         `json:"operation"`
	Waiting      int            `json:"waiting"`
	WaitingDelay time.Duration  `json:"-"`
	KeyPool      int            `json:"key_pool"`
	SourceAddrs  int            `json:"source_addrs"` // 0: not spread
	TLSMax       string         `json:"tls_max"`      // "1.2" (as phones) or "1.3"
	ServerParams map[string]any `json:"server_params,omitempty"`
	CPUs         int            `json:"cpus"` // of this machine
	// DB is the database backend, sqlite or postgres (for an external
	// server: where the devices were provisioned); DBURL the PostgreSQL
	// URL without its password, DBSchema the schema the run created.
	DB string `json:"db"`
	// Nodes is the number of server nodes the run started, when more
	// than one (Server then lists their addresses, comma-separated).
	Nodes    int    `json:"nodes,omitempty"`
	DBURL    string `json:"db_url,omitempty"`
	DBSchema string `json:"db_schema,omitempty"`
}

// Report is the outcome of a run.
//
// In JSON, every duration is a number of milliseconds (a float, to the
// microsecond) under a key ending in "_ms"; the other keys are the snake
// case of the field names.
type Report struct {
	Params Params `json:"params"`

	// Attempted counts the timed phones; each ends Succeeded or Failed.
	// RetryLater counts the failed ones the server told to retry later.
	Attempted  int `json:"attempted"`
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	RetryLater int `json:"retry_later"`
	// FirstErrors holds the first MaxErrors distinct failure messages (the
	// device name replaced by DEVICE), each with its count when above 1.
	FirstErrors []string `json:"first_errors"`

	// Duration is the timed phase, from the first dial to the last
	// END_SESSION; PerSecond is Succeeded / Duration.
	Duration  time.Duration `json:"-"`
	PerSecond float64       `json:"per_second"`
	// Latencies of the succeeded sessions, dial to END_SESSION; exact
	// nearest-rank percentiles.
	LatencyP50 time.Duration `json:"-"`
	LatencyP95 time.Duration `json:"-"`
	LatencyP99 time.Duration `json:"-"`
	LatencyMax time.Duration `json:"-"`

	// ServerMeasured is set when the run started the server as a child
	// process and measured it: ServerCPU is its user+system CPU time in the
	// timed phase, CPUPerEnrollment that divided by Succeeded, and
	// PeakRSSBytes its peak resident set (VmHWM) over its whole life.
	ServerMeasured   bool          `json:"server_measured"`
	ServerCPU        time.Duration `json:"-"`
	CPUPerEnrollment time.Duration `json:"-"`
	PeakRSSBytes     int64         `json:"peak_rss_bytes"`
	// ClientCPU is the CPU time this process (the phones) used in the
	// timed phase, whatever the server mode: with an in-process server it
	// includes the server's.
	ClientCPU time.Duration `json:"-"`
	// ServerWarnings counts the WARN and ERROR lines the spawned server
	// logged until the end of the timed phase; ServerLog holds the first
	// few of them.
	ServerWarnings int      `json:"server_warnings"`
	ServerLog      []string `json:"server_log,omitempty"`
	// Nodes, when the run started several, gives each node's share; the
	// fields above are their sums (the CPU time), the largest (peak RSS)
	// or the whole run's (rate, latencies).
	Nodes []NodeReport `json:"nodes,omitempty"`

	// Waiting is the number of phones to hold in key generation,
	// WaitingReached how many got there before the timed phase, and
	// WaitingHeld how many were still held when it ended.
	// WaitingErrors holds the first distinct errors of waiting phones
	// that ended before they were released.
	Waiting        int      `json:"waiting"`
	WaitingReached int      `json:"waiting_reached"`
	WaitingHeld    int      `json:"waiting_held"`
	WaitingErrors  []string `json:"waiting_errors,omitempty"`

	// Setup is the time spent before the timed phase (server start,
	// provisioning, key pool, holding the waiting phones).
	Setup time.Duration `json:"-"`
	// DataDir is the data directory kept (Options.KeepDataDir).
	DataDir string `json:"data_dir,omitempty"`
	// Notes explain what was not measured, and why.
	Notes []string `json:"notes,omitempty"`
}

// ms converts a duration to float milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// fromMS converts float milliseconds to a duration.
func fromMS(f float64) time.Duration { return time.Duration(math.Round(f * 1e6)) }

type durationsJSON struct {
	DurationMS         float64 `json:"duration_ms"`
	LatencyP50MS       float64 `json:"latency_p50_ms"`
	LatencyP95MS       float64 `json:"latency_p95_ms"`
	LatencyP99MS       float64 `json:"latency_p99_ms"`
	LatencyMaxMS       float64 `json:"latency_max_ms"`
	ServerCPUMS        float64 `json:"server_cpu_ms"`
	CPUPerEnrollmentMS float64 `json:"cpu_per_enrollment_ms"`
	SetupMS            float64 `json:"setup_ms"`
	ClientCPUMS        float64 `json:"client_cpu_ms"`
	WaitingDelayMS     float64 `json:"waiting_delay_ms"`
}

type reportAlias Report // without the methods, for the default encoding

// MarshalJSON writes the report with durations in milliseconds.
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		reportAlias
		durationsJSON
	}{reportAlias(r), durationsJSON{
		DurationMS:         ms(r.Duration),
		LatencyP50MS:       ms(r.LatencyP50),
		LatencyP95MS:       ms(r.LatencyP95),
		LatencyP99MS:       ms(r.LatencyP99),
		LatencyMaxMS:       ms(r.LatencyMax),
		ServerCPUMS:        ms(r.ServerCPU),
		CPUPerEnrollmentMS: ms(r.CPUPerEnrollment),
		SetupMS:            ms(r.Setup),
		ClientCPUMS:        ms(r.ClientCPU),
		WaitingDelayMS:     ms(r.Params.WaitingDelay),
	}})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v struct {
		reportAlias
		durationsJSON
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report(v.reportAlias)
	d := v.durationsJSON
	r.Duration, r.LatencyP50, r.LatencyP95 = fromMS(d.DurationMS), fromMS(d.LatencyP50MS), fromMS(d.LatencyP95MS)
	r.LatencyP99, r.LatencyMax, r.ServerCPU = fromMS(d.LatencyP99MS), fromMS(d.LatencyMaxMS), fromMS(d.ServerCPUMS)
	r.CPUPerEnrollment, r.Setup, r.Params.WaitingDelay = fromMS(d.CPUPerEnrollmentMS), fromMS(d.SetupMS), fromMS(d.WaitingDelayMS)
	r.ClientCPU = fromMS(d.ClientCPUMS)
	return nil
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest value with at least p% of the values at or below it.
// It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// setLatencies sorts lat and fills in the percentiles.
func (r *Report) setLatencies(lat []time.Duration) {
	slices.Sort(lat)
	r.LatencyP50 = percentile(lat, 50)
	r.LatencyP95 = percentile(lat, 95)
	r.LatencyP99 = percentile(lat, 99)
	r.LatencyMax = percentile(lat, 100)
}

// WriteText writes the report as a small table.
func (r *Report) WriteText(w io.Writer) error {
	p := r.Params
	var b strings.Builder
	fmt.Fprintf(&b, "capf bench: %d phones, concurrency %d, phone key %s, operation %s\n", p.Phones, p.Concurrency, p.PhoneKey, p.Operation)
	srv := fmt.Sprintf("server %s (%s", p.Server, p.Mode)
	if p.CAPFKey != "" {
		srv += ", CAPF key " + p.CAPFKey
	}
	if p.DB == BackendPostgres {
		srv += ", PostgreSQL " + p.DBURL
		if p.DBSchema != "" {
			srv += " schema " + p.DBSchema
		}
	} else if p.DB != "" {
		srv += ", " + p.DB
	}
	srv += ")"
	tlsv := ", TLS " + p.TLSMax
	fmt.Fprintf(&b, "%s, %d CPUs, key pool %d, source addresses %d%s\n\n", srv, p.CPUs, p.KeyPool, p.SourceAddrs, tlsv)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("attempted", "%d", r.Attempted)
	row("succeeded", "%d", r.Succeeded)
	row("failed", "%d (retry later %d)", r.Failed, r.RetryLater)
	row("duration", "%s", r.Duration.Round(time.Millisecond))
	row("enrollments/s", "%.1f", r.PerSecond)
	row("latency p50", "%s", roundDur(r.LatencyP50))
	row("latency p95", "%s", roundDur(r.LatencyP95))
	row("latency p99", "%s", roundDur(r.LatencyP99))
	row("latency max", "%s", roundDur(r.LatencyMax))
	if r.ServerMeasured {
		row("server CPU", "%s (%s per enrollment)", r.ServerCPU.Round(time.Millisecond), roundDur(r.CPUPerEnrollment))
		row("server peak RSS", "%.1f MiB", float64(r.PeakRSSBytes)/(1<<20))
		row("server warnings", "%d", r.ServerWarnings)
	} else {
		row("server CPU, RSS", "not measured")
	}
	for i, n := range r.Nodes {
		if !r.ServerMeasured {
			row(fmt.Sprintf("node %d", i+1), "%s: %d enrollments, %.1f/s", n.Addr, n.Succeeded, n.PerSecond)
			continue
		}
		row(fmt.Sprintf("node %d", i+1), "%s: %d enrollments, %.1f/s, CPU %.0f ms (%.3f ms per enrollment), peak RSS %.1f MiB",
			n.Addr, n.Succeeded, n.PerSecond, n.ServerCPUMS, n.CPUPerEnrollmentMS, float64(n.PeakRSSBytes)/(1<<20))
	}
	row("client CPU", "%s", r.ClientCPU.Round(time.Millisecond))
	if r.Waiting > 0 {
		row("waiting", "%d held of %d (%d reached key generation), delay %s", r.WaitingHeld, r.Waiting, r.WaitingReached, p.WaitingDelay)
	}
	row("set-up", "%s", r.Setup.Round(time.Millisecond))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.FirstErrors) > 0 {
		fmt.Fprintf(&b, "\nfirst errors:\n")
		for _, e := range r.FirstErrors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if len(r.WaitingErrors) > 0 {
		fmt.Fprintf(&b, "\nwaiting phones' errors:\n")
		for _, e := range r.WaitingErrors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if len(r.ServerLog) > 0 {
		fmt.Fprintf(&b, "\nfirst server warnings:\n")
		for _, e := range r.ServerLog {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.DataDir != "" {
		fmt.Fprintf(&b, "data directory kept: %s\n", r.DataDir)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// roundDur rounds a latency for display: to 10 µs under 10 ms, else to the
// 0.1 ms.
func roundDur(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// errorLog keeps the first MaxErrors distinct messages and counts them.
type errorLog struct {
	order  []string
	counts map[string]int
}

func (e *errorLog) add(msg string) {
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	if _, ok := e.counts[msg]; !ok && len(e.order) < MaxErrors {
		e.order = append(e.order, msg)
	}
	e.counts[msg]++
}

// list returns the kept messages, each with its count when above 1.
func (e *errorLog) list() []string {
	out := make([]string, 0, len(e.order))
	for _, m := range e.order {
		if n := e.counts[m]; n > 1 {
			m = fmt.Sprintf("%s (%d×)", m, n)
		}
		out = append(out, m)
	}
	return out
}
