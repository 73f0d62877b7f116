-- The delivery log: sqlite/migrations/0008_delivery_log.sql in PostgreSQL's terms. A BEFORE
-- INSERT trigger copies the order's external id onto each delivery (from the order, or from
-- `deleted_order_refs` once the order is gone); a trigger on `orders` keeps the external id
-- of every deleted order there.

ALTER TABLE webhook_deliveries ADD COLUMN order_external_id TEXT COLLATE "C";

CREATE TABLE deleted_order_refs (
    order_id     TEXT COLLATE "C" PRIMARY KEY,
    store_id     TEXT COLLATE "C" NOT NULL,
    external_id  TEXT COLLATE "C" NOT NULL
);

CREATE FUNCTION waybill_keep_deleted_order_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_order_refs (order_id, store_id, external_id)
    VALUES (OLD.id, OLD.store_id, OLD.external_id)
    ON CONFLICT (order_id) DO NOTHING;
    RETURN OLD;
END
$$;

CREATE TRIGGER orders_keep_deleted_ref AFTER DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION waybill_keep_deleted_order_ref();

CREATE FUNCTION waybill_copy_order_external_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.order_external_id IS NULL THEN
        NEW.order_external_id := COALESCE(
            (SELECT external_id FROM orders WHERE id = NEW.order_id),
            (SELECT external_id FROM deleted_order_refs WHERE order_id = NEW.order_id));
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER webhook_deliveries_copy_external_id BEFORE INSERT ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION waybill_copy_order_external_id();

-- What is known of orders deleted before this migration: their `order.deleted` event.
INSERT INTO deleted_order_refs (order_id, store_id, external_id)
SELECT order_id, store_id, data->>'orderId' FROM outbox
WHERE type = 'order.deleted' AND jsonb_typeof(data->'orderId') = 'string'
ON CONFLICT (order_id) DO NOTHING;

UPDATE webhook_deliveries d SET order_external_id = COALESCE(
    (SELECT external_id FROM orders o WHERE o.id = d.order_id),
    (SELECT external_id FROM deleted_order_refs r WHERE r.order_id = d.order_id));

CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_log_status ON webhook_deliveries (subscription_id, status, id);
CREATE INDEX webhook_deliveries_log_open
    ON webhook_deliveries (subscription_id, id) WHERE status IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_store_log ON webhook_deliveries (store_id, id);
CREATE INDEX webhook_deliveries_external_order
    ON webhook_deliveries (store_id, order_external_id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
