-- Bumped whenever the password changes (not when its hash is upgraded to new costs):
-- a login whose password was checked against an older version gets no session.
ALTER TABLE users ADD COLUMN password_version INTEGER NOT NULL DEFAULT 0;

-- Single-use tokens that set a password: a forgotten password, or an invitation (a
-- user an operator created without one). Stored only as hashes, like verification
-- tokens.
CREATE TABLE password_tokens (
    token_hash BLOB NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE INDEX password_tokens_user_idx ON password_tokens (user_id, created_at);
