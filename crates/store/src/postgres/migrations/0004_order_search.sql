-- Order search (OrderQuery::search) finds orders by a line's SKU. External ids (bytewise, for
-- prefix ranges), customer emails and tracking numbers already have indexes of their own.
CREATE INDEX line_items_sku ON line_items (sku) WHERE sku IS NOT NULL;
