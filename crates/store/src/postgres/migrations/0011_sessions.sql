-- State several Waybill processes share, and indexes for the retention purges.
--
-- Dashboard sessions: only the SHA-256 of the cookie value (hex) is kept. Sign-in throttle:
-- one row per failed sign-in (counted over a sliding window) and a block per client. Shared
-- rate limit: one row per key, counting the requests of its current window.

CREATE TABLE dashboard_sessions (
    token_hash    TEXT COLLATE "C" PRIMARY KEY,
    store_id      TEXT COLLATE "C" NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    key_ids       TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
CREATE INDEX dashboard_sessions_last_seen ON dashboard_sessions (last_seen_at);

CREATE TABLE signin_failures (
    client  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX signin_failures_client ON signin_failures (client, at);
CREATE INDEX signin_failures_at ON signin_failures (at);

CREATE TABLE signin_blocks (
    client         TEXT COLLATE "C" PRIMARY KEY,
    blocked_until  BIGINT NOT NULL
);
CREATE INDEX signin_blocks_until ON signin_blocks (blocked_until);

CREATE TABLE rate_windows (
    key           TEXT COLLATE "C" PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL
);
CREATE INDEX rate_windows_start ON rate_windows (window_start);

-- Retention: finding outbox rows still needed, and old finished deliveries and attempts.
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX webhook_deliveries_outbox_open
    ON webhook_deliveries (outbox_id) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_finished
    ON webhook_deliveries (updated_at) WHERE status IN ('delivered', 'failed');
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
CREATE INDEX automation_runs_outbox_open
    ON automation_runs (outbox_id) WHERE status IN ('pending', 'running');
