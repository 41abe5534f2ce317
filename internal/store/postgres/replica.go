package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keymint/terraform-provider-keymint/internal/store"
)

// Replica is this process as one of several serving one database. It
// listens for invalidations on a session of its own, applies them to the
// cache strictly in commit order, acks them, and holds a lease only while
// it can prove it has heard of every committed change: one server session
// throughout (the same backend, still listening), and every invalidation
// number applied in order. A gap, an unreadable notification or another
// backend empties the cache and resyncs; nothing is ever skipped. The cache
// may answer only under the lease (LeaseValid); see docs/replicas.md.
type Replica struct {
	s     *Store
	cache *store.VerifyCache
	id    string
	host  string
	base  time.Time    // monotonic origin of deadline
	lease atomic.Int64 // the lease's end, as nanoseconds since base; 0: none
	// renewEvery: how often the lease is renewed when nothing happens.
	renewEvery time.Duration

	mu     sync.Mutex
	reason string // why there is no lease, for /readyz and the log
	pooled bool   // the listening connection is not one server session

	// skip, in tests, drops invalidation notifications it returns true for,
	// as a pooler or a lost packet would.
	skip atomic.Pointer[func(seq int64) bool]
}

func newReplica(s *Store, cache *store.VerifyCache) *Replica {
	host, _ := os.Hostname()
	r := &Replica{s: s, cache: cache, id: s.id, host: host, base: time.Now(), renewEvery: s.lease / 4, reason: "starting: no lease yet"}
	cache.Usable = r.LeaseValid
	return r
}

// ID names the replica in the replicas table.
func (r *Replica) ID() string { return r.id }

// LeaseValid reports whether the cache may answer now.
func (r *Replica) LeaseValid() bool { return r.sinceBase() < r.lease.Load() }

// Status says whether the cache answers, and if not why not.
func (r *Replica) Status() (leased bool, reason string) {
	if r.LeaseValid() {
		return true, ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason == "" {
		return false, "the lease ran out (the process was paused, or the database is slow to answer)"
	}
	return false, r.reason
}

// Pooled reports whether the invalidation connection turned out not to be
// one server session (a transaction pooler between keymint and PostgreSQL).
func (r *Replica) Pooled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pooled
}

// pooledMode gives up the lease for good and says so loudly, once.
func (r *Replica) pooledMode(why string) {
	r.mu.Lock()
	first := !r.pooled
	r.pooled = true
	r.mu.Unlock()
	if first {
		r.s.log.Error("replica: "+why+": notifications cannot be trusted there, so this replica holds no lease and every verify reads the database (correct, slower). "+
			"Give it a direct connection to PostgreSQL for invalidations with --listen-db (env KEYMINT_LISTEN_DB); queries may keep going through the pooler", "replica", r.id)
	}
	r.dropLease("no verify cache: " + why + "; every verify reads the database; set --listen-db to a direct connection")
}

func (r *Replica) sinceBase() int64 { return int64(time.Since(r.base)) }

func (r *Replica) dropLease(reason string) {
	r.lease.Store(0)
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

// Run keeps the replica current until ctx ends, reconnecting when its
// connection is lost (without a lease meanwhile: verify reads the
// database). On the way out it leaves the replicas table, so that writes
// stop waiting for it.
func (r *Replica) Run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := r.session(ctx)
		if ctx.Err() != nil {
			break
		}
		r.dropLease("the invalidation connection was lost; reconnecting: " + err.Error())
		r.s.log.Warn("replica lost its invalidation connection; verify reads the database until it is back", "replica", r.id, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	r.dropLease("stopped")
	leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := r.s.DB().ExecContext(leave, `DELETE FROM replicas WHERE id = $1`, r.id); err != nil {
		r.s.log.Warn("replica could not leave the replicas table; writes wait for its lease to end", "replica", r.id, "err", err)
	}
}

// session listens on one connection until it fails or ctx ends.
func (r *Replica) session(ctx context.Context) error {
	cfg := r.s.listenCfg.Copy()
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
	var backend int32
	var serverPort *int32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid(), inet_server_port()`).Scan(&backend, &serverPort); err != nil {
		return err
	}
	// A server that listens on another port than the one dialled is behind
	// something (PgBouncer, a proxy): unless the operator named this
	// connection as direct (--listen-db), notifications through it cannot
	// be trusted, and this replica runs without a lease.
	if !r.s.listenExplicit && serverPort != nil && uint16(*serverPort) != cfg.Port {
		r.pooledMode(fmt.Sprintf("the database connection reaches a server on port %d through port %d (a pooler or proxy)", *serverPort, cfg.Port))
		<-ctx.Done()
		return ctx.Err()
	}
	// Rows of replicas that died without leaving (kill -9) hold no lease;
	// an hour after it ended, they go.
	if _, err := conn.Exec(ctx, `DELETE FROM replicas WHERE lease_until < clock_timestamp() - interval '1 hour'`); err != nil {
		return err
	}
	// Whatever was notified before LISTEN went unheard.
	applied, err := r.resync(ctx, conn, "")
	if err != nil {
		return err
	}
	if err := r.ack(ctx, conn, backend, applied); err != nil {
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
			// Nothing but this connection's own round trip stands between
			// two renewals (the other replicas are watched beside it).
			if err := r.ack(ctx, conn, backend, applied); err != nil {
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
		switch {
		case err != nil:
			// Not understood: drop everything rather than miss it.
			applied, err = r.resync(ctx, conn, fmt.Sprintf("an unreadable invalidation (%v)", err))
		case r.skip.Load() != nil && (*r.skip.Load())(seq):
			continue
		case seq <= applied:
			// Committed before the last resync, which covered it.
		case seq == applied+1:
			r.cache.Invalidate(inv)
			applied = seq
		default:
			applied, err = r.resync(ctx, conn, fmt.Sprintf("invalidations %d to %d never arrived", applied+1, seq-1))
		}
		if err != nil {
			return err
		}
		if err := r.ack(ctx, conn, backend, applied); err != nil {
			return err
		}
	}
}

// resync gives up the lease, reads the invalidation number committed now
// and empties the cache: everything up to that number is then applied, as
// every lookup after it reads the database. Lookups under the old lease
// that finish later cannot put a row back (the cache's generation moved).
func (r *Replica) resync(ctx context.Context, conn *pgx.Conn, why string) (int64, error) {
	if why != "" {
		r.dropLease("resynchronising after " + why)
		r.s.log.Warn("replica: the invalidation stream was not complete; cache emptied", "replica", r.id, "why", why)
		if r.s.onResync != nil {
			r.s.onResync()
		}
	} else {
		r.lease.Store(0)
	}
	var applied int64
	err := conn.QueryRow(ctx, `SELECT seq FROM invalidation_seq`).Scan(&applied)
	r.cache.Clear()
	return applied, err
}

// ack records that every invalidation up to applied is applied, and takes
// the lease if the database renewed it. The local lease is measured from
// before the request left, so it ends before the writers stop waiting.
func (r *Replica) ack(ctx context.Context, conn *pgx.Conn, backend int32, applied int64) error {
	start := r.sinceBase()
	var renewed, same bool
	if err := conn.QueryRow(ctx, `SELECT renewed, same_session FROM replica_ack($1, $2, $3, $4, $5, $6)`,
		r.id, r.host, os.Getpid(), applied, r.s.lease.Microseconds(), backend).Scan(&renewed, &same); err != nil {
		return err
	}
	if !same {
		r.pooledMode("the invalidation connection is not one PostgreSQL session (a transaction pooler?)")
		return nil
	}
	if renewed {
		// A renewal that came after the lease ran out (the database slow to
		// answer, this process starved of CPU or paused) left verify reading
		// the database meanwhile: say so, with how long, for whoever asks why
		// verifies were slow then.
		if prev, now := r.lease.Load(), r.sinceBase(); prev != 0 && now > prev {
			r.s.log.Warn("replica: the lease ran out before its renewal; verify read the database meanwhile",
				"replica", r.id, "lapsed", time.Duration(now-prev), "renewal_took", time.Duration(now-start))
		}
		// A tenth of the lease covers clock-rate differences between this
		// machine and the writers'.
		r.lease.Store(start + int64(r.s.lease-r.s.lease/10))
		r.mu.Lock()
		r.reason = ""
		r.mu.Unlock()
	}
	return nil
}
