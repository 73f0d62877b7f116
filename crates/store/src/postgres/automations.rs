//! Store settings, automations and their runs on PostgreSQL: the SQLite module's rules, with
//! runs claimed by `FOR UPDATE SKIP LOCKED` so several workers never take the same run.

use std::time::Duration;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use uuid::Uuid;
use waybill_core::{DomainError, Timestamp, time};

use super::{PgResult, execute, query, query_opt, store_exists};
use crate::StoreError;
use crate::automations::{
    AutomationAction, AutomationRecord, AutomationRun, AutomationTrigger, ClaimedRun,
    NewAutomation, RunOutcome, SettingsUpdate, StoreSettings,
};
use crate::webhooks::{NewWebhook, WebhookFlavor};

pub(super) async fn settings(tx: &Transaction<'_>, store_id: &str) -> PgResult<StoreSettings> {
    if !store_exists(tx, store_id).await? {
        return Err(DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let row = query_opt(
        tx,
        "loading store settings",
        "SELECT stall_after_secs, easypost_secret FROM store_settings WHERE store_id = $1",
        &[&store_id],
    )
    .await?;
    Ok(match row {
        Some(r) => StoreSettings {
            stall_after: Duration::from_secs(r.get::<_, i64>(0).max(0) as u64),
            easypost_secret: r.get(1),
        },
        None => StoreSettings::default(),
    })
}

pub(super) async fn update_settings(
    tx: &Transaction<'_>,
    store_id: &str,
    update: &SettingsUpdate,
    now: Timestamp,
) -> PgResult<StoreSettings> {
    let mut current = settings(tx, store_id).await?;
    if let Some(stall_after) = update.stall_after {
        current.stall_after = stall_after;
    }
    if let Some(secret) = &update.easypost_secret {
        current.easypost_secret = secret.clone();
    }
    execute(
        tx,
        "saving store settings",
        "INSERT INTO store_settings (store_id, stall_after_secs, easypost_secret, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (store_id) DO UPDATE SET stall_after_secs = excluded.stall_after_secs,
             easypost_secret = excluded.easypost_secret, updated_at = excluded.updated_at",
        &[
            &store_id,
            &i64::try_from(current.stall_after.as_secs()).unwrap_or(i64::MAX),
            &current.easypost_secret,
            &time::to_millis(now),
        ],
    )
    .await?;
    Ok(current)
}

const AUTOMATION_COLUMNS: &str =
    "id, store_id, name, trigger, carrier, action, enabled, webhook_id, created_at, updated_at";

fn automation_from_row(r: &Row) -> PgResult<AutomationRecord> {
    let trigger: &str = r.get(3);
    let action: &str = r.get(5);
    Ok(AutomationRecord {
        id: r.get(0),
        store_id: r.get(1),
        name: r.get(2),
        trigger: AutomationTrigger::parse(trigger)
            .map_err(|e| StoreError::internal("decoding an automation trigger", e))?,
        carrier: r.get(4),
        action: serde_json::from_str(action)
            .map_err(|e| StoreError::internal("decoding an automation action", e))?,
        enabled: r.get(6),
        webhook_id: r.get(7),
        created_at: time::from_millis(r.get(8)),
        updated_at: time::from_millis(r.get(9)),
    })
}

pub(super) async fn get(
    tx: &Transaction<'_>,
    store_id: &str,
    id: &str,
) -> PgResult<Option<AutomationRecord>> {
    query_opt(
        tx,
        "loading an automation",
        &format!("SELECT {AUTOMATION_COLUMNS} FROM automations WHERE store_id = $1 AND id = $2"),
        &[&store_id, &id],
    )
    .await?
    .as_ref()
    .map(automation_from_row)
    .transpose()
}

pub(super) async fn list(tx: &Transaction<'_>, store_id: &str) -> PgResult<Vec<AutomationRecord>> {
    query(
        tx,
        "listing automations",
        &format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE store_id = $1 ORDER BY created_at, id"
        ),
        &[&store_id],
    )
    .await?
    .iter()
    .map(automation_from_row)
    .collect()
}

/// Makes the webhook action's subscription agree with the action (see the SQLite module).
async fn sync_subscription(
    tx: &Transaction<'_>,
    store_id: &str,
    existing: Option<String>,
    new: &NewAutomation,
    now: Timestamp,
) -> PgResult<Option<String>> {
    match (&new.action, existing) {
        (AutomationAction::Webhook { url, .. }, Some(id)) => {
            execute(
                tx,
                "re-pointing an automation's webhook",
                "UPDATE webhook_subscriptions SET url = $2, updated_at = $3 WHERE id = $1",
                &[&id, url, &time::to_millis(now)],
            )
            .await?;
            Ok(Some(id))
        }
        (AutomationAction::Webhook { url, .. }, None) => {
            let (record, _) = super::webhooks::create_webhook(
                tx,
                store_id,
                &NewWebhook {
                    flavor: WebhookFlavor::Automation,
                    url: url.clone(),
                    topics: Vec::new(),
                    external_id: None,
                    bearer_token: None,
                    secret: new.webhook_secret.clone(),
                },
                now,
            )
            .await?;
            Ok(Some(record.id))
        }
        (AutomationAction::Email { .. }, Some(id)) => {
            super::webhooks::delete_webhook(tx, store_id, &id).await?;
            Ok(None)
        }
        (AutomationAction::Email { .. }, None) => Ok(None),
    }
}

fn action_json(action: &AutomationAction) -> PgResult<String> {
    serde_json::to_string(action).map_err(|e| StoreError::internal("encoding an action", e).into())
}

pub(super) async fn create(
    tx: &Transaction<'_>,
    store_id: &str,
    new: &NewAutomation,
    now: Timestamp,
) -> PgResult<AutomationRecord> {
    if !store_exists(tx, store_id).await? {
        return Err(DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let id = format!("au_{}", Uuid::now_v7().simple());
    let webhook_id = sync_subscription(tx, store_id, None, new, now).await?;
    execute(
        tx,
        "inserting an automation",
        "INSERT INTO automations (id, store_id, name, trigger, carrier, action, enabled,
                                  webhook_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        &[
            &id,
            &store_id,
            &new.name,
            &new.trigger.as_str(),
            &new.carrier,
            &action_json(&new.action)?,
            &new.enabled,
            &webhook_id,
            &time::to_millis(now),
        ],
    )
    .await?;
    get(tx, store_id, &id)
        .await?
        .ok_or_else(|| StoreError::Internal("a new automation vanished".into()).into())
}

pub(super) async fn update(
    tx: &Transaction<'_>,
    store_id: &str,
    id: &str,
    new: &NewAutomation,
    now: Timestamp,
) -> PgResult<Option<AutomationRecord>> {
    let Some(existing) = get(tx, store_id, id).await? else {
        return Ok(None);
    };
    let webhook_id = sync_subscription(tx, store_id, existing.webhook_id, new, now).await?;
    execute(
        tx,
        "updating an automation",
        "UPDATE automations SET name = $3, trigger = $4, carrier = $5, action = $6, enabled = $7,
                webhook_id = $8, updated_at = $9
         WHERE store_id = $1 AND id = $2",
        &[
            &store_id,
            &id,
            &new.name,
            &new.trigger.as_str(),
            &new.carrier,
            &action_json(&new.action)?,
            &new.enabled,
            &webhook_id,
            &time::to_millis(now),
        ],
    )
    .await?;
    get(tx, store_id, id).await
}

pub(super) async fn delete(tx: &Transaction<'_>, store_id: &str, id: &str) -> PgResult<bool> {
    let Some(existing) = get(tx, store_id, id).await? else {
        return Ok(false);
    };
    if let Some(webhook_id) = existing.webhook_id {
        super::webhooks::delete_webhook(tx, store_id, &webhook_id).await?;
    }
    execute(
        tx,
        "deleting an automation",
        "DELETE FROM automations WHERE store_id = $1 AND id = $2",
        &[&store_id, &id],
    )
    .await?;
    Ok(true)
}

const RUN_COLUMNS: &str = "r.id, r.automation_id, r.order_id, r.fulfillment_id, r.trigger, r.status, r.attempts, r.last_error, r.detail, d.status, r.created_at, r.updated_at, r.return_id";

const RUN_FROM: &str = "automation_runs r
     JOIN automations a ON a.id = r.automation_id
     LEFT JOIN webhook_deliveries d ON d.subscription_id = a.webhook_id AND d.outbox_id = r.outbox_id";

fn run_from_row(r: &Row) -> AutomationRun {
    AutomationRun {
        id: r.get(0),
        automation_id: r.get(1),
        order_id: r.get(2),
        fulfillment_id: r.get(3),
        return_id: r.get(12),
        trigger: r.get(4),
        status: r.get(5),
        attempts: u32::try_from(r.get::<_, i32>(6)).unwrap_or(0),
        last_error: r.get(7),
        detail: r.get(8),
        delivery_status: r.get(9),
        created_at: time::from_millis(r.get(10)),
        updated_at: time::from_millis(r.get(11)),
    }
}

pub(super) async fn list_runs(
    tx: &Transaction<'_>,
    store_id: &str,
    automation_id: &str,
    limit: u32,
) -> PgResult<Option<Vec<AutomationRun>>> {
    if get(tx, store_id, automation_id).await?.is_none() {
        return Ok(None);
    }
    let rows = query(
        tx,
        "listing automation runs",
        &format!(
            "SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.automation_id = $1 ORDER BY r.id DESC LIMIT $2"
        ),
        &[&automation_id, &i64::from(limit)],
    )
    .await?;
    Ok(Some(rows.iter().map(run_from_row).collect()))
}

pub(super) async fn claim(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
    lease: Duration,
) -> PgResult<Vec<ClaimedRun>> {
    let now_ms = time::to_millis(now);
    let lease_until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let rows = query(
        tx,
        "claiming automation runs",
        "WITH due AS (
             SELECT id FROM automation_runs
             WHERE status IN ('pending', 'running') AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until <= $1)
             ORDER BY next_attempt_at, id
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
         UPDATE automation_runs r SET status = 'running', attempts = attempts + 1,
             claims = claims + 1, lease_until = $3, updated_at = $1
         FROM due WHERE r.id = due.id
         RETURNING r.id, r.claims, r.automation_id, r.store_id",
        &[&now_ms, &i64::from(limit), &lease_until],
    )
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, claim, automation_id, store_id): (i64, i64, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let run = query_opt(
            tx,
            "loading a claimed run",
            &format!("SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.id = $1"),
            &[&id],
        )
        .await?
        .map(|r| run_from_row(&r))
        .ok_or_else(|| StoreError::Internal("a claimed run vanished".into()))?;
        let automation = get(tx, &store_id, &automation_id)
            .await?
            .ok_or_else(|| StoreError::Internal("a run's automation vanished".into()))?;
        let event_data: Option<String> = query_opt(
            tx,
            "loading a run's event",
            "SELECT o.data::text FROM automation_runs r JOIN outbox o ON o.id = r.outbox_id
             WHERE r.id = $1",
            &[&id],
        )
        .await?
        .and_then(|r| r.get(0));
        claimed.push(ClaimedRun {
            run,
            claim,
            automation,
            event_data,
        });
    }
    claimed.sort_by_key(|c| c.run.id);
    Ok(claimed)
}

pub(super) async fn finish(
    tx: &Transaction<'_>,
    run_id: i64,
    claim: i64,
    outcome: &RunOutcome,
    now: Timestamp,
) -> PgResult<bool> {
    let now_ms = time::to_millis(now);
    let (status, next_at, error, detail) = match outcome {
        RunOutcome::Succeeded { detail } => ("succeeded", now_ms, None, Some(detail.clone())),
        RunOutcome::QueueWebhook { .. } => (
            "succeeded",
            now_ms,
            None,
            Some("queued for delivery".to_owned()),
        ),
        RunOutcome::RetryAt { at, error } => {
            ("pending", time::to_millis(*at), Some(error.clone()), None)
        }
        RunOutcome::Failed { error } => ("failed", now_ms, Some(error.clone()), None),
    };
    let changed = execute(
        tx,
        "finishing an automation run",
        "UPDATE automation_runs SET status = $3, next_attempt_at = $4, last_error = $5,
                detail = COALESCE($6, detail), lease_until = NULL, updated_at = $7
         WHERE id = $1 AND claims = $2",
        &[&run_id, &claim, &status, &next_at, &error, &detail, &now_ms],
    )
    .await?;
    if changed == 0 {
        return Ok(false);
    }
    if let RunOutcome::QueueWebhook { payload } = outcome {
        execute(
            tx,
            "queueing an automation's webhook",
            "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id,
                 order_id, seq, type, fulfillment_id, data, event_at, status, next_attempt_at,
                 payload, created_at, updated_at)
             SELECT a.webhook_id, o.id, o.event_id, o.store_id, o.order_id, o.seq,
                    'automation.' || r.trigger, o.fulfillment_id, o.data::text, o.created_at,
                    'pending', $2, $3, $2, $2
             FROM automation_runs r
             JOIN automations a ON a.id = r.automation_id
             JOIN outbox o ON o.id = r.outbox_id
             WHERE r.id = $1 AND a.webhook_id IS NOT NULL
             ON CONFLICT (subscription_id, outbox_id) DO NOTHING",
            &[&run_id, &now_ms, payload],
        )
        .await?;
    }
    Ok(true)
}
