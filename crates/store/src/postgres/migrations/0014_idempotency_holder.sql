-- Idempotency leases that their holder renews: sqlite/migrations/0014_idempotency_holder.sql.
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT;
