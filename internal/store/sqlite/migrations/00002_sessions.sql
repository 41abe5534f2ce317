-- +goose Up
-- Portal sessions: the SHA-256 of the cookie's random id, the credential
-- that signed in (a key id, or root) and what it was then. No token.
CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY,
	credential TEXT NOT NULL,
	generation TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	idle_until INTEGER NOT NULL
);
CREATE INDEX sessions_by_credential ON sessions(credential);
CREATE INDEX sessions_by_idle_until ON sessions(idle_until);

