-- +goose Up
-- The schema of keymint 0.1, which created its tables IF NOT EXISTS: a
-- database from before migrations adopts this version as it is.
CREATE TABLE IF NOT EXISTS apps (
	slug          TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	description   TEXT NOT NULL,
	scopes        TEXT NOT NULL,
	key_prefix    TEXT NOT NULL UNIQUE,
	rate_requests INTEGER,
	rate_window   INTEGER,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
	id           TEXT PRIMARY KEY,
	app          TEXT NOT NULL REFERENCES apps(slug) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	scopes       TEXT NOT NULL,
	resources    TEXT NOT NULL,
	owner        TEXT NOT NULL,
	metadata     TEXT NOT NULL,
	expires_at   INTEGER,
	enabled      INTEGER NOT NULL,
	start        TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at   INTEGER,
	rotated_at   INTEGER
);
CREATE INDEX IF NOT EXISTS keys_by_app ON keys(app, id);
CREATE TABLE IF NOT EXISTS key_secrets (
	hash       BLOB PRIMARY KEY,
	key_id     TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
	expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS key_secrets_by_key ON key_secrets(key_id);
CREATE TABLE IF NOT EXISTS idempotency (
	principal    TEXT NOT NULL,
	idem_key     TEXT NOT NULL,
	request_hash BLOB NOT NULL,
	kind         TEXT NOT NULL,
	resource_id  TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (principal, idem_key)
);
CREATE TABLE IF NOT EXISTS events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	request_id TEXT NOT NULL,
	action     TEXT NOT NULL,
	app        TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	changes    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_app ON events(app, id);
CREATE INDEX IF NOT EXISTS events_by_key ON events(key_id, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events(at);
CREATE TABLE IF NOT EXISTS settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
