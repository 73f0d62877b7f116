//! Retention keeps the tables it manages from growing under steady load: `waybill
//! bench-retention` at a small scale (a few thousand events, a few seconds of load at a fixed
//! rate), on SQLite and, when this crate was built with `WAYBILL_TEST_POSTGRES_URL`, on
//! PostgreSQL.
//!
//! With retention on (everything kept 1 s, a sweep every second), the rows of the outbox,
//! deliveries, attempts and idempotency keys level off during the load, and once every event is
//! delivered and a sweep has run, what is left does not depend on the number of events (at most
//! one delivery per order, no expired key). The same check is made on a run without retention,
//! where it must fail: the rows grow with every event. On SQLite the same holds for the bytes
//! of those tables (deleted pages are reused). On PostgreSQL the bytes are not checked here:
//! autovacuum (`autovacuum_naptime`, a minute by default) may not visit the tables during a
//! run of seconds; the long run in docs/PERFORMANCE.md shows them.

use std::process::Command;

use serde_json::Value;
use waybill_store::testing::{Backend, POSTGRES_ENV};

const BIN: &str = env!("CARGO_BIN_EXE_waybill");

/// Orders the writes go to.
const ORDERS: u64 = 40;
/// Writes per second: low enough for webhook delivery to keep up on a busy 2-core machine (on
/// PostgreSQL both share the database), and the load lasts many ages and sweeps.
const RATE: u64 = 250;
/// Events of the run with retention, and of the control without it.
const EVENTS: u64 = 4_000;
const CONTROL_EVENTS: u64 = 1_500;

/// Runs `waybill bench-retention` and returns its JSON summary (the tool itself fails if a
/// write failed or an event was not delivered, or delivered unsigned).
fn bench(postgres: Option<&str>, events: u64, retention: bool) -> Value {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WAYBILL_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["bench-retention", "--json", "--keep", "1", "--sweep", "1"])
        .args(["--events", &events.to_string()])
        .args(["--orders", &ORDERS.to_string()])
        .args(["--rate", &RATE.to_string()])
        .args([
            "--concurrency",
            "8",
            "--samples",
            "12",
            "--drain-timeout",
            "60",
        ])
        .args(["--synchronous", "normal"]);
    if !retention {
        cmd.arg("--no-retention");
    }
    if let Some(url) = postgres {
        cmd.args(["--postgres", url]);
    }
    let out = cmd.output().expect("running waybill bench-retention");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench-retention failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}) in:\n{stdout}"));
    assert_eq!(summary["events"], events, "{stdout}");
    assert_eq!(summary["delivered"], events, "{stdout}");
    assert_eq!(summary["failed"], 0, "{stdout}");
    assert_eq!(summary["badlySigned"], 0, "{stdout}");
    summary
}

fn samples<'a>(summary: &'a Value, phase: &str) -> Vec<&'a Value> {
    summary["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["phase"] == phase)
        .collect()
}

/// Rows of the tables retention manages that the load writes.
fn rows(sample: &Value) -> u64 {
    sample["rows"]
        .as_object()
        .expect("rows")
        .values()
        .map(|n| n.as_u64().expect("a row count"))
        .sum()
}

/// Whether `measure` levelled off during the load: its largest value in the second half of the
/// load is at most 1.5 times (plus `slack`) its largest between a quarter and half of it. Growth
/// with every event doubles it from the middle to the end.
fn levels_off(summary: &Value, measure: impl Fn(&Value) -> u64, slack: u64) -> bool {
    let events = summary["events"].as_u64().expect("events");
    let load = samples(summary, "load");
    let max = |from: u64, to: u64| {
        load.iter()
            .filter(|s| {
                let n = s["events"].as_u64().expect("events");
                n > from && n <= to
            })
            .map(|s| measure(s))
            .max()
            .expect("samples in that part of the load")
    };
    let (quarter, half) = (events / 4, events / 2);
    let (first, second) = (max(quarter, half), max(half, events));
    second <= first + first / 2 + slack
}

fn check(postgres: Option<&str>) {
    let on = bench(postgres, EVENTS, true);
    let text = on.to_string();
    assert!(
        levels_off(&on, rows, 200),
        "retention on: the managed tables' rows kept growing: {text}"
    );
    // Once delivered and swept: nothing left that grows with the events.
    let swept = samples(&on, "swept");
    let [swept] = swept.as_slice() else {
        panic!("no swept sample: {text}");
    };
    let row = |t: &str| swept["rows"][t].as_u64().expect("a row count");
    assert!(row("outbox") <= 1, "outbox left after the sweep: {text}");
    assert!(
        row("webhook_deliveries") <= ORDERS,
        "more than one delivery per order left after the sweep: {text}"
    );
    assert!(
        row("webhook_attempts") <= ORDERS,
        "attempts left after the sweep: {text}"
    );
    assert_eq!(row("idempotency_keys"), 0, "expired keys left: {text}");
    let bytes = |s: &Value| s["retentionBytes"].as_u64().expect("retentionBytes");
    if postgres.is_none() {
        assert!(
            levels_off(&on, bytes, 256 * 1024),
            "retention on: the managed tables' pages kept growing: {text}"
        );
    }

    // The control: without retention every event adds rows, and the same check fails.
    let off = bench(postgres, CONTROL_EVENTS, false);
    let text = off.to_string();
    assert!(
        !levels_off(&off, rows, 200),
        "retention off: the rows did not grow, so the check above proves nothing: {text}"
    );
    let last = samples(&off, "swept");
    let [last] = last.as_slice() else {
        panic!("no final sample: {text}");
    };
    assert!(
        last["rows"]["outbox"].as_u64().expect("outbox rows") >= CONTROL_EVENTS,
        "retention off: events were deleted: {text}"
    );
    if postgres.is_none() {
        assert!(
            !levels_off(&off, bytes, 256 * 1024),
            "retention off: the pages did not grow: {text}"
        );
    }
}

#[test]
fn retention_keeps_managed_tables_flat_on_sqlite() {
    check(None);
}

#[test]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
fn retention_keeps_managed_tables_flat_on_postgres() {
    assert_eq!(
        Backend::from_env(),
        Backend::Postgres,
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
    let url = std::env::var(POSTGRES_ENV).expect("the PostgreSQL URL");
    check(Some(&url));
}
