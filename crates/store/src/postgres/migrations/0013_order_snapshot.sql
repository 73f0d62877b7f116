-- The order as JSON (postgres/order_json.rs), kept on its row by the statement that records
-- each of its events (which builds it for the event anyway), so reading an order is one index
-- lookup. NULL until the order's next event, and set back to NULL by the one write that
-- records no event (a carrier scan appended to a fulfillment's history); a read then builds
-- the order from its rows.
ALTER TABLE orders ADD COLUMN snapshot JSONB;
