-- Exception reasons (a fixed vocabulary, `waybill_core::ExceptionReason`): on the history entry
-- that carried one (failure, return_to_sender, delayed), and the fulfillment's current one for
-- the dashboard's filters. Rows written before stay valid with NULL.
ALTER TABLE tracking_events ADD COLUMN reason TEXT;
ALTER TABLE fulfillments ADD COLUMN exception_reason TEXT;
-- The order list filtered by reason (and failures / returns by reason on the exceptions view).
CREATE INDEX fulfillments_store_reason ON fulfillments (store_id, exception_reason, status)
    WHERE exception_reason IS NOT NULL;
