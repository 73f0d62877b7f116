//! The vendor dialects. Each is a thin translation between a vendor's JSON, auth and error
//! format and the core's commands; none of them talks SQL.

pub mod adm;
pub mod common;
pub mod fourthwall;
pub mod fourthwall_webhooks;
pub mod orderprotection;
pub mod redo;
