-- Idempotency keys (see idempotency.rs). A row is 'in_progress' under a lease while its first
-- request runs, then 'done' with the answer to replay, until `expires_at`.
CREATE TABLE idempotency_keys (
    store_id      TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL,
    locked_until  INTEGER,
    status        INTEGER,
    content_type  TEXT,
    body          BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (store_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Webhook signing-secret rotation: the previous secret keeps signing (beside the new one)
-- until it expires.
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret_until INTEGER;
