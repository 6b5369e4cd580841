package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/storetest"
)

// counter is a pgx tracer that counts what the connections send: round
// trips (a statement sent alone, or a whole batch), the statements in
// them, and statement preparations (each a round trip of its own).
type counter struct {
	mu                             sync.Mutex
	trips, statements, preparation int
	sql                            []string
}

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
	c.statements++
	c.sql = append(c.sql, d.SQL)
	return ctx
}

func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
	for _, q := range d.Batch.QueuedQueries {
		c.statements++
		c.sql = append(c.sql, q.SQL)
	}
	return ctx
}

func (c *counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (c *counter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preparation++
	return ctx
}

func (c *counter) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// take returns the counts since the last take and resets them.
func (c *counter) take() (trips, statements, preparations int, sql []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	trips, statements, preparations, sql = c.trips, c.statements, c.preparation, c.sql
	c.trips, c.statements, c.preparation, c.sql = 0, 0, 0, nil
	return trips, statements, preparations, sql
}

// TestEnrollmentRoundTrips counts what each store call of a phone's
// enrolment sends to PostgreSQL, once its statements are prepared on the
// connection: every write is one round trip (one statement, or one batch
// that PostgreSQL runs as one implicit transaction), with no BEGIN and
// COMMIT around it and no statement prepared again. Before, an enrolment
// under max_concurrent_operations took 17 round trips (StartAttempt 7,
// RecordIssuance 3, FinishAttempt 5, plus the two reads): on the shared
// cores each costs CPU in the server, the driver and PostgreSQL.
func TestEnrollmentRoundTrips(t *testing.T) {
	c := &counter{}
	s, _ := openTemp(t, Options{MaxConns: 1, tracer: c}) // one connection: its statement cache is the one warmed up
	defer s.Close()
	ctx := context.Background()
	if _, err := storetest.ImportDevices(s, ctx, manyDevices(6)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der := make([]byte, 600)
	type step struct {
		name              string
		trips, statements int
		run               func(name string, id *int64) error
	}
	enrol := func(completed bool, maxOpen int) []step {
		return []step{
			{"CountOpenAttempts", 1, 1, func(string, *int64) error { _, err := s.CountOpenAttempts(ctx); return err }},
			{"GetDevice", 1, 1, func(name string, _ *int64) error { _, err := s.GetDevice(ctx, name); return err }},
			{"StartAttempt", 1, map[bool]int{true: 2, false: 1}[maxOpen > 0], func(name string, id *int64) error {
				c, err := s.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now, Node: "n1", MaxOpen: maxOpen})
				*id = c.AttemptID
				return err
			}},
			{"RecordIssuance", 1, 1, func(name string, id *int64) error {
				return s.RecordIssuance(ctx, device.Issuance{Serial: name + "-" + time.Now().Format("150405.000000000"), Device: name,
					AttemptID: *id, IssuedAt: now, NotBefore: now, NotAfter: now.AddDate(1, 0, 0), DER: der})
			}},
			{"FinishAttempt", 1, 1, func(name string, id *int64) error {
				o := device.Outcome{AttemptID: *id, Device: name, Node: "n1", FinishedAt: now, Completed: completed}
				if completed {
					o.Result = device.SuccessStatus(device.OpInstall)
					o.SetLSC = &device.Certificate{Serial: "L" + time.Now().Format("150405.000000000"), Issuer: "CN=CAPF", NotBefore: now, NotAfter: now.AddDate(1, 0, 0), DER: der}
				} else {
					o.Result = device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout)
				}
				return s.FinishAttempt(ctx, o)
			}},
		}
	}
	for i, tc := range []struct {
		name      string
		completed bool
		maxOpen   int
	}{
		{"completed, fleet limit", true, 1000},
		{"completed, no limit", true, 0},
		{"failed, fleet limit", false, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := enrol(tc.completed, tc.maxOpen)
			// The first enrolment prepares the statements on the
			// connection; the second is counted.
			for round, name := range []string{fmt.Sprintf("SEP%012X", 2*i), fmt.Sprintf("SEP%012X", 2*i+1)} {
				var id int64
				total := 0
				c.take()
				for _, st := range steps {
					if err := st.run(name, &id); err != nil {
						t.Fatalf("%s: %v", st.name, err)
					}
					trips, statements, prepared, sql := c.take()
					total += trips + prepared
					if round == 0 {
						continue
					}
					if trips != st.trips || statements != st.statements || prepared != 0 {
						t.Errorf("%s: %d round trips, %d statements, %d preparations; want %d, %d, 0:\n%q",
							st.name, trips, statements, prepared, st.trips, st.statements, sql)
					}
				}
				if round == 1 && total != len(steps) {
					t.Errorf("an enrolment took %d round trips, want %d (one per store call)", total, len(steps))
				}
			}
		})
	}
}
