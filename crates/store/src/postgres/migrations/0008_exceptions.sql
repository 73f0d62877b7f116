-- The dashboard's exceptions and order list: one index per kind of lookup.
-- Events of one status in a store (delayed, stalled_in_transit, available_for_pickup).
CREATE INDEX tracking_events_store_status
    ON tracking_events (store_id, status, fulfillment_id, happened_at);
-- Fulfillments of one status in a store (failure, return_to_sender, available_for_pickup).
CREATE INDEX fulfillments_store_status ON fulfillments (store_id, status, updated_at);
-- Fulfillments due before a date.
CREATE INDEX fulfillments_store_eta ON fulfillments (store_id, estimated_delivery)
    WHERE estimated_delivery IS NOT NULL;
-- The order list sorted by status or by creation, newest first.
CREATE INDEX orders_store_status_created ON orders (store_id, status, created_at);
-- The order list filtered by carrier.
CREATE INDEX packages_store_carrier ON packages (store_id, lower(carrier));
