//! Webhooks: signing, the SSRF guard, body rendering and the dispatcher. The subscription
//! endpoints live with their dialects (`dialects::redo::webhooks`,
//! `dialects::fourthwall_webhooks`).

pub mod catalog;
pub mod dispatcher;
pub mod payload;
pub mod sign;
pub mod ssrf;

pub use dispatcher::{Clock, Dispatcher, DispatcherConfig, SystemClock};
pub use ssrf::UrlPolicy;
