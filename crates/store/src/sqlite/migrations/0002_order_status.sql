-- The derived order status (see waybill_core::order_status), kept in the same transaction as
-- every change that moves it, so listings can filter on it.
ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'CONFIRMED';
CREATE INDEX orders_store_status ON orders (store_id, status, id);
CREATE INDEX orders_store_email ON orders (store_id, customer_email COLLATE NOCASE);
CREATE INDEX orders_store_created ON orders (store_id, created_at);
