-- Results analytics of finished simulations (Postgres dialect; keep in step with
-- ../sqlite): the wire JSON of `SessionDetail.analytics` (equity with buy and hold
-- and drawdown, monthly and yearly returns, per-trade returns). NULL for rows stored
-- before analytics existed; they read back without analytics.
ALTER TABLE simulation_results ADD COLUMN analytics JSONB;
