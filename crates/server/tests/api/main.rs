//! Integration tests: the real router over real HTTP on a loopback port, on a temporary SQLite
//! file. One binary, a module per area.

mod common;

mod auth;
mod concurrency;
mod fulfillments;
mod orders;
mod shipment_status;
