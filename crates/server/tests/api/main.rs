//! Integration tests: the real router over real HTTP on a loopback port, on a temporary SQLite
//! file. One binary, a module per area.

mod common;

mod adm;
mod auth;
mod concurrency;
mod cross_dialect;
mod fourthwall;
mod fulfillments;
mod limits;
mod openapi;
mod orderprotection;
mod orders;
mod shipment_status;
mod webhooks;
