-- +goose Up
-- Leases timed on monotonic clocks, not the database's (docs/replicas.md).
-- A writer no longer compares lease_until with the database's clock: it
-- watches each replica's renewals counter on its own monotonic clock, and
-- waits at most the longest lease any replica registered (lease_us).
-- lease_until stays, on the database's clock, for operators and for
-- removing the rows of replicas that died an hour ago.
ALTER TABLE replicas ADD COLUMN lease_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE replicas ADD COLUMN renewals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE replicas ADD COLUMN backend_pid INTEGER NOT NULL DEFAULT 0;
DROP FUNCTION replica_ack(TEXT, TEXT, INTEGER, BIGINT, BIGINT);

-- replica_ack records that replica p_id has applied every invalidation up to
-- p_seq, in order, on the listening session p_backend. It renews the lease
-- only if that is still the session running this statement and listening
-- (through a transaction pooler it is not: notifications are lost there),
-- and no later invalidation is committed.
-- +goose StatementBegin
CREATE FUNCTION replica_ack(p_id TEXT, p_host TEXT, p_pid INTEGER, p_seq BIGINT, p_lease_us BIGINT, p_backend INTEGER,
	OUT renewed BOOLEAN, OUT same_session BOOLEAN, OUT committed BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
	before BIGINT;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	same_session := pg_backend_pid() = p_backend
		AND EXISTS (SELECT 1 FROM pg_listening_channels() c WHERE c = 'keymint_invalidate');
	SELECT seq INTO committed FROM invalidation_seq;
	renewed := same_session AND p_seq >= committed;
	SELECT acked_seq INTO before FROM replicas WHERE id = p_id;
	INSERT INTO replicas (id, host, pid, acked_seq, lease_until, lease_us, renewals, backend_pid)
		VALUES (p_id, p_host, p_pid, p_seq,
			CASE WHEN renewed THEN clock_timestamp() + p_lease_us * interval '1 microsecond' ELSE '-infinity' END,
			p_lease_us, CASE WHEN renewed THEN 1 ELSE 0 END, p_backend)
		ON CONFLICT (id) DO UPDATE SET acked_seq = greatest(replicas.acked_seq, EXCLUDED.acked_seq),
			lease_until = CASE WHEN renewed THEN EXCLUDED.lease_until ELSE replicas.lease_until END,
			renewals = replicas.renewals + CASE WHEN renewed THEN 1 ELSE 0 END,
			lease_us = EXCLUDED.lease_us, backend_pid = EXCLUDED.backend_pid;
	IF before IS DISTINCT FROM p_seq THEN
		PERFORM pg_notify('keymint_ack', '');
	END IF;
END;
$$;
-- +goose StatementEnd

-- rate_take as before, except that a key's time never moves back: after the
-- database's clock steps back, the window stays where it was (refusing
-- early, never allowing more) until the clock catches up.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rate_take(p_key TEXT, p_limit INTEGER, p_window BIGINT,
	OUT allowed BOOLEAN, OUT remaining INTEGER, OUT reset_at BIGINT, OUT now_ns BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
	width BIGINT := greatest(1, (p_window + 15) / 16);
	span  BIGINT := (p_window + width - 1) / width;
	head  BIGINT;
	newest BIGINT;
	used  INTEGER;
	oldest BIGINT;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
	now_ns := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT * 1000;
	head := now_ns / width;
	SELECT max(slot) INTO newest FROM rate_slots WHERE key_id = p_key;
	IF newest > head THEN
		head := newest;
		now_ns := head * width;
	END IF;
	SELECT coalesce(sum(n), 0), min(slot) INTO used, oldest
		FROM rate_slots WHERE key_id = p_key AND slot >= head - span AND slot <= head;
	allowed := used < p_limit;
	IF allowed THEN
		INSERT INTO rate_slots (key_id, slot, n, expires) VALUES (p_key, head, 1, (head + span + 1) * width)
			ON CONFLICT (key_id, slot) DO UPDATE SET n = rate_slots.n + 1;
		used := used + 1;
		oldest := coalesce(oldest, head);
	END IF;
	DELETE FROM rate_slots WHERE key_id = p_key AND slot < head - span;
	remaining := p_limit - used;
	reset_at := CASE WHEN oldest IS NULL THEN now_ns ELSE (oldest + span + 1) * width END;
END;
$$;
-- +goose StatementEnd
