//! Retention: a background task that keeps the database's size flat under steady load by
//! deleting, in bounded batches, rows nothing needs any more:
//!
//! * outbox events fanned out more than `outbox_age` ago whose deliveries and automation runs
//!   are all finished (replay and redelivery read the outbox, so they reach back `outbox_age`);
//! * finished (delivered or failed) deliveries last updated more than `delivery_age` ago, except
//!   each order's newest on each webhook, with their attempts; and attempts older than that;
//! * expired idempotency keys, expired or idle dashboard sessions, sign-in failures outside
//!   the throttle's window and blocks that are over, and old shared rate-limit windows.
//!
//! Each step deletes at most `batch` rows in one statement (on SQLite, one job of the single
//! writer, so writes queue behind no more than that), and a full batch is followed by `pause`
//! before the next, so a large backlog drains without starving requests. On PostgreSQL the
//! rows of a step are picked `FOR UPDATE SKIP LOCKED`: several servers may sweep at once and
//! only share the work.

use std::sync::Arc;
use std::time::Duration;

use waybill_core::Timestamp;
use waybill_store::{Purge, Store, StoreError};

use crate::limits::LimitSettings;
use crate::ui::{session, throttle};

/// How retention runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionSettings {
    /// Time between sweeps.
    pub interval: Duration,
    /// Outbox events older than this go (once fanned out and finished); `None` keeps them.
    pub outbox_age: Option<Duration>,
    /// Finished deliveries and attempts older than this go; `None` keeps them.
    pub delivery_age: Option<Duration>,
    /// Most rows one statement deletes.
    pub batch: u32,
    /// Pause after a full batch.
    pub pause: Duration,
}

/// The default: every 5 minutes, events kept 7 days, deliveries and attempts 30 days, 1,000
/// rows per statement, 100 ms between full batches.
impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            interval: Duration::from_secs(5 * 60),
            outbox_age: Some(Duration::from_secs(7 * 24 * 3600)),
            delivery_age: Some(Duration::from_secs(30 * 24 * 3600)),
            batch: 1000,
            pause: Duration::from_millis(100),
        }
    }
}

/// Rows deleted by one sweep, per kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub deleted: Vec<(&'static str, u64)>,
}

impl SweepReport {
    pub fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }

    /// Rows of one kind (see [`Purge::name`]).
    pub fn of(&self, name: &str) -> u64 {
        self.deleted
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, n)| n)
            .sum()
    }
}

fn before(now: Timestamp, age: Duration) -> Timestamp {
    now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// The steps of a sweep at `now`.
pub fn plan(settings: &RetentionSettings, limits: &LimitSettings, now: Timestamp) -> Vec<Purge> {
    let mut steps = Vec::new();
    // Deliveries before the outbox: an event goes once its deliveries are finished, and the
    // attempts go with their deliveries.
    if let Some(age) = settings.delivery_age {
        steps.push(Purge::Deliveries {
            before: before(now, age),
        });
        steps.push(Purge::Attempts {
            before: before(now, age),
        });
    }
    if let Some(age) = settings.outbox_age {
        steps.push(Purge::Outbox {
            before: before(now, age),
        });
    }
    steps.push(Purge::IdempotencyKeys { now });
    steps.push(Purge::Sessions {
        now,
        idle_before: session::idle_cutoff(now),
    });
    steps.push(Purge::SigninThrottle {
        now,
        before: throttle::window_cutoff(now),
    });
    // A window is over once a whole window has passed since it started.
    let window = crate::limits::shared_window(limits)
        .map(|(w, _)| w)
        .unwrap_or(Duration::from_secs(1));
    steps.push(Purge::RateWindows {
        before: before(now, window.saturating_mul(2)),
    });
    steps
}

/// One sweep at `now`: every step, batch after batch until a batch comes back short.
pub async fn sweep(
    store: &dyn Store,
    settings: &RetentionSettings,
    limits: &LimitSettings,
    now: Timestamp,
) -> Result<SweepReport, StoreError> {
    let batch = settings.batch.max(1);
    let mut report = SweepReport::default();
    for step in plan(settings, limits, now) {
        let mut deleted = 0;
        loop {
            let n = store.purge(step, batch).await?;
            deleted += n;
            if n < u64::from(batch) {
                break;
            }
            tokio::time::sleep(settings.pause).await;
        }
        report.deleted.push((step.name(), deleted));
    }
    Ok(report)
}

/// Sweeps every `interval` until `shutdown` resolves.
pub async fn run(
    store: Arc<dyn Store>,
    settings: RetentionSettings,
    limits: LimitSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        match sweep(
            store.as_ref(),
            &settings,
            &limits,
            waybill_core::time::now(),
        )
        .await
        {
            Ok(report) if report.total() > 0 => {
                tracing::info!(deleted = ?report.deleted, "retention: old rows deleted");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: old rows could not be deleted"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}
