-- The create-fulfillment transaction straight in PostgreSQL, for pgbench: the database's own
-- rate for the work one Waybill create-fulfillment request does. Variables (pgbench -D):
-- store (the bench store's id) and norders (orders B-0 .. B-{norders-1}, prepared by
-- `waybill bench --postgres`). Run with -M prepared so variables travel as parameters.
\set n random(0, :norders - 1)
BEGIN;
SELECT id AS oid FROM orders WHERE store_id = :store AND external_id = 'B-' || :n FOR UPDATE \gset
SELECT id, quantity, fulfilled FROM line_items WHERE order_id = :oid;
INSERT INTO fulfillments (store_id, id, order_id, created_at, updated_at, status)
  VALUES (:store, gen_random_uuid()::text, :oid, 0, 0, 'pre_transit') RETURNING id AS fid \gset
UPDATE line_items SET fulfilled = fulfilled + 1
  WHERE order_id = :oid AND id = 'L' AND fulfilled + 1 <= quantity;
INSERT INTO fulfillment_lines (store_id, fulfillment_id, line_item_id, position, quantity)
  VALUES (:store, :fid, 'L', 0, 1);
INSERT INTO tracking_events (store_id, fulfillment_id, status, message, happened_at, received_at)
  VALUES (:store, :fid, 'pre_transit', 'Shipping label created', 0, 0);
UPDATE orders SET event_seq = event_seq + 1, updated_at = 0 WHERE id = :oid RETURNING event_seq AS seq \gset
INSERT INTO outbox (event_id, store_id, order_id, seq, type, fulfillment_id, created_at)
  VALUES (gen_random_uuid()::text, :store, :oid, :seq, 'fulfillment.created', :fid, 0);
COMMIT;
