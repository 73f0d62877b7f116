//! Automations at run time: the worker that performs queued runs, and the scheduler that raises
//! time-based shipment events.
//!
//! Runs are queued by the store in the transaction that records their trigger (a status or an
//! event), one per (automation, fulfillment, trigger). The worker claims due runs under a
//! lease, renders the automation's templates for the order and fulfillment, and either mails
//! the customer or hands the rendered JSON to the webhook dispatcher (which signs, delivers
//! and retries it like any subscription). A failed email is retried on the schedule; a run
//! whose lease expires (its worker died) is claimed again.
//!
//! The scheduler asks the store, every interval, to raise the `stalled_in_transit` and
//! `delayed` events that are due; those go through the same path as events sent over the API.
//! Every process with background work runs one, and none holds a claim beyond one transaction:
//! a round locks each order it raises events on and decides on the history it reads under the
//! lock, so an event is raised once whichever process gets there first, and a process killed
//! mid-round rolls back and leaves nothing to wait out (`crates/cli/tests/multinode.rs`).
//! Both read the time from an injectable [`Clock`], so tests drive them without sleeping.

pub mod mailer;
pub mod templates;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use waybill_core::OrderRef;
use waybill_store::{AutomationAction, ClaimedRun, RunOutcome, Store, StoreError};

use crate::webhooks::{Clock, SystemClock};
pub use mailer::{MailError, Mailer, SmtpConfig};
use templates::{Kind, TemplateContext};

/// How the worker and the scheduler behave.
#[derive(Clone)]
pub struct AutomationConfig {
    /// `None`: email actions fail with "SMTP is not configured".
    pub mailer: Option<Arc<Mailer>>,
    /// The delay before each attempt of an email; its length is the number of attempts.
    pub schedule: Vec<Duration>,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// How often the scheduler looks for due time events.
    pub scheduler_interval: Duration,
    /// Runs claimed, and events raised, per round.
    pub batch: u32,
    pub clock: Arc<dyn Clock>,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        AutomationConfig {
            mailer: None,
            schedule: [0, 30, 300, 1800, 7200]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_millis(500),
            scheduler_interval: Duration::from_secs(60),
            batch: 100,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Performs due runs until `shutdown` resolves (finishing the run in hand).
pub async fn run_worker(
    store: Arc<dyn Store>,
    config: AutomationConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    tracing::info!(smtp = config.mailer.is_some(), "automation worker started");
    loop {
        let busy = match run_due(store.as_ref(), &config).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "automation runs could not be claimed");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
    tracing::info!("automation worker stopped");
}

/// Claims one batch of due runs and performs them; how many were claimed.
pub async fn run_due(store: &dyn Store, config: &AutomationConfig) -> Result<usize, StoreError> {
    let claimed = store
        .claim_automation_runs(config.clock.now(), config.batch, config.lease)
        .await?;
    let count = claimed.len();
    for run in claimed {
        let (id, claim) = (run.run.id, run.claim);
        let action = run.automation.action.kind();
        let outcome = perform(store, config, &run).await;
        let result = match &outcome {
            RunOutcome::Succeeded { .. } | RunOutcome::QueueWebhook { .. } => "succeeded",
            RunOutcome::RetryAt { .. } => "retry",
            RunOutcome::Failed { .. } => "failed",
        };
        tracing::info!(run = id, automation = %run.automation.id, action, result, "automation run");
        crate::metrics::automation_run(action, result);
        if let Err(e) = store
            .finish_automation_run(id, claim, outcome, config.clock.now())
            .await
        {
            // The lease runs out and the run is claimed again.
            tracing::warn!(run = id, error = %e, "an automation run's outcome was not recorded");
        }
    }
    Ok(count)
}

/// What one attempt of a run does.
async fn perform(store: &dyn Store, config: &AutomationConfig, claimed: &ClaimedRun) -> RunOutcome {
    let run = &claimed.run;
    // The order as the triggering event left it (a run that waits for a retry still describes
    // its own event); runs of events stored before snapshots existed read it as it is now.
    let snapshot = waybill_store::EventData::parse(claimed.event_data.as_deref()).order;
    let loaded = match snapshot {
        Some(order) => Ok(order),
        None => {
            store
                .get_order(&claimed.automation.store_id, &OrderRef::new(&run.order_id))
                .await
        }
    };
    let order = match loaded {
        Ok(order) => order,
        Err(StoreError::Domain(e)) => {
            return RunOutcome::Failed {
                error: e.to_string(),
            };
        }
        Err(e) => return retry(config, run.attempts, format!("loading the order: {e}")),
    };
    let context = match (&run.fulfillment_id, &run.return_id) {
        (Some(fulfillment_id), _) => {
            let Some(fulfillment) = order.fulfillments.iter().find(|f| &f.id == fulfillment_id)
            else {
                return RunOutcome::Failed {
                    error: format!("fulfillment '{fulfillment_id}' no longer exists"),
                };
            };
            TemplateContext::new(&run.trigger, &order, fulfillment)
        }
        (None, Some(return_id)) => {
            // The return as its event left it, or as it is now for an event without one.
            let recorded = waybill_store::EventData::parse(claimed.event_data.as_deref())
                .return_record
                .filter(|r| &r.id == return_id);
            let record = match recorded {
                Some(record) => record,
                None => match store
                    .get_return(&claimed.automation.store_id, return_id)
                    .await
                {
                    Ok(record) => record,
                    Err(StoreError::Domain(e)) => {
                        return RunOutcome::Failed {
                            error: e.to_string(),
                        };
                    }
                    Err(e) => {
                        return retry(config, run.attempts, format!("loading the return: {e}"));
                    }
                },
            };
            TemplateContext::for_return(&run.trigger, &order, &record)
        }
        (None, None) => {
            return RunOutcome::Failed {
                error: "the run names neither a fulfillment nor a return".into(),
            };
        }
    };
    match &claimed.automation.action {
        AutomationAction::Webhook { body, .. } => {
            match templates::render(Kind::JsonBody, body, &context) {
                Ok(payload) => RunOutcome::QueueWebhook { payload },
                Err(error) => RunOutcome::Failed { error },
            }
        }
        AutomationAction::Email { to, subject, body } => {
            let Some(mailer) = &config.mailer else {
                return RunOutcome::Failed {
                    error: "SMTP is not configured (--smtp-url)".into(),
                };
            };
            let Some(to) = to.clone().or_else(|| context.order.email.clone()) else {
                return RunOutcome::Failed {
                    error: "the order has no customer email".into(),
                };
            };
            let rendered = templates::render(Kind::Subject, subject, &context)
                .and_then(|s| Ok((s, templates::render(Kind::HtmlBody, body, &context)?)));
            let (subject, html) = match rendered {
                Ok(r) => r,
                Err(error) => return RunOutcome::Failed { error },
            };
            match mailer.send(&to, &subject, html).await {
                Ok(()) => RunOutcome::Succeeded {
                    detail: format!("mailed {to}"),
                },
                Err(MailError::Permanent(error)) => RunOutcome::Failed { error },
                Err(MailError::Transient(error)) => retry(config, run.attempts, error),
            }
        }
    }
}

/// The next attempt after `attempts` failed ones, or failure when the schedule is used up.
fn retry(config: &AutomationConfig, attempts: u32, error: String) -> RunOutcome {
    match config.schedule.get(attempts as usize) {
        Some(delay) => RunOutcome::RetryAt {
            at: config.clock.now()
                + chrono::Duration::from_std(*delay).unwrap_or(chrono::Duration::zero()),
            error,
        },
        None => RunOutcome::Failed { error },
    }
}

/// Raises due time-based events every `scheduler_interval` until `shutdown` resolves.
pub async fn run_scheduler(
    store: Arc<dyn Store>,
    config: AutomationConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        match tick(store.as_ref(), &config).await {
            Ok(n) if n > 0 => tracing::info!(raised = n, "time-based shipment events raised"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "time-based shipment events could not be raised"),
        }
        // Expired idempotency keys are deleted by the retention task (`crate::retention`).
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(config.scheduler_interval) => {}
        }
    }
}

/// One scheduler round: raises every event due at the clock's now (in batches); how many.
pub async fn tick(store: &dyn Store, config: &AutomationConfig) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let raised = store
            .raise_due_events(config.clock.now(), config.batch)
            .await?;
        total += raised.len();
        if raised.len() < config.batch as usize {
            return Ok(total);
        }
    }
}
