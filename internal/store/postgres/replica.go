package postgres

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keymint/terraform-provider-keymint/internal/store"
)

// Invalidator is what a replica keeps current: its verify cache.
type Invalidator interface {
	Invalidate(store.Invalidation)
	Clear()
}

// Replica is this process as one of several serving one database. It
// listens for invalidations on a connection of its own, applies each to the
// cache, acks it, and holds a lease while it is sure it has heard of every
// committed change. The cache may answer only under the lease (LeaseValid);
// see docs/replicas.md.
type Replica struct {
	s     *Store
	cache Invalidator
	id    string
	host  string
	base  time.Time    // monotonic origin of deadline
	lease atomic.Int64 // the lease's end, as nanoseconds since base; 0: none
	// renewEvery: how often the lease is renewed when nothing happens.
	renewEvery time.Duration
}

// NewReplica makes this process a replica of s, keeping cache current once Run starts.
func (s *Store) NewReplica(cache Invalidator) *Replica {
	host, _ := os.Hostname()
	return &Replica{s: s, cache: cache, id: s.id, host: host, base: time.Now(), renewEvery: s.lease / 4}
}

// ID names the replica in the replicas table.
func (r *Replica) ID() string { return r.id }

// LeaseValid reports whether the cache may answer now.
func (r *Replica) LeaseValid() bool { return r.sinceBase() < r.lease.Load() }

func (r *Replica) sinceBase() int64 { return int64(time.Since(r.base)) }

// Run keeps the replica current until ctx ends, reconnecting when its
// connection is lost (without a lease meanwhile: verify reads the
// database). On the way out it leaves the replicas table, so that writes
// stop waiting for it.
func (r *Replica) Run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := r.session(ctx)
		r.lease.Store(0)
		if ctx.Err() != nil {
			break
		}
		r.s.log.Warn("replica lost its invalidation connection; verify reads the database until it is back", "replica", r.id, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := r.s.DB().ExecContext(leave, `DELETE FROM replicas WHERE id = $1`, r.id); err != nil {
		r.s.log.Warn("replica could not leave the replicas table; writes wait for its lease to end", "replica", r.id, "err", err)
	}
}

// session listens on one connection until it fails or ctx ends.
func (r *Replica) session(ctx context.Context) error {
	cfg := r.s.cfg.Copy()
	cfg.RuntimeParams["application_name"] = "keymint-" + r.id + "-listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	for _, stmt := range []string{"LISTEN keymint_invalidate", "LISTEN keymint_ack"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	// Rows of replicas that died without leaving (kill -9) hold no lease;
	// an hour after it ended, they go.
	if _, err := conn.Exec(ctx, `DELETE FROM replicas WHERE lease_until < clock_timestamp() - interval '1 hour'`); err != nil {
		return err
	}
	// Whatever was notified before LISTEN went unheard.
	applied, err := r.resync(ctx, conn)
	if err != nil {
		return err
	}
	if err := r.ack(ctx, conn, applied); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, r.renewEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			if err := r.ack(ctx, conn, applied); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		if n.Channel == "keymint_ack" {
			r.s.signalAck()
			continue
		}
		seq, inv, err := decodeInvalidation(n.Payload)
		if err != nil {
			// Not understood: drop everything rather than miss it.
			r.s.log.Error("replica: unreadable invalidation, cache emptied", "err", err)
			if applied, err = r.resync(ctx, conn); err != nil {
				return err
			}
		} else {
			r.cache.Invalidate(inv)
			applied = max(applied, seq)
		}
		if err := r.ack(ctx, conn, applied); err != nil {
			return err
		}
	}
}

// resync empties the cache and returns the invalidation number committed
// now: everything up to it is then applied, as every lookup reads the
// database after it.
func (r *Replica) resync(ctx context.Context, conn *pgx.Conn) (int64, error) {
	r.cache.Clear()
	var applied int64
	err := conn.QueryRow(ctx, `SELECT seq FROM invalidation_seq`).Scan(&applied)
	return applied, err
}

// ack records that every invalidation up to applied is applied, and takes
// the lease if nothing later is committed. The local lease is measured from
// before the request left, so it ends before the one the database records.
func (r *Replica) ack(ctx context.Context, conn *pgx.Conn, applied int64) error {
	start := r.sinceBase()
	var renewed bool
	if err := conn.QueryRow(ctx, `SELECT replica_ack($1, $2, $3, $4, $5)`, r.id, r.host, os.Getpid(), applied, r.s.lease.Microseconds()).Scan(&renewed); err != nil {
		return err
	}
	if renewed {
		// A tenth of the lease covers clock-rate differences between this
		// machine and the database's.
		r.lease.Store(start + int64(r.s.lease-r.s.lease/10))
	}
	return nil
}
