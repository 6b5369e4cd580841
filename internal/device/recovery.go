package device

import (
	"context"
	"fmt"
	"time"
)

// RecoverNode fails the attempts that node still holds: called when that
// node starts, every one of them was cut off by a crash or a kill. The
// devices get FailedStatus(op, ReasonServerRestart) and keep their
// operation armed, so the phones' own retries complete them. Other nodes'
// attempts are left alone: they may be live.
func (s *Service) RecoverNode(ctx context.Context, node string) (int, error) {
	n, err := s.store.FailStaleAttempts(ctx, StaleQuery{Node: node}, ReasonServerRestart)
	if err != nil {
		return 0, fmt.Errorf("recover node %s: %w", node, err)
	}
	return n, nil
}

// LongestSession is the longest a phone session can last under the given
// limits: the key-generation time, three more messages and the handshake.
func LongestSession(keyGen, message, handshake time.Duration) time.Duration {
	return keyGen + 3*message + handshake
}

// AttemptDeadline is the latest a session that claims its device at
// started, under the given limits, may still be running: the claim comes
// after the handshake, so [LongestSession] without it.
func AttemptDeadline(started time.Time, keyGen, message time.Duration) time.Time {
	return started.Add(LongestSession(keyGen, message, 0))
}

// DeadlineGrace is how long after an attempt's recorded deadline the
// sweeper still leaves it open: the deadline is the claiming node's clock,
// the sweeper reads its own, and the session's last write comes after its
// last message.
const DeadlineGrace = time.Minute

// SweepStale fails the attempts of any node whose session cannot still be
// running, as of the service's clock: their node died (or lost its
// database) without closing them. An attempt that records its deadline is
// stale DeadlineGrace after it; one that does not (stored before
// deadlines were), once it has been open longer than longest.
func (s *Service) SweepStale(ctx context.Context, longest time.Duration) (int, error) {
	now := s.now()
	n, err := s.store.FailStaleAttempts(ctx, StaleQuery{StartedBefore: now.Add(-longest), OverdueAt: now.Add(-DeadlineGrace)}, ReasonCommFailure)
	if err != nil {
		return 0, fmt.Errorf("sweep stale attempts: %w", err)
	}
	return n, nil
}

// FailDeadNodeAttempts fails the attempts of node if its registration in
// the node registry has expired, as of the service's clock, as
// SweepDeadNodes does for every dead node; a live or unknown node's
// attempts are left alone. Used before the node is forgotten.
func (s *Service) FailDeadNodeAttempts(ctx context.Context, node string) (int, error) {
	n, err := s.store.FailStaleAttempts(ctx, StaleQuery{Node: node, DeadAt: s.now()}, ReasonServerRestart)
	if err != nil {
		return 0, fmt.Errorf("fail the attempts of dead node %s: %w", node, err)
	}
	return n, nil
}

// SweepDeadNodes fails the attempts held by nodes whose registration in
// the node registry has expired, as of the service's clock: the node died
// (or lost the database for a whole term) without closing them. Its
// devices get FailedStatus(op, ReasonServerRestart) and keep their
// operation armed, as after a restart. Run by the node that holds the
// sweeper lease.
func (s *Service) SweepDeadNodes(ctx context.Context) (int, error) {
	n, err := s.store.FailStaleAttempts(ctx, StaleQuery{DeadAt: s.now()}, ReasonServerRestart)
	if err != nil {
		return 0, fmt.Errorf("sweep the attempts of dead nodes: %w", err)
	}
	return n, nil
}
