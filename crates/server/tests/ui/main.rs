//! Dashboard tests: the real server on a loopback port over a fresh database (a temporary SQLite
//! file, or a schema of its own on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set).
//! `http` drives `/ui` with plain HTTP requests; `browser` drives it in headless Chromium.

mod actions;
mod actions_browser;
mod browser;
mod exceptions;
mod harness;
mod http;
mod nodes;
mod reasons;
mod returns;
mod returns_auto;
mod returns_browser;
mod webhooks;
