-- The units of an order's live fulfillments, kept on the order's row: in fulfillment (any
-- status but cancelled), shipped, and delivered. Every command that records an event on the
-- order writes them with its derived status, under the order's row lock; a new fulfillment
-- reads them with that lock instead of counting the order's fulfillment lines again.
-- (SQLite counts on every write; its orders carry no such columns.)
ALTER TABLE orders
    ADD COLUMN units_in_fulfillment BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN units_shipped        BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN units_delivered      BIGINT NOT NULL DEFAULT 0;

UPDATE orders o
SET units_in_fulfillment = c.in_fulfillment,
    units_shipped = c.shipped,
    units_delivered = c.delivered
FROM (
    SELECT f.order_id,
           SUM(l.quantity) AS in_fulfillment,
           COALESCE(SUM(l.quantity) FILTER (WHERE f.status IN (
               'in_transit', 'out_for_delivery', 'available_for_pickup', 'return_to_sender',
               'failure', 'delivered')), 0) AS shipped,
           COALESCE(SUM(l.quantity) FILTER (WHERE f.status = 'delivered'), 0) AS delivered
    FROM fulfillments f
    JOIN fulfillment_lines l ON l.store_id = f.store_id AND l.fulfillment_id = f.id
    WHERE f.status <> 'cancelled'
    GROUP BY f.order_id
) c
WHERE c.order_id = o.id;
