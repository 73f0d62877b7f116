-- Waybill's schema on PostgreSQL: the same tables and rules as the SQLite schema
-- (sqlite/migrations/0001_init.sql and 0002_order_status.sql), in PostgreSQL's types.
-- Identifiers are compared bytewise (COLLATE "C") so that UUIDv7 ids sort in creation order
-- whatever the database's default collation is.

CREATE TABLE stores (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT COLLATE "C" PRIMARY KEY,
    store_id      TEXT COLLATE "C" NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL UNIQUE,
    secret_prefix TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_store ON api_keys (store_id);

-- `event_seq` numbers the order's outbox events; `status` is the derived order status.
CREATE TABLE orders (
    id              TEXT COLLATE "C" PRIMARY KEY,
    store_id        TEXT COLLATE "C" NOT NULL REFERENCES stores (id),
    external_id     TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    inserted_at     BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    customer_email  TEXT,
    details         JSONB NOT NULL,
    event_seq       BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'CONFIRMED',
    UNIQUE (store_id, external_id)
);
CREATE INDEX orders_store_status ON orders (store_id, status, id);
CREATE INDEX orders_store_email ON orders (store_id, lower(customer_email));
CREATE INDEX orders_store_created ON orders (store_id, created_at);

-- The ledger: `fulfilled` counts the line's units in live fulfillments; the CHECK makes
-- over-fulfillment impossible whatever the application does.
CREATE TABLE line_items (
    order_id    TEXT COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    id          TEXT COLLATE "C" NOT NULL,
    position    INTEGER NOT NULL,
    product_id  TEXT,
    variant_id  TEXT,
    sku         TEXT,
    title       TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    fulfilled   INTEGER NOT NULL DEFAULT 0 CHECK (fulfilled BETWEEN 0 AND quantity),
    price       TEXT,
    extra       JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_id, id)
);

CREATE TABLE fulfillments (
    store_id            TEXT COLLATE "C" NOT NULL,
    id                  TEXT COLLATE "C" NOT NULL,
    order_id            TEXT COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    status              TEXT NOT NULL,
    status_label        TEXT,
    estimated_delivery  TEXT,
    delivered_at        BIGINT,
    PRIMARY KEY (store_id, id)
);
CREATE INDEX fulfillments_order ON fulfillments (order_id);

CREATE TABLE fulfillment_lines (
    store_id        TEXT COLLATE "C" NOT NULL,
    fulfillment_id  TEXT COLLATE "C" NOT NULL,
    line_item_id    TEXT COLLATE "C" NOT NULL,
    position        INTEGER NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (store_id, fulfillment_id, line_item_id),
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
);

CREATE TABLE packages (
    store_id         TEXT COLLATE "C" NOT NULL,
    fulfillment_id   TEXT COLLATE "C" NOT NULL,
    position         INTEGER NOT NULL,
    carrier          TEXT,
    tracking_number  TEXT NOT NULL,
    tracking_url     TEXT,
    PRIMARY KEY (store_id, fulfillment_id, position),
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
);
CREATE INDEX packages_tracking_number ON packages (store_id, tracking_number);

CREATE TABLE tracking_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id        TEXT COLLATE "C" NOT NULL,
    fulfillment_id  TEXT COLLATE "C" NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT NOT NULL,
    happened_at     BIGINT NOT NULL,
    location        JSONB,
    received_at     BIGINT NOT NULL,
    FOREIGN KEY (store_id, fulfillment_id) REFERENCES fulfillments (store_id, id) ON DELETE CASCADE
);
CREATE INDEX tracking_events_fulfillment ON tracking_events (store_id, fulfillment_id, happened_at, id);

-- The transactional outbox, written in the same transaction as the change it announces.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT COLLATE "C" NOT NULL UNIQUE,
    store_id        TEXT COLLATE "C" NOT NULL,
    order_id        TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    type            TEXT NOT NULL,
    fulfillment_id  TEXT,
    data            JSONB,
    created_at      BIGINT NOT NULL,
    UNIQUE (order_id, seq)
);
