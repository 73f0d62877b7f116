-- Idempotency leases that their holder renews (see idempotency.rs): each reservation carries
-- the token of the request that holds it, so a renewal, the stored answer and a release touch
-- only the reservation that request still holds, never one another request has taken over.
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT;
