//! Integration tests: the real router over real HTTP on a loopback port, on a fresh database
//! per test: a temporary SQLite file, or a schema of its own on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set. One binary, a module per area.

mod common;

mod adm;
mod auth;
mod automations;
mod backend;
mod concurrency;
mod conformance;
mod cross_dialect;
mod delivery_log;
mod fourthwall;
mod fulfillments;
mod hardening;
mod isolation;
mod leases;
mod lifecycle;
mod limits;
mod observability;
mod openapi;
mod orderprotection;
mod orders;
mod postgres;
mod reasons;
mod returns;
mod returns_auto;
mod shipment_status;
mod webhook_events;
mod webhooks;
