-- Results of finished simulations (SQLite dialect; keep in step with ../postgres).
--
-- One row per (user, session id): session ids are chosen by clients, so two users may
-- pick the same one, and the user is part of every lookup so nobody reads someone
-- else's row. Saving the same (user, session id) again replaces the row.
-- Money is decimal text exactly as on the wire ("100000.00"), never a binary float.
-- Parameters, metrics, trades and the equity curve are the wire JSON, as TEXT checked
-- with json_valid() so both backends refuse the same values. Timestamps are fixed-width
-- RFC 3339 text, as in 0001.

CREATE TABLE simulation_results (
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id       TEXT NOT NULL,
    symbols          TEXT NOT NULL CHECK (json_valid(symbols)),
    timeframe        TEXT NOT NULL,
    start_date       TEXT NOT NULL,
    end_date         TEXT NOT NULL,
    initial_capital  TEXT NOT NULL,
    final_equity     TEXT NOT NULL,
    -- NULL when undefined (not a finite number; SQLite would store NaN as NULL anyway).
    total_return_pct REAL,
    total_trades     INTEGER NOT NULL CHECK (total_trades >= 0),
    reason           TEXT NOT NULL CHECK (reason IN ('completed', 'stopped', 'max_duration', 'error')),
    created_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL,
    params           TEXT NOT NULL CHECK (json_valid(params)),
    metrics          TEXT NOT NULL CHECK (json_valid(metrics)),
    trades           TEXT NOT NULL CHECK (json_valid(trades)),
    equity_curve     TEXT NOT NULL CHECK (json_valid(equity_curve)),
    PRIMARY KEY (user_id, session_id)
) STRICT;

-- Listings: a user's sessions, newest first.
CREATE INDEX simulation_results_user_created_idx
    ON simulation_results (user_id, created_at, session_id);
