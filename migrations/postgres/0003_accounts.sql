-- Human accounts (Postgres dialect; keep in step with ../sqlite).
--
-- Passwords, email verification and login lockout live on users; login sessions,
-- their rotating refresh tokens, one-time tokens, TOTP and recovery codes get tables
-- of their own. Tokens and recovery codes are stored only as HMAC-SHA256 under the
-- server's pepper; the TOTP seed, which the server must read back, is AES-256-GCM
-- ciphertext with the id of the key that sealed it.

-- NULL for users created only for API access.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
-- Failures in the current window, which started at failed_login_since.
ALTER TABLE users ADD COLUMN failed_login_count INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0);
ALTER TABLE users ADD COLUMN failed_login_since TIMESTAMPTZ;
-- Logins are refused until then; unlike status 'locked' this lapses by itself and does
-- not touch API keys or open connections.
ALTER TABLE users ADD COLUMN locked_until TIMESTAMPTZ;

CREATE TABLE login_sessions (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    -- The absolute end (created_at + the maximum session duration): refreshing
    -- never extends it.
    expires_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT CHECK (revoke_reason IN
        ('logout', 'session_limit', 'refresh_token_reused', 'password_changed', 'admin')),
    user_agent    TEXT,
    ip            TEXT,
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);

CREATE INDEX login_sessions_user_idx ON login_sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    id               UUID PRIMARY KEY,
    login_session_id UUID NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    token_hash       BYTEA NOT NULL UNIQUE,
    issued_at        TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    -- Set when exchanged for its successor; presenting it again means theft.
    used_at          TIMESTAMPTZ,
    replaced_by      UUID
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (login_session_id);

CREATE TABLE email_verification_tokens (
    token_hash BYTEA NOT NULL PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX email_verification_tokens_user_idx ON email_verification_tokens (user_id);

CREATE TABLE totp_secrets (
    user_id           UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_ciphertext BYTEA NOT NULL,
    key_id            TEXT NOT NULL,
    nonce             BYTEA NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    -- NULL until the first code confirms enrolment; only then is TOTP required.
    confirmed_at      TIMESTAMPTZ,
    -- The last accepted 30-second step: codes of it or earlier are refused (replay).
    last_used_step    BIGINT
);

CREATE TABLE recovery_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- No foreign keys: the trail outlives the users it mentions. Kinds are not CHECKed, as
-- in SQLite, where a new kind would otherwise need a table rebuild.
CREATE TABLE audit_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL,
    actor_user_id   UUID,
    subject_user_id UUID,
    kind            TEXT NOT NULL,
    ip              TEXT,
    detail          JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_at_idx ON audit_events (at, id);
CREATE INDEX audit_events_subject_idx ON audit_events (subject_user_id, at, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id, at, id);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, at, id);
