-- When a key was rotated (SQLite dialect; keep in step with ../postgres). A key is
-- rotated at most once: its replacement is the key to rotate next. Keys rotated
-- before this migration have none and are treated as never rotated.
ALTER TABLE api_keys ADD COLUMN rotated_at TEXT;
