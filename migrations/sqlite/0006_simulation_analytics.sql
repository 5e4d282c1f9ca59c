-- Results analytics of finished simulations (SQLite dialect; keep in step with
-- ../postgres): the wire JSON of `SessionDetail.analytics` (equity with buy and hold
-- and drawdown, monthly and yearly returns, per-trade returns). NULL for rows stored
-- before analytics existed; they read back without analytics.
ALTER TABLE simulation_results ADD COLUMN analytics TEXT
    CHECK (analytics IS NULL OR json_valid(analytics));
