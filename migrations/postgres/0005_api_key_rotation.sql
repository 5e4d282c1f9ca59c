-- When a key was rotated (Postgres dialect; keep in step with ../sqlite). A key is
-- rotated at most once: its replacement is the key to rotate next. Keys rotated
-- before this migration have none and are treated as never rotated.
ALTER TABLE api_keys ADD COLUMN rotated_at TIMESTAMPTZ;
