-- +goose Up
-- Portal sessions: the SHA-256 of the cookie's random id, the credential
-- that signed in (a key id, or root) and what it was then. No token.
CREATE TABLE sessions (
	hash       BYTEA PRIMARY KEY,
	credential TEXT NOT NULL,
	generation TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	idle_until BIGINT NOT NULL
);
CREATE INDEX sessions_by_credential ON sessions(credential);
CREATE INDEX sessions_by_idle_until ON sessions(idle_until);

