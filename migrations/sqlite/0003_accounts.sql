-- Human accounts (SQLite dialect; keep in step with ../postgres).
--
-- Passwords, email verification and login lockout live on users; login sessions,
-- their rotating refresh tokens, one-time tokens, TOTP and recovery codes get tables
-- of their own. Tokens and recovery codes are stored only as HMAC-SHA256 under the
-- server's pepper; the TOTP seed, which the server must read back, is AES-256-GCM
-- ciphertext with the id of the key that sealed it. Timestamps are fixed-width
-- RFC 3339 text, as in 0001.

-- NULL for users created only for API access.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
-- Failures in the current window, which started at failed_login_since.
ALTER TABLE users ADD COLUMN failed_login_count INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0);
ALTER TABLE users ADD COLUMN failed_login_since TEXT;
-- Logins are refused until then; unlike status 'locked' this lapses by itself and does
-- not touch API keys or open connections.
ALTER TABLE users ADD COLUMN locked_until TEXT;

CREATE TABLE login_sessions (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    -- The absolute end (created_at + the maximum session duration): refreshing
    -- never extends it.
    expires_at    TEXT NOT NULL,
    last_used_at  TEXT NOT NULL,
    revoked_at    TEXT,
    revoke_reason TEXT CHECK (revoke_reason IN
        ('logout', 'session_limit', 'refresh_token_reused', 'password_changed', 'admin')),
    user_agent    TEXT,
    ip            TEXT,
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
) STRICT;

CREATE INDEX login_sessions_user_idx ON login_sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    id               TEXT NOT NULL PRIMARY KEY,
    login_session_id TEXT NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    token_hash       BLOB NOT NULL UNIQUE,
    issued_at        TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    -- Set when exchanged for its successor; presenting it again means theft.
    used_at          TEXT,
    replaced_by      TEXT
) STRICT;

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (login_session_id);

CREATE TABLE email_verification_tokens (
    token_hash BLOB NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE INDEX email_verification_tokens_user_idx ON email_verification_tokens (user_id);

CREATE TABLE totp_secrets (
    user_id           TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_ciphertext BLOB NOT NULL,
    key_id            TEXT NOT NULL,
    nonce             BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    -- NULL until the first code confirms enrolment; only then is TOTP required.
    confirmed_at      TEXT,
    -- The last accepted 30-second step: codes of it or earlier are refused (replay).
    last_used_step    INTEGER
) STRICT;

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- No foreign keys: the trail outlives the users it mentions. Kinds are not CHECKed so
-- a new kind needs no table rebuild (SQLite cannot alter a CHECK).
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    actor_user_id   TEXT,
    subject_user_id TEXT,
    kind            TEXT NOT NULL,
    ip              TEXT,
    detail          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
) STRICT;

CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_subject_idx ON audit_events (subject_user_id, at, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id, at, id);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, at, id);
