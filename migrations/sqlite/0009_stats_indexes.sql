-- Statistics and backtests read requests by creation time: all of them for a window (the stats
-- page), or those of a gate's action types (the tuning screen's backtest). Keep in step with the
-- other dialect.

CREATE INDEX action_requests_created ON action_requests (created_at);
CREATE INDEX action_requests_type_created ON action_requests (action_type, created_at);
