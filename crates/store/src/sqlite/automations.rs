//! Store settings, automations and their runs on SQLite. Runs themselves are queued by
//! `orders.rs`, in the transaction that records their trigger.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;
use waybill_core::{Timestamp, time};

use super::map_err;
use crate::automations::{
    AutomationAction, AutomationRecord, AutomationRun, AutomationTrigger, ClaimedRun,
    NewAutomation, RunOutcome, SettingsUpdate, StoreSettings,
};
use crate::webhooks::{NewWebhook, WebhookFlavor};
use crate::{StoreError, StoreResult};

pub(super) fn settings(conn: &Connection, store_id: &str) -> StoreResult<StoreSettings> {
    if !super::store_exists(conn, store_id)? {
        return Err(waybill_core::DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT stall_after_secs, easypost_secret FROM store_settings WHERE store_id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([store_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| map_err("loading store settings", e))?;
    Ok(match row {
        Some((secs, secret)) => StoreSettings {
            stall_after: Duration::from_secs(secs.max(0) as u64),
            easypost_secret: secret,
        },
        None => StoreSettings::default(),
    })
}

pub(super) fn update_settings(
    conn: &Connection,
    store_id: &str,
    update: SettingsUpdate,
    now: Timestamp,
) -> StoreResult<StoreSettings> {
    let mut current = settings(conn, store_id)?;
    if let Some(stall_after) = update.stall_after {
        current.stall_after = stall_after;
    }
    if let Some(secret) = update.easypost_secret {
        current.easypost_secret = secret;
    }
    conn.prepare_cached(
        "INSERT INTO store_settings (store_id, stall_after_secs, easypost_secret, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (store_id) DO UPDATE SET stall_after_secs = excluded.stall_after_secs,
             easypost_secret = excluded.easypost_secret, updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            i64::try_from(current.stall_after.as_secs()).unwrap_or(i64::MAX),
            current.easypost_secret,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("saving store settings", e))?;
    Ok(current)
}

const AUTOMATION_COLUMNS: &str =
    "id, store_id, name, trigger, carrier, action, enabled, webhook_id, created_at, updated_at";

type RawAutomation = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    Option<String>,
    i64,
    i64,
);

fn raw_automation(r: &Row<'_>) -> rusqlite::Result<RawAutomation> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get::<_, i64>(6)? != 0,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn decode_automation(raw: RawAutomation) -> StoreResult<AutomationRecord> {
    let (id, store_id, name, trigger, carrier, action, enabled, webhook_id, created, updated) = raw;
    Ok(AutomationRecord {
        id,
        store_id,
        name,
        trigger: AutomationTrigger::parse(&trigger)
            .map_err(|e| StoreError::internal("decoding an automation trigger", e))?,
        carrier,
        action: serde_json::from_str(&action)
            .map_err(|e| StoreError::internal("decoding an automation action", e))?,
        enabled,
        webhook_id,
        created_at: time::from_millis(created),
        updated_at: time::from_millis(updated),
    })
}

fn load(conn: &Connection, store_id: &str, id: &str) -> StoreResult<Option<AutomationRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE store_id = ?1 AND id = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![store_id, id], raw_automation)
            .optional()
    })
    .map_err(|e| map_err("loading an automation", e))?
    .map(decode_automation)
    .transpose()
}

pub(super) fn get(
    conn: &Connection,
    store_id: &str,
    id: &str,
) -> StoreResult<Option<AutomationRecord>> {
    load(conn, store_id, id)
}

pub(super) fn list(conn: &Connection, store_id: &str) -> StoreResult<Vec<AutomationRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE store_id = ?1 ORDER BY created_at, id"
    ))
    .and_then(|mut stmt| {
        stmt.query_map([store_id], raw_automation)?
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| map_err("listing automations", e))?
    .into_iter()
    .map(decode_automation)
    .collect()
}

/// Makes the webhook action's subscription agree with `action`: created when a webhook action
/// appears, re-pointed when its URL changes, deleted when the action stops being a webhook.
fn sync_subscription(
    conn: &Connection,
    store_id: &str,
    existing: Option<String>,
    new: &NewAutomation,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    match (&new.action, existing) {
        (AutomationAction::Webhook { url, .. }, Some(id)) => {
            conn.prepare_cached(
                "UPDATE webhook_subscriptions SET url = ?2, updated_at = ?3 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id, url, time::to_millis(now)]))
            .map_err(|e| map_err("re-pointing an automation's webhook", e))?;
            Ok(Some(id))
        }
        (AutomationAction::Webhook { url, .. }, None) => {
            let (record, _) = super::webhooks::create_webhook(
                conn,
                store_id,
                NewWebhook {
                    flavor: WebhookFlavor::Automation,
                    url: url.clone(),
                    topics: Vec::new(),
                    external_id: None,
                    bearer_token: None,
                    secret: new.webhook_secret.clone(),
                },
                now,
            )?;
            Ok(Some(record.id))
        }
        (AutomationAction::Email { .. }, Some(id)) => {
            super::webhooks::delete_webhook(conn, store_id, &id)?;
            Ok(None)
        }
        (AutomationAction::Email { .. }, None) => Ok(None),
    }
}

fn action_json(action: &AutomationAction) -> StoreResult<String> {
    serde_json::to_string(action).map_err(|e| StoreError::internal("encoding an action", e))
}

pub(super) fn create(
    conn: &Connection,
    store_id: &str,
    new: NewAutomation,
    now: Timestamp,
) -> StoreResult<AutomationRecord> {
    if !super::store_exists(conn, store_id)? {
        return Err(waybill_core::DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let id = format!("au_{}", Uuid::now_v7().simple());
    let webhook_id = sync_subscription(conn, store_id, None, &new, now)?;
    let action = action_json(&new.action)?;
    conn.prepare_cached(
        "INSERT INTO automations (id, store_id, name, trigger, carrier, action, enabled,
                                  webhook_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            store_id,
            new.name,
            new.trigger.as_str(),
            new.carrier,
            action,
            new.enabled,
            webhook_id,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("inserting an automation", e))?;
    load(conn, store_id, &id)?
        .ok_or_else(|| StoreError::Internal("a new automation vanished".into()))
}

pub(super) fn update(
    conn: &Connection,
    store_id: &str,
    id: &str,
    new: NewAutomation,
    now: Timestamp,
) -> StoreResult<Option<AutomationRecord>> {
    let Some(existing) = load(conn, store_id, id)? else {
        return Ok(None);
    };
    let webhook_id = sync_subscription(conn, store_id, existing.webhook_id, &new, now)?;
    let action = action_json(&new.action)?;
    conn.prepare_cached(
        "UPDATE automations SET name = ?3, trigger = ?4, carrier = ?5, action = ?6, enabled = ?7,
                webhook_id = ?8, updated_at = ?9
         WHERE store_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            id,
            new.name,
            new.trigger.as_str(),
            new.carrier,
            action,
            new.enabled,
            webhook_id,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("updating an automation", e))?;
    load(conn, store_id, id)
}

pub(super) fn delete(conn: &Connection, store_id: &str, id: &str) -> StoreResult<bool> {
    let Some(existing) = load(conn, store_id, id)? else {
        return Ok(false);
    };
    if let Some(webhook_id) = existing.webhook_id {
        super::webhooks::delete_webhook(conn, store_id, &webhook_id)?;
    }
    conn.prepare_cached("DELETE FROM automations WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute(params![store_id, id]))
        .map_err(|e| map_err("deleting an automation", e))?;
    Ok(true)
}

const RUN_COLUMNS: &str = "r.id, r.automation_id, r.order_id, r.fulfillment_id, r.trigger, r.status, r.attempts, r.last_error, r.detail, d.status, r.created_at, r.updated_at, r.return_id";

/// Joins a run to its webhook delivery, if it made one.
const RUN_FROM: &str = "automation_runs r
     JOIN automations a ON a.id = r.automation_id
     LEFT JOIN webhook_deliveries d ON d.subscription_id = a.webhook_id AND d.outbox_id = r.outbox_id";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<AutomationRun> {
    Ok(AutomationRun {
        id: r.get(0)?,
        automation_id: r.get(1)?,
        order_id: r.get(2)?,
        fulfillment_id: r.get(3)?,
        return_id: r.get(12)?,
        trigger: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get::<_, i64>(6)?.max(0) as u32,
        last_error: r.get(7)?,
        detail: r.get(8)?,
        delivery_status: r.get(9)?,
        created_at: time::from_millis(r.get(10)?),
        updated_at: time::from_millis(r.get(11)?),
    })
}

pub(super) fn list_runs(
    conn: &Connection,
    store_id: &str,
    automation_id: &str,
    limit: u32,
) -> StoreResult<Option<Vec<AutomationRun>>> {
    if load(conn, store_id, automation_id)?.is_none() {
        return Ok(None);
    }
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.automation_id = ?1 ORDER BY r.id DESC LIMIT ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_map(params![automation_id, limit], run_from_row)?
            .collect::<Result<Vec<_>, _>>()
    })
    .map(Some)
    .map_err(|e| map_err("listing automation runs", e))
}

pub(super) fn claim(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
    lease: Duration,
) -> StoreResult<Vec<ClaimedRun>> {
    let now_ms = time::to_millis(now);
    let lease_until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM automation_runs
             WHERE status IN ('pending', 'running') AND next_attempt_at <= ?1
               AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY next_attempt_at, id LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![now_ms, limit], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("finding due automation runs", e))?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let (claim, automation_id, store_id): (i64, String, String) = conn
            .prepare_cached(
                "UPDATE automation_runs SET status = 'running', attempts = attempts + 1,
                        claims = claims + 1, lease_until = ?2, updated_at = ?3
                 WHERE id = ?1 RETURNING claims, automation_id, store_id",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![id, lease_until, now_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
            })
            .map_err(|e| map_err("claiming an automation run", e))?;
        let run = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.id = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([id], run_from_row))
            .map_err(|e| map_err("loading a claimed run", e))?;
        let automation = load(conn, &store_id, &automation_id)?
            .ok_or_else(|| StoreError::Internal("a run's automation vanished".into()))?;
        let event_data: Option<String> = conn
            .prepare_cached(
                "SELECT o.data FROM automation_runs r JOIN outbox o ON o.id = r.outbox_id
                 WHERE r.id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([id], |r| r.get(0)).optional())
            .map_err(|e| map_err("loading a run's event", e))?
            .flatten();
        claimed.push(ClaimedRun {
            run,
            claim,
            automation,
            event_data,
        });
    }
    Ok(claimed)
}

pub(super) fn finish(
    conn: &Connection,
    run_id: i64,
    claim: i64,
    outcome: RunOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let now_ms = time::to_millis(now);
    let (status, next_at, error, detail) = match &outcome {
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
    let changed = conn
        .prepare_cached(
            "UPDATE automation_runs SET status = ?3, next_attempt_at = ?4, last_error = ?5,
                    detail = COALESCE(?6, detail), lease_until = NULL, updated_at = ?7
             WHERE id = ?1 AND claims = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                run_id, claim, status, next_at, error, detail, now_ms
            ])
        })
        .map_err(|e| map_err("finishing an automation run", e))?;
    if changed == 0 {
        return Ok(false);
    }
    if let RunOutcome::QueueWebhook { payload } = outcome {
        conn.prepare_cached(
            "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id,
                 order_id, seq, type, fulfillment_id, data, event_at, status, next_attempt_at,
                 payload, created_at, updated_at)
             SELECT a.webhook_id, o.id, o.event_id, o.store_id, o.order_id, o.seq,
                    'automation.' || r.trigger, o.fulfillment_id, o.data, o.created_at, 'pending',
                    ?2, ?3, ?2, ?2
             FROM automation_runs r
             JOIN automations a ON a.id = r.automation_id
             JOIN outbox o ON o.id = r.outbox_id
             WHERE r.id = ?1 AND a.webhook_id IS NOT NULL
             ON CONFLICT (subscription_id, outbox_id) DO NOTHING",
        )
        .and_then(|mut stmt| stmt.execute(params![run_id, now_ms, payload]))
        .map_err(|e| map_err("queueing an automation's webhook", e))?;
    }
    Ok(true)
}
