-- Stores and their API keys. Secrets are kept only as SHA-256 hashes.
CREATE TABLE stores (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    store_id      TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL UNIQUE,
    secret_prefix TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_store ON api_keys (store_id);

-- Orders. `id` is Waybill's internal id (a UUID), `external_id` the caller's.
-- `event_seq` numbers the order's outbox events (the per-subject sequence).
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    store_id        TEXT NOT NULL REFERENCES stores (id),
    external_id     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    inserted_at     INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    customer_email  TEXT,
    details         TEXT NOT NULL,
    event_seq       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (store_id, external_id)
);

-- The ledger: `fulfilled` is the sum of the line's units in live (not cancelled) fulfillments,
-- and the CHECK makes over-fulfillment impossible whatever the application does.
CREATE TABLE line_items (
    order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    position    INTEGER NOT NULL,
    product_id  TEXT,
    variant_id  TEXT,
    sku         TEXT,
    title       TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    fulfilled   INTEGER NOT NULL DEFAULT 0 CHECK (fulfilled BETWEEN 0 AND quantity),
    price       TEXT,
    extra       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_id, id)
) WITHOUT ROWID;

CREATE TABLE fulfillments (
    store_id            TEXT NOT NULL,
    id                  TEXT NOT NULL,
    order_id            TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    status              TEXT NOT NULL,
    status_label        TEXT,
    estimated_delivery  TEXT,
    delivered_at        INTEGER,
    PRIMARY KEY (store_id, id)
);
CREATE INDEX fulfillments_order ON fulfillments (order_id);

CREATE TABLE fulfillment_lines (
    store_id        TEXT NOT NULL,
    fulfillment_id  TEXT NOT NULL,
    line_item_id    TEXT NOT NULL,
    position        INTEGER NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (store_id, fulfillment_id, line_item_id),
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- One row per parcel: carrier, tracking number, tracking URL.
CREATE TABLE packages (
    store_id         TEXT NOT NULL,
    fulfillment_id   TEXT NOT NULL,
    position         INTEGER NOT NULL,
    carrier          TEXT,
    tracking_number  TEXT NOT NULL,
    tracking_url     TEXT,
    PRIMARY KEY (store_id, fulfillment_id, position),
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX packages_tracking_number ON packages (store_id, tracking_number);

CREATE TABLE tracking_events (
    id              INTEGER PRIMARY KEY,
    store_id        TEXT NOT NULL,
    fulfillment_id  TEXT NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT NOT NULL,
    happened_at     INTEGER NOT NULL,
    location        TEXT,
    received_at     INTEGER NOT NULL,
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
);
CREATE INDEX tracking_events_fulfillment ON tracking_events (store_id, fulfillment_id, happened_at, id);

-- The transactional outbox: written in the same transaction as the change it announces.
-- No foreign key to orders: an order's deletion is itself an event.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    store_id        TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    type            TEXT NOT NULL,
    fulfillment_id  TEXT,
    data            TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (order_id, seq)
);
