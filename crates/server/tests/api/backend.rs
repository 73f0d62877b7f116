//! Says which backend this run of the suite covers, where a reader of the test output sees it.

use std::io::Write;

use waybill_store::testing::{Backend, POSTGRES_ENV};

use crate::common::TestApp;

#[tokio::test]
async fn suite_backend_is_reported() {
    let backend = Backend::from_env();
    let note = match backend {
        Backend::Sqlite => format!(
            "\n[waybill] API suite ran on SQLite. The PostgreSQL half was NOT run: set {POSTGRES_ENV} \
             (e.g. postgres://postgres@127.0.0.1:5432/test) to run it; .ci/run does.\n"
        ),
        Backend::Postgres => "\n[waybill] API suite ran on PostgreSQL.\n".to_owned(),
    };
    // Straight to the process's stderr, past the test harness's output capture.
    let _ = std::io::stderr().write_all(note.as_bytes());

    let app = TestApp::spawn().await;
    let described = app.store.describe();
    match backend {
        Backend::Sqlite => assert!(described.starts_with("sqlite://"), "{described}"),
        Backend::Postgres => assert!(described.starts_with("postgres"), "{described}"),
    }
}
