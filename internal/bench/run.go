package bench

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/wire"
)

// Logf receives progress lines; nil discards them.
type Logf func(format string, args ...any)

// Run runs the benchmark o describes and returns its report. When the timed
// phase ran, the report is returned even with an error (a timeout, say).
func Run(ctx context.Context, o Options, logf Logf) (rep *Report, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return nil, fault.Invalidf("bench: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	setupStart := time.Now()
	b := &bench{o: o, logf: logf}
	rep = &Report{
		Params: Params{
			Mode: o.mode(), Phones: o.Phones, Concurrency: o.Concurrency,
			PhoneKey: o.PhoneKey, Operation: o.Operation,
			Waiting: o.Waiting, KeyPool: o.KeyPool, CPUs: runtime.NumCPU(), TLSMax: tlsMax(o.TLS13),
		},
		FirstErrors: []string{},
		Waiting:     o.Waiting,
	}
	if o.Waiting > 0 {
		rep.Params.WaitingDelay = o.WaitingDelay
	}
	rep.Params.DB, rep.Params.DBURL = describeDB(o.DB)
	if o.BareCAPF {
		rep.Params.Mode, rep.Params.DB = ModeBareCAPF, ""
	}
	b.rep = rep

	if err := b.startServer(ctx); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if serr := b.stopServer(); serr != nil && err == nil {
			err = fmt.Errorf("bench: %w", serr)
		}
	}()
	rep.Params.Server = b.srv.addr
	if several := b.several(); several != nil {
		addrs := make([]string, len(several))
		for i, n := range several {
			addrs[i] = n.addr
		}
		rep.Params.Server = strings.Join(addrs, ",")
		rep.Params.Nodes = len(several)
	}
	if o.SourceAddrs > 1 && isIPv4Loopback(b.srv.addr) {
		rep.Params.SourceAddrs = o.SourceAddrs
	}

	spec, _ := phoneKeySpec(o.PhoneKey)
	logf("generating %d %s phone keys", o.KeyPool, spec)
	if b.pool, err = newKeyPool(ctx, spec, o.KeyPool); err != nil {
		return nil, fmt.Errorf("bench: phone keys: %w", err)
	}

	tctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, fmt.Errorf("bench timeout %s", o.Timeout))
	defer cancel()
	w := b.holdWaiting(tctx)
	defer w.release()
	rep.Setup = time.Since(setupStart)
	if err := tctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: holding the waiting phones: %w", context.Cause(tctx))
	}

	timedErr := b.timed(tctx)
	rep.WaitingHeld = w.held()
	if len(b.nodes) > 0 {
		b.measureEnd()
	}
	if b.external != nil {
		b.externalShares()
	}
	w.release()
	rep.WaitingErrors = w.errors()
	if timedErr != nil {
		return rep, fmt.Errorf("bench: %w", timedErr)
	}
	return rep, nil
}

// bench is the state of one run.
type bench struct {
	o     Options
	logf  Logf
	rep   *Report
	srv   *server   // the server, or the first node of several
	nodes []*server // the spawned nodes (one, or o.Nodes); none for other modes
	// external lists the nodes of an external cluster (Options.Server
	// with several addresses); nil for one.
	external []*server
	trust    []*x509.Certificate
	pool     *keyPool
	tmp      string // temporary data directory to remove
	db       string // the database of the server: "" (SQLite) or a DSN
	pgRun    *runSchema
}

// startServer reaches or starts the server, provisions the devices and
// loads the CAPF certificate.
func (b *bench) startServer(ctx context.Context) (err error) {
	o := b.o
	if o.mode() == ModeExternal {
		addrs, err := serverList(o.Server)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			b.external = append(b.external, &server{mode: ModeExternal, addr: a, dataDir: o.DataDir, stop: func() error { return nil }})
		}
		b.srv = b.external[0]
		if len(b.external) == 1 {
			b.external = nil
		}
		if !o.NoProvision {
			b.logf("provisioning %d devices in %s", o.Phones+o.Waiting, o.DataDir)
			if err := provision(ctx, o.DataDir, o.DB, o); err != nil {
				return err
			}
		}
		ca := o.CAFile
		if ca == "" {
			ca = datadir.Dir(o.DataDir).CACert()
		}
		if b.trust, err = phonesim.LoadTrust(ca); err != nil {
			return fmt.Errorf("CAPF certificate: %w", err)
		}
		b.rep.Notes = append(b.rep.Notes, "server CPU time and memory are not measured for an external server")
		return nil
	}

	b.rep.Params.CAPFKey = o.CAPFKey
	dir, err := os.MkdirTemp("", "capf-bench-")
	if err != nil {
		return err
	}
	b.tmp = dir
	defer func() {
		if err != nil {
			b.removeTmp()
			b.dropSchema()
		}
	}()
	if o.BareCAPF {
		return b.startBareCAPF(ctx, dir)
	}
	if o.DB != "" {
		if b.pgRun, err = createSchema(ctx, o.DB); err != nil {
			return err
		}
		b.db = b.pgRun.dsn
		b.rep.Params.DBSchema = b.pgRun.name
		b.logf("database: schema %s of %s", b.pgRun.name, b.rep.Params.DBURL)
	}
	params := serverParams(o)
	b.rep.Params.ServerParams = maps.Clone(params)
	exe := o.Executable
	if exe == "" && o.mode() == ModeSpawned {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find this program to spawn the server: %w", err)
		}
	}
	nodeDirs := []string{dir}
	kekFile, caFile := "", datadir.Dir(dir).CACert()
	if o.Nodes > 1 {
		// One cluster: its keys in the run's schema, one CAPF
		// certificate every node presents.
		b.logf("cluster init: %d nodes, CAPF key %s", o.Nodes, o.CAPFKey)
		if kekFile, caFile, err = initCluster(ctx, exe, dir, b.db, o.CAPFKey); err != nil {
			return err
		}
		nodeDirs = nil
		for i := range o.Nodes {
			nd := nodeDir(dir, i)
			if err := os.Mkdir(nd, 0o700); err != nil {
				return err
			}
			nodeDirs = append(nodeDirs, nd)
		}
	}
	for i, nd := range nodeDirs {
		if err := writeParams(nd, nodeParams(params, i)); err != nil {
			return err
		}
	}
	b.logf("provisioning %d devices in %s", o.Phones+o.Waiting, store.Describe(store.Options{DB: b.db, DataDir: nodeDirs[0]}))
	if err := provision(ctx, nodeDirs[0], b.db, o); err != nil {
		return err
	}
	if o.mode() == ModeInProcess {
		addr, stop, err := o.StartServer(ctx, dir, b.db)
		if err != nil {
			return fmt.Errorf("start in-process server: %w", err)
		}
		b.srv = &server{mode: ModeInProcess, addr: addr, dataDir: dir, stop: func() error { stop(); return nil }}
		b.rep.Notes = append(b.rep.Notes, "server CPU time and memory are not measured for an in-process server")
	} else {
		if b.nodes, err = spawnNodes(ctx, exe, nodeDirs, b.db, kekFile, o.CPUProfile); err != nil {
			return err
		}
		b.srv = b.nodes[0]
		if len(b.nodes) > 1 {
			nodes := b.nodes
			b.srv = &server{mode: ModeSpawned, addr: nodes[0].addr, dataDir: dir, pid: nodes[0].pid,
				stop: func() error {
					var errs []error
					for i, n := range nodes {
						if err := n.stop(); err != nil {
							errs = append(errs, fmt.Errorf("node %d: %w", i+1, err))
						}
					}
					return errors.Join(errs...)
				}}
		}
	}
	for i, n := range b.nodes {
		b.logf("node %d (%s) listening on %s", i+1, n.mode, n.addr)
	}
	if b.nodes == nil {
		b.logf("server (%s) listening on %s", b.srv.mode, b.srv.addr)
	}
	if b.trust, err = phonesim.LoadTrust(caFile); err != nil {
		_ = b.srv.stop()
		return fmt.Errorf("CAPF certificate: %w", err)
	}
	return nil
}

// stopServer stops a server the run started and removes (or reports) its
// data directory and database schema.
func (b *bench) stopServer() error {
	err := b.srv.stop()
	if b.o.KeepDataDir && b.tmp != "" {
		b.rep.DataDir = b.tmp
		if b.pgRun != nil {
			b.rep.Notes = append(b.rep.Notes, "database schema "+b.pgRun.name+" kept")
		}
		return err
	}
	b.removeTmp()
	if derr := b.dropSchema(); derr != nil && err == nil {
		err = derr
	}
	return err
}

// dropSchema drops the database schema the run created, if any.
func (b *bench) dropSchema() error {
	if b.pgRun == nil {
		return nil
	}
	err := b.pgRun.drop()
	b.pgRun = nil
	return err
}

func (b *bench) removeTmp() {
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
		b.tmp = ""
	}
}

// measureEnd computes the spawned nodes' CPU time in the timed phase
// (their sum; per node in Report.Nodes when there are several) and reads
// their peak RSS (the largest) and warnings so far; it runs before the
// waiting phones are released, whose ends the server would log and
// record.
func (b *bench) measureEnd() {
	r := b.rep
	var cpu time.Duration
	for _, n := range b.nodes {
		rss, err := procPeakRSS(n.pid)
		if err != nil || n.cpuStart < 0 || n.cpuEnd < 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("server CPU time and memory not measured (%v)", err))
			r.Nodes = nil
			return
		}
		r.PeakRSSBytes = max(r.PeakRSSBytes, rss)
		ncpu := n.cpuEnd - n.cpuStart
		cpu += ncpu
		warnings, first := n.warnings(5)
		r.ServerWarnings += warnings
		r.ServerLog = append(r.ServerLog, first[:min(len(first), 5-len(r.ServerLog))]...)
		if len(b.nodes) > 1 {
			nr := NodeReport{Addr: n.addr, Succeeded: n.succeeded, ServerCPUMS: ms(ncpu), PeakRSSBytes: rss}
			if r.Duration > 0 {
				nr.PerSecond = float64(n.succeeded) / r.Duration.Seconds()
			}
			if n.succeeded > 0 {
				nr.CPUPerEnrollmentMS = ms(ncpu / time.Duration(n.succeeded))
			}
			r.Nodes = append(r.Nodes, nr)
		}
	}
	r.ServerMeasured = true
	r.ServerCPU = cpu
	if r.Succeeded > 0 {
		r.CPUPerEnrollment = r.ServerCPU / time.Duration(r.Succeeded)
	}
}

// phoneOptions returns the simulator options of phone number i (timed
// phones first, then the waiting ones).
func (b *bench) phoneOptions(i int) phonesim.Options {
	o := phonesim.Options{
		Trust:          b.trust,
		DeviceName:     deviceName(b.o.NamePrefix, b.o.Offset+uint64(i)),
		AuthMode:       phonesim.AuthModeNull,
		KeyGen:         b.pool.KeyGen,
		Retries:        -1,
		MessageTimeout: b.o.MessageTimeout,
	}
	if b.several() != nil {
		o.Servers = b.capfList(i)
	} else {
		o.Server = b.srv.addr
	}
	if !b.o.TLS13 {
		o.MaxVersion = tls.VersionTLS12
	}
	if n := b.rep.Params.SourceAddrs; n > 1 {
		o.LocalAddr = sourceAddr(i % n)
	}
	return o
}

// outcome classifies the end of a phone's run: ok, or a message (the
// device name replaced by DEVICE) and whether the server said RETRY_LATER.
func (b *bench) outcome(name string, res *phonesim.Result, err error) (ok, retryLater bool, msg string) {
	anon := func(s string) string { return strings.ReplaceAll(s, name, "DEVICE") }
	if err != nil {
		return false, errors.Is(err, phonesim.ErrRetryLater), anon(err.Error())
	}
	want := wire.ReasonNoAction
	if b.o.Operation == string(device.OpInstall) {
		want = wire.ReasonSuccess
	}
	if res.EndReason != want || (want == wire.ReasonSuccess && res.Installed == nil) {
		msg = fmt.Sprintf("END_SESSION %s (%d), want %s", res.EndReason, uint8(res.EndReason), want)
		if res.ReasonInfo != "" {
			msg += ": " + anon(res.ReasonInfo)
		}
		return false, false, msg
	}
	return true, false, ""
}

// timed runs the timed phones and fills in the counts, rate and latencies.
func (b *bench) timed(ctx context.Context) error {
	o, r := b.o, b.rep
	lat := make([]time.Duration, o.Phones)
	okFlags := make([]bool, o.Phones)
	var (
		mu         sync.Mutex
		errs       errorLog
		next       atomic.Int64
		done, fail atomic.Int64
		wg         sync.WaitGroup
	)
	b.markCPU(true)
	clientStart, clientErr := procCPU(os.Getpid())
	b.logf("timed phase: %d phones on %d workers", o.Phones, o.Concurrency)
	start := time.Now()
	stopProgress := b.progress(start, &done, &fail)
	for range min(o.Concurrency, o.Phones) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Phones || ctx.Err() != nil {
					return
				}
				po := b.phoneOptions(i)
				t0 := time.Now()
				res, err := phonesim.Run(ctx, po)
				lat[i] = time.Since(t0)
				ok, retry, msg := b.outcome(po.DeviceName, res, err)
				okFlags[i] = ok
				done.Add(1)
				if several := b.several(); ok && several != nil {
					mu.Lock()
					for _, n := range several {
						if n.addr == res.Server {
							n.succeeded++
						}
					}
					mu.Unlock()
				}
				if !ok {
					fail.Add(1)
					mu.Lock()
					errs.add(msg)
					if retry {
						r.RetryLater++
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	r.Duration = time.Since(start)
	b.markCPU(false)
	if clientEnd, err := procCPU(os.Getpid()); err == nil && clientErr == nil {
		r.ClientCPU = clientEnd - clientStart
	}
	stopProgress()

	r.Attempted = int(done.Load())
	succeeded := make([]time.Duration, 0, o.Phones)
	for i, ok := range okFlags {
		if ok {
			succeeded = append(succeeded, lat[i])
		}
	}
	r.Succeeded = len(succeeded)
	r.Failed = r.Attempted - r.Succeeded
	r.FirstErrors = errs.list()
	r.setLatencies(succeeded)
	if r.Duration > 0 {
		r.PerSecond = float64(r.Succeeded) / r.Duration.Seconds()
	}
	if r.Attempted < o.Phones {
		return fmt.Errorf("only %d of %d phones ran: %w", r.Attempted, o.Phones, context.Cause(ctx))
	}
	return nil
}

// markCPU reads each spawned node's CPU time so far, at the start or the
// end of the timed phase (-1 when it cannot be read).
func (b *bench) markCPU(start bool) {
	for _, n := range b.nodes {
		cpu, err := procCPU(n.pid)
		if err != nil {
			cpu = -1
		}
		if start {
			n.cpuStart = cpu
		} else {
			n.cpuEnd = cpu
		}
	}
}

// progress logs the count of finished phones every 5 s until stopped.
func (b *bench) progress(start time.Time, done, fail *atomic.Int64) (stop func()) {
	t := time.NewTicker(5 * time.Second)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				el := time.Since(start)
				d := done.Load()
				b.logf("%s: %d/%d done, %d failed, %.0f/s", el.Round(time.Second), d, b.o.Phones, fail.Load(), float64(d)/el.Seconds())
			}
		}
	})
	return func() { t.Stop(); close(quit); wg.Wait() }
}

// waiters are the phones held in key generation.
type waiters struct {
	reached, ended []atomic.Bool
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	once           sync.Once
	mu             sync.Mutex
	errs           errorLog // of phones that ended before release
}

// errors returns the first distinct errors of the waiting phones.
func (w *waiters) errors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs.list()
}

// held returns how many waiting phones are in key generation now.
func (w *waiters) held() int {
	n := 0
	for i := range w.reached {
		if w.reached[i].Load() && !w.ended[i].Load() {
			n++
		}
	}
	return n
}

// release ends the waiting phones (they hang up) and waits for them.
func (w *waiters) release() {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

// holdWaiting connects the waiting phones, Concurrency at a time, and
// returns once each has reached key generation or ended, or ctx is done.
func (b *bench) holdWaiting(ctx context.Context) *waiters {
	o := b.o
	wctx, cancel := context.WithCancel(ctx)
	w := &waiters{reached: make([]atomic.Bool, o.Waiting), ended: make([]atomic.Bool, o.Waiting), cancel: cancel}
	if o.Waiting == 0 {
		return w
	}
	b.logf("holding %d phones in key generation (delay %s)", o.Waiting, o.WaitingDelay)
	start := time.Now()
	slots := make(chan struct{}, o.Concurrency)
	events := make(chan struct{}, o.Waiting)
	started := 0
spawn:
	for i := range o.Waiting {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break spawn
		}
		started++
		po := b.phoneOptions(o.Phones + i)
		po.KeygenDelay, po.ProgressInterval = o.WaitingDelay, o.WaitingProgress
		var signal sync.Once
		arrive := func() {
			signal.Do(func() {
				<-slots
				events <- struct{}{}
			})
		}
		po.KeyGen = func(ctx context.Context, spec phonesim.KeySpec) (crypto.Signer, error) {
			w.reached[i].Store(true)
			arrive()
			return b.pool.KeyGen(ctx, spec)
		}
		w.wg.Go(func() {
			res, err := phonesim.Run(wctx, po)
			w.ended[i].Store(true)
			if wctx.Err() == nil {
				if ok, _, msg := b.outcome(po.DeviceName, res, err); !ok {
					w.mu.Lock()
					w.errs.add(msg)
					w.mu.Unlock()
				}
			}
			arrive()
		})
	}
wait:
	for range started {
		select {
		case <-events:
		case <-ctx.Done():
			break wait
		}
	}
	reached := 0
	for i := range w.reached {
		if w.reached[i].Load() {
			reached++
		}
	}
	b.rep.WaitingReached = reached
	b.logf("%d of %d waiting phones in key generation after %s", reached, o.Waiting, time.Since(start).Round(time.Millisecond))
	return w
}

// tlsMax names the highest TLS version the phones offer.
func tlsMax(tls13 bool) string {
	if tls13 {
		return "1.3"
	}
	return "1.2"
}
