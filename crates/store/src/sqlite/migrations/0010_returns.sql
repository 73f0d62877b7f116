-- Returns: fulfilled units coming back (see waybill_core::returns). `line_items.returned` is
-- the line's units in live (not rejected) returns, kept by the same transaction that writes a
-- return under the writer's lock; the returns rule keeps it at most the line's fulfilled units.
ALTER TABLE line_items ADD COLUMN returned INTEGER NOT NULL DEFAULT 0 CHECK (returned >= 0);

CREATE TABLE returns (
    store_id         TEXT NOT NULL,
    id               TEXT NOT NULL,
    order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    shipment_status  TEXT NOT NULL,
    note             TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (store_id, id)
);
CREATE INDEX returns_order ON returns (order_id, created_at);
CREATE INDEX returns_store_created ON returns (store_id, created_at, id);

CREATE TABLE return_lines (
    store_id      TEXT NOT NULL,
    return_id     TEXT NOT NULL,
    line_item_id  TEXT NOT NULL,
    position      INTEGER NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    reason        TEXT NOT NULL,
    note          TEXT,
    PRIMARY KEY (store_id, return_id, line_item_id),
    FOREIGN KEY (store_id, return_id) REFERENCES returns (store_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE return_packages (
    store_id         TEXT NOT NULL,
    return_id        TEXT NOT NULL,
    position         INTEGER NOT NULL,
    carrier          TEXT,
    tracking_number  TEXT NOT NULL,
    tracking_url     TEXT,
    PRIMARY KEY (store_id, return_id, position),
    FOREIGN KEY (store_id, return_id) REFERENCES returns (store_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX return_packages_tracking ON return_packages (store_id, tracking_number);

CREATE TABLE return_history (
    id           INTEGER PRIMARY KEY,
    store_id     TEXT NOT NULL,
    return_id    TEXT NOT NULL,
    status       TEXT NOT NULL,
    message      TEXT NOT NULL,
    happened_at  INTEGER NOT NULL,
    location     TEXT,
    received_at  INTEGER NOT NULL,
    FOREIGN KEY (store_id, return_id) REFERENCES returns (store_id, id) ON DELETE CASCADE
);
CREATE INDEX return_history_return ON return_history (store_id, return_id, happened_at);
