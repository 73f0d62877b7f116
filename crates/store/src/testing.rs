//! Test support, behind the `test-support` feature: a fresh, empty database for one test, on
//! SQLite by default or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.
//!
//! On PostgreSQL each test gets its own schema (named in the connection's `search_path`), so
//! tests run in parallel on one database; the schema is dropped when the [`TestDatabase`] is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tempfile::TempDir;
use waybill_core::{NewFulfillment, NewLineItem, NewOrder, Quantity, ShipmentStatus, time};

pub use crate::postgres::run_sql;
use crate::{OpenOptions, Store, StoreError, StoreResult};

/// The environment variable that selects PostgreSQL for the tests.
pub const POSTGRES_ENV: &str = "WAYBILL_TEST_POSTGRES_URL";

/// Which backend the test suite runs on in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set (and not empty), else SQLite.
    pub fn from_env() -> Backend {
        match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.trim().is_empty() => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// One test's database. `url` can be handed to the `waybill` binary as well.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    _dir: Option<TempDir>,
    schema: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// A new empty database on the backend [`Backend::from_env`] selects.
    pub async fn new() -> StoreResult<TestDatabase> {
        match Backend::from_env() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()
                    .map_err(|e| StoreError::internal("creating a temporary directory", e))?;
                let url = format!("sqlite://{}", dir.path().join("waybill.db").display());
                Ok(TestDatabase {
                    url,
                    backend: Backend::Sqlite,
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Backend::Postgres => {
                let base = std::env::var(POSTGRES_ENV).unwrap_or_default();
                let schema = format!(
                    "wbt_{}_{}_{:08x}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    rand::random::<u32>()
                );
                run_sql(&base, &format!("CREATE SCHEMA {schema}")).await?;
                let sep = if base.contains('?') { '&' } else { '?' };
                // The schema names the connections too, so a test can find (and terminate) its own.
                let url = format!(
                    "{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}"
                );
                Ok(TestDatabase {
                    url,
                    backend: Backend::Postgres,
                    _dir: None,
                    schema: Some((base, schema)),
                })
            }
        }
    }

    /// Opens (and migrates) the store on this database.
    pub async fn open(&self) -> StoreResult<Arc<dyn Store>> {
        self.open_with(&OpenOptions::default()).await
    }

    pub async fn open_with(&self, options: &OpenOptions) -> StoreResult<Arc<dyn Store>> {
        crate::open_with(&self.url, options).await
    }

    /// The schema this test's PostgreSQL database lives in.
    pub fn postgres_schema(&self) -> Option<&str> {
        self.schema.as_ref().map(|(_, s)| s.as_str())
    }

    /// The server URL without this test's schema, for administrative connections.
    pub fn postgres_admin_url(&self) -> Option<&str> {
        self.schema.as_ref().map(|(b, _)| b.as_str())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop the schema from a thread of its own: Drop cannot await, and the test's runtime
        // may be the one calling it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::internal("starting a runtime", e))?;
            // End this test's own sessions first: one may be inside a transaction whose
            // client task lives on the runtime now blocked in this drop.
            runtime.block_on(run_sql(
                &base,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = '{schema}';
                     SET lock_timeout = '10s';
                     DROP SCHEMA IF EXISTS {schema} CASCADE"
                ),
            ))
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop a test schema: {err}");
        }
    }
}

/// An order with one line item, `L`, of `quantity` units.
pub fn one_line_order(external_id: &str, quantity: i64) -> NewOrder {
    let line = NewLineItem {
        id: "L".into(),
        product_id: None,
        variant_id: None,
        sku: None,
        title: "Item".into(),
        quantity: Quantity::new("quantity", quantity).expect("a positive test quantity"),
        price: None,
        extra: Default::default(),
    };
    NewOrder::new(
        external_id.to_owned(),
        time::now(),
        vec![line],
        Default::default(),
    )
    .expect("a valid test order")
}

/// A fulfillment of `quantity` units of line `L` (with the given id, or one generated).
pub fn units_of_l(id: Option<&str>, quantity: i64) -> NewFulfillment {
    NewFulfillment::new(
        id.map(str::to_owned),
        vec![(
            "L".into(),
            Quantity::new("quantity", quantity).expect("a positive test quantity"),
        )],
        vec![],
        ShipmentStatus::PreTransit,
    )
    .expect("a valid test fulfillment")
}
