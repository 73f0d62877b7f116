-- The units of an order's live fulfillments, kept on the order's row: in fulfillment (any
-- status but cancelled), shipped, and delivered. Every command that records an event on the
-- order writes them with its derived status; a new fulfillment adds its units to them instead
-- of counting the order's fulfillment lines again. (PostgreSQL: 0006_unit_counts.sql.)
ALTER TABLE orders ADD COLUMN units_in_fulfillment INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN units_shipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN units_delivered INTEGER NOT NULL DEFAULT 0;

UPDATE orders
SET units_in_fulfillment = (
        SELECT COALESCE(SUM(l.quantity), 0)
        FROM fulfillments f
        JOIN fulfillment_lines l ON l.store_id = f.store_id AND l.fulfillment_id = f.id
        WHERE f.order_id = orders.id AND f.status <> 'cancelled'),
    units_shipped = (
        SELECT COALESCE(SUM(l.quantity), 0)
        FROM fulfillments f
        JOIN fulfillment_lines l ON l.store_id = f.store_id AND l.fulfillment_id = f.id
        WHERE f.order_id = orders.id AND f.status IN (
            'in_transit', 'out_for_delivery', 'available_for_pickup', 'return_to_sender',
            'failure', 'delivered')),
    units_delivered = (
        SELECT COALESCE(SUM(l.quantity), 0)
        FROM fulfillments f
        JOIN fulfillment_lines l ON l.store_id = f.store_id AND l.fulfillment_id = f.id
        WHERE f.order_id = orders.id AND f.status = 'delivered');
