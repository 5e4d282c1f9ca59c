-- Users and their API keys (SQLite dialect; keep in step with ../postgres).
--
-- Ids are random UUIDs stored as hyphenated TEXT, timestamps as fixed-width
-- RFC 3339 TEXT in UTC with microseconds ("2024-01-02T03:04:05.678901Z"), which sorts
-- and compares correctly as text. Enumerations are TEXT with CHECK constraints so a
-- new plan or status is a plain migration on both backends.
-- Passwords come later as a nullable column added by a new migration: a user created
-- only for API access has none.

CREATE TABLE users (
    id         TEXT NOT NULL PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    plan       TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'professional', 'enterprise')),
    role       TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'locked')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE api_keys (
    id           TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- The public part of "stk_<prefix>_<secret>"; every authentication looks it up.
    prefix       TEXT NOT NULL UNIQUE,
    -- HMAC-SHA256 of the whole key under the server's pepper; never the key itself.
    key_hash     BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT
) STRICT;

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, created_at);
