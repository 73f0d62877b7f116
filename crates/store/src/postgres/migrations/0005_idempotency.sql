-- Idempotency keys and webhook secret rotation: sqlite/migrations/0006_idempotency.sql.
CREATE TABLE idempotency_keys (
    store_id      TEXT COLLATE "C" NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    key           TEXT COLLATE "C" NOT NULL,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL,
    locked_until  BIGINT,
    status        INTEGER,
    content_type  TEXT,
    body          BYTEA,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (store_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret_until BIGINT;
