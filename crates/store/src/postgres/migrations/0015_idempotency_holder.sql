-- Idempotency leases that their holder renews: sqlite/migrations/0015_idempotency_holder.sql.
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT;
