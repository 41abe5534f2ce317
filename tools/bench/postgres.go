package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// churnRate is the writes per second (rotations, disables, revokes of keys
// the verify load does not use) that the churn figures run beside verify.
const churnRate = 10

// churnKeys creates the keys the churn writes work through.
func churnKeys(ctx context.Context, c *keymint.Client, n int) ([]string, error) {
	ids := make([]string, n)
	_, err := parallel(n, 8, func(i int) error {
		k, err := c.CreateKey(ctx, "app-0", wire.CreateKey{Name: fmt.Sprintf("churn %d", i), Scopes: []string{"read:data"}})
		ids[i] = k.Key.ID
		return err
	})
	return ids, err
}

// benchChurn measures verify at 64 connections without and with churnRate
// writes per second, alternating run by run.
func benchChurn(ctx context.Context, urls []string, token string, reqs []request, c *keymint.Client, ids []string) (without, with []loadResult, err error) {
	next := 0
	for run := range *runs {
		logf("churn: run %d/%d on %d server(s)", run+1, *runs, len(urls))
		without = append(without, loadMany(urls, token, reqs, 64, *duration, *maxRequests))
		stop, done := make(chan struct{}), make(chan error, 1)
		go func() {
			t := time.NewTicker(time.Second / churnRate)
			defer t.Stop()
			for {
				select {
				case <-stop:
					done <- nil
					return
				case <-t.C:
				}
				// Each key is rotated, then disabled, then revoked.
				id := ids[(next/3)%len(ids)]
				var err error
				switch next % 3 {
				case 0:
					_, err = c.RotateKey(ctx, id, wire.RotateKey{GracePeriod: "0s"})
				case 1:
					f := false
					_, err = c.UpdateKey(ctx, id, wire.UpdateKey{Enabled: &f})
				case 2:
					err = c.RevokeKey(ctx, id)
				}
				next++
				if err != nil {
					done <- err
					return
				}
			}
		}()
		with = append(with, loadMany(urls, token, reqs, 64, *duration, *maxRequests))
		close(stop)
		if err := <-done; err != nil {
			return nil, nil, fmt.Errorf("churn write: %w", err)
		}
	}
	return without, with, nil
}

// benchPostgres runs two replicas on a throwaway PostgreSQL (fsync on):
// creates, aggregate verify through both, verify under churn, and how long a
// revoke takes to answer, healthy and with one replica paused.
func benchPostgres(ctx context.Context, work string, r *report) error {
	pg, err := pgtest.Start("-c", "fsync=on")
	if err != nil {
		return err
	}
	defer pg.Stop()
	dsn := pg.DSN("postgres")
	env := []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken, "KEYMINT_LOG_FORMAT=json"}
	var replicas []*proc
	for range 2 {
		p, err := startServer(work, *keymintBin, env, "serve", "--db", dsn)
		if err != nil {
			return err
		}
		defer p.stop()
		replicas = append(replicas, p)
	}
	urls := []string{replicas[0].url(), replicas[1].url()}
	c, err := keymint.New(urls[0], benchRootToken)
	if err != nil {
		return err
	}
	n := min(*verifyKeys, 5000)
	logf("postgres: seeding %d keys through the API", n)
	// No rate limit: on PostgreSQL a limit is counted in the database, a
	// round trip per verify (RateLimitedPG measures that).
	seed, err := seedKeys(ctx, c, n, nil)
	if err != nil {
		return err
	}
	r.CreatePG = seed.created
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// Traffic from the first moment: every request of the first 5 s counts.
	logf("postgres: verify right after seeding")
	r.ColdAfterSeed = append(r.ColdAfterSeed, watchDB(db, func() loadResult {
		return loadWarm(urls, seed.cred.Secret, seed.reqs, 16, 0, coldWindow, *maxRequests)
	}))
	if err := checkVerdicts(urls[1], seed.cred.Secret, seed.reqs[:2000]); err != nil {
		return err
	}
	if err := waitLeases(db, 2); err != nil {
		return err
	}
	r.PG = map[int][]loadResult{}
	for _, conns := range []int{16, 64} {
		for run := range *runs {
			logf("postgres verify load: %d connections over 2 replicas, run %d/%d", conns, run+1, *runs)
			l := loadMany(urls, seed.cred.Secret, seed.reqs, conns, *duration, *maxRequests)
			if l.Errors > 0 {
				return fmt.Errorf("%d errors from the replicas", l.Errors)
			}
			r.PG[conns] = append(r.PG[conns], l)
		}
	}
	if !*skipWrk {
		dir := filepath.Join(work, "pg-wrk")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		script, err := wrkScript(dir, seed.cred.Secret, seed.reqs)
		if err != nil {
			return err
		}
		for _, conns := range []int{16, 64} {
			for run := range *runs {
				logf("postgres verify load by wrk: %d connections, two generators, run %d/%d", conns, run+1, *runs)
				l, err := runWrkSplit(urls, script, conns, *duration)
				if err != nil {
					return err
				}
				if l.Errors > 0 {
					return fmt.Errorf("wrk: %d errors from the replicas", l.Errors)
				}
				r.WrkPG[conns] = append(r.WrkPG[conns], l)
			}
		}
	}
	ids, err := churnKeys(ctx, c, 100)
	if err != nil {
		return err
	}
	if r.ChurnPGOff, r.ChurnPGOn, err = benchChurn(ctx, urls, seed.cred.Secret, seed.reqs, c, ids); err != nil {
		return err
	}

	// Revokes, each of a key both replicas have cached, through replica 0.
	revokeIDs, err := churnKeys(ctx, c, 200)
	if err != nil {
		return err
	}
	for _, id := range revokeIDs {
		start := time.Now()
		if err := c.RevokeKey(ctx, id); err != nil {
			return err
		}
		r.RevokeHealthy = append(r.RevokeHealthy, time.Since(start))
	}
	for i := range 3 {
		if err := waitLeases(db, 2); err != nil {
			return err
		}
		logf("postgres: revoke with a replica paused, %d/3", i+1)
		k, err := c.CreateKey(ctx, "app-0", wire.CreateKey{Name: "paused", Scopes: []string{"read:data"}})
		if err != nil {
			return err
		}
		if err := replicas[1].cmd.Process.Signal(sigStop); err != nil {
			return err
		}
		start := time.Now()
		err = c.RevokeKey(ctx, k.Key.ID)
		r.RevokePaused = append(r.RevokePaused, time.Since(start))
		_ = replicas[1].cmd.Process.Signal(sigCont)
		if err != nil {
			return err
		}
	}
	slices.Sort(r.RevokeHealthy)
	slices.Sort(r.RevokePaused)

	// A rolling deploy: replica 1 is replaced, and gets traffic as soon as
	// its /readyz says so.
	for i := range *runs {
		logf("postgres: a replica restarts, %d/%d", i+1, *runs)
		replicas[1].stop()
		p, err := startServer(work, *keymintBin, env, "serve", "--db", dsn)
		if err != nil {
			return err
		}
		defer p.stop()
		replicas[1] = p
		if err := waitReady(p.url()); err != nil {
			return err
		}
		urls[1] = p.url()
		r.ColdAfterStart = append(r.ColdAfterStart, watchDB(db, func() loadResult {
			return loadWarm(urls, seed.cred.Secret, seed.reqs, 16, 0, coldWindow, *maxRequests)
		}))
	}
	return nil
}

// watchDB runs load and notes in its result what PostgreSQL's own
// maintenance did meanwhile: vacuums and analyzes of keymint's tables (seen
// running, polled every 100 ms, or finished within the run; when, from the
// start of the run) and checkpoints that wrote buffers. On two cores shared
// with the servers and the generator, a slow request beside one of them is
// the database's work, not a replica's. It is a diagnostic: a query that
// fails is reported in the note, never fails the run.
func watchDB(db *sql.DB, load func() loadResult) loadResult {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	checkpointer := `SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter`
	var version int
	if err := db.QueryRow(`SELECT current_setting('server_version_num')::int`).Scan(&version); err == nil && version >= 170000 {
		checkpointer = `SELECT num_timed + num_requested, buffers_written FROM pg_stat_checkpointer` // PostgreSQL 17 moved them
	}
	var before, after, buffersBefore, buffersAfter int64
	beforeErr := db.QueryRow(checkpointer).Scan(&before, &buffersBefore)

	start := time.Now()
	seen := map[string]time.Duration{} // "vacuum of keys" -> when first seen running
	stop, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for _, what := range runningMaintenance(db) {
				if _, ok := seen[what]; !ok {
					seen[what] = time.Since(start)
				}
			}
		}
	}()
	l := load()
	close(stop)
	<-polled
	end := time.Now()

	for what, at := range seen {
		note("%s running at %.1f s", what, at.Seconds())
	}
	finished, err := finishedMaintenance(db, start, end)
	if err != nil {
		note("could not read pg_stat_user_tables: %v", err)
	}
	notes = append(notes, finished...)
	if beforeErr == nil {
		beforeErr = db.QueryRow(checkpointer).Scan(&after, &buffersAfter)
	}
	switch {
	case beforeErr != nil:
		note("could not read the checkpoint counts: %v", beforeErr)
	case buffersAfter > buffersBefore: // an idle timed checkpoint is counted but writes nothing
		note("%d checkpoint(s) writing %d buffers", after-before, buffersAfter-buffersBefore)
	}
	slices.Sort(notes)
	l.DB = strings.Join(notes, ", ")
	if l.DB == "" {
		l.DB = "no vacuum, analyze or checkpoint"
	}
	return l
}

// coldWindow is how long the first requests to a new replica are watched.
const coldWindow = 5 * time.Second

// waitLeases waits until n replicas hold a lease (their caches answer).
func waitLeases(db *sql.DB, n int) error {
	var got int
	for range 500 {
		if err := db.QueryRow(`SELECT count(*) FROM replicas WHERE lease_until > clock_timestamp()`).Scan(&got); err != nil {
			return err
		}
		if got == n {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // other processes' progress: no clock to inject
	}
	return fmt.Errorf("%d replicas hold a lease, want %d", got, n)
}

// runningMaintenance names the vacuums and analyzes running now ("vacuum of
// keys"); nothing if it cannot tell.
func runningMaintenance(db *sql.DB) []string {
	rows, err := db.Query(`SELECT 'vacuum of ' || relid::regclass FROM pg_stat_progress_vacuum
		UNION ALL SELECT 'analyze of ' || relid::regclass FROM pg_stat_progress_analyze`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var what string
		if rows.Scan(&what) == nil {
			out = append(out, what)
		}
	}
	return out
}

// finishedMaintenance names the (auto)vacuums and analyzes of keymint's
// tables that finished between start and end, with when.
func finishedMaintenance(db *sql.DB, start, end time.Time) ([]string, error) {
	rows, err := db.Query(`SELECT relname, last_autovacuum, last_autoanalyze FROM pg_stat_user_tables`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table string
		var vacuum, analyze sql.NullTime
		if err := rows.Scan(&table, &vacuum, &analyze); err != nil {
			return out, err
		}
		for _, run := range []struct {
			what string
			at   sql.NullTime
		}{{"vacuum", vacuum}, {"analyze", analyze}} {
			if run.at.Valid && !run.at.Time.Before(start) && !run.at.Time.After(end) {
				out = append(out, fmt.Sprintf("%s of %s finished at %.1f s", run.what, table, run.at.Time.Sub(start).Seconds()))
			}
		}
	}
	return out, rows.Err()
}
