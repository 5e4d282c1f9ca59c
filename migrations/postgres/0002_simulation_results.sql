-- Results of finished simulations (Postgres dialect; keep in step with ../sqlite).
--
-- One row per (user, session id): session ids are chosen by clients, so two users may
-- pick the same one, and the user is part of every lookup so nobody reads someone
-- else's row. Saving the same (user, session id) again replaces the row.
-- Money is decimal text exactly as on the wire ("100000.00"), never a binary float.
-- Parameters, metrics, trades and the equity curve are the wire JSON, as JSONB.

CREATE TABLE simulation_results (
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Byte order, as in SQLite, so both backends list ties the same way.
    session_id       TEXT COLLATE "C" NOT NULL,
    symbols          JSONB NOT NULL,
    timeframe        TEXT NOT NULL,
    start_date       TIMESTAMPTZ NOT NULL,
    end_date         TIMESTAMPTZ NOT NULL,
    initial_capital  TEXT NOT NULL,
    final_equity     TEXT NOT NULL,
    -- NULL when undefined (not a finite number).
    total_return_pct DOUBLE PRECISION,
    total_trades     BIGINT NOT NULL CHECK (total_trades >= 0),
    reason           TEXT NOT NULL CHECK (reason IN ('completed', 'stopped', 'max_duration', 'error')),
    created_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ NOT NULL,
    params           JSONB NOT NULL,
    metrics          JSONB NOT NULL,
    trades           JSONB NOT NULL,
    equity_curve     JSONB NOT NULL,
    PRIMARY KEY (user_id, session_id)
);

-- Listings: a user's sessions, newest first.
CREATE INDEX simulation_results_user_created_idx
    ON simulation_results (user_id, created_at, session_id);
