-- Bumped whenever the password changes (not when its hash is upgraded to new costs):
-- a login whose password was checked against an older version gets no session.
ALTER TABLE users ADD COLUMN password_version BIGINT NOT NULL DEFAULT 0;

-- Single-use tokens that set a password: a forgotten password, or an invitation (a
-- user an operator created without one). Stored only as hashes, like verification
-- tokens.
CREATE TABLE password_tokens (
    token_hash BYTEA NOT NULL PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX password_tokens_user_idx ON password_tokens (user_id, created_at);
