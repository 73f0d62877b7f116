-- Idempotency leases that their holder renews (see idempotency.rs): each reservation carries
-- the token of the request that holds it, so a renewal, the stored answer and a release touch
-- only the reservation that request still holds, never one another request has taken over.
-- Numbered 0015 (not 0014) because another change was expected to take 0014.
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT;
