-- The delivery log (Store::list_webhook_deliveries with a DeliveryQuery).
--
-- Each delivery keeps the external id of its order, copied when the delivery is made, so the
-- log can show and filter by the id the store knows even after the order is deleted. The copy
-- is made by a trigger (below), from the order or, once the order is gone, from
-- `deleted_order_refs`, which a trigger on `orders` fills as an order is deleted: an order
-- deleted before fan-out reached its events still gets its external id on their deliveries.

ALTER TABLE webhook_deliveries ADD COLUMN order_external_id TEXT;

CREATE TABLE deleted_order_refs (
    order_id     TEXT PRIMARY KEY,
    store_id     TEXT NOT NULL,
    external_id  TEXT NOT NULL
);

CREATE TRIGGER orders_keep_deleted_ref AFTER DELETE ON orders
BEGIN
    INSERT OR IGNORE INTO deleted_order_refs (order_id, store_id, external_id)
    VALUES (OLD.id, OLD.store_id, OLD.external_id);
END;

CREATE TRIGGER webhook_deliveries_copy_external_id AFTER INSERT ON webhook_deliveries
WHEN NEW.order_external_id IS NULL
BEGIN
    UPDATE webhook_deliveries SET order_external_id = COALESCE(
        (SELECT external_id FROM orders WHERE id = NEW.order_id),
        (SELECT external_id FROM deleted_order_refs WHERE order_id = NEW.order_id))
    WHERE id = NEW.id;
END;

-- What is known of orders deleted before this migration: their `order.deleted` event.
INSERT OR IGNORE INTO deleted_order_refs (order_id, store_id, external_id)
SELECT order_id, store_id, json_extract(data, '$.orderId') FROM outbox
WHERE type = 'order.deleted' AND json_valid(data)
  AND json_type(data, '$.orderId') = 'text';

UPDATE webhook_deliveries SET order_external_id = COALESCE(
    (SELECT external_id FROM orders o WHERE o.id = webhook_deliveries.order_id),
    (SELECT external_id FROM deleted_order_refs r WHERE r.order_id = webhook_deliveries.order_id));

-- Pages of the log, newest first, as index ranges (see delivery_log.rs).
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_log_status ON webhook_deliveries (subscription_id, status, id);
CREATE INDEX webhook_deliveries_log_open
    ON webhook_deliveries (subscription_id, id) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_store_log ON webhook_deliveries (store_id, id);
CREATE INDEX webhook_deliveries_external_order
    ON webhook_deliveries (store_id, order_external_id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
-- A delivery's attempts, latest first (its last response code; also what ON DELETE CASCADE
-- from webhook_deliveries looks up).
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
