//! Webhook bodies: the Redo-shaped event and the Fourthwall envelope.

use serde_json::{Value, json};
use waybill_core::{DomainError, Order, OrderRef, time};
use waybill_store::{
    ClaimedDelivery, EventData, OutboxEvent, Store, StoreError, StoreResult, WebhookFlavor,
};

use crate::dialects::fourthwall::OrderV1;
use crate::dialects::redo::returns::ReturnJson;
use crate::dialects::redo::types::{FulfillmentJson, OrderJson};

/// The Fourthwall event type an outbox event is sent as.
pub fn fourthwall_type(event_type: &str) -> &'static str {
    if event_type == "order.created" {
        "ORDER_PLACED"
    } else {
        "ORDER_UPDATED"
    }
}

/// Renders the body of a delivery from the event's own data: the change it reports and the
/// order as of the write that produced it (`waybill_store::events`), so every attempt,
/// redelivery and replay of an event sends the same body. Events stored before snapshots
/// existed fall back to the order as it is now (once deleted: its last rendered snapshot, else
/// `{id, orderId}`).
pub async fn render(store: &dyn Store, d: &ClaimedDelivery) -> StoreResult<String> {
    let event = &d.event;
    let mut data = EventData::parse(event.data.as_deref());
    let order = match data.order.take() {
        Some(order) => Some(order),
        None => match store
            .get_order(&event.store_id, &OrderRef::new(event.order_id.clone()))
            .await
        {
            Ok(order) => Some(order),
            Err(StoreError::Domain(DomainError::OrderNotFound(_))) => None,
            Err(e) => return Err(e),
        },
    };
    // Only events stored before snapshots existed, of an order deleted since, need this.
    let fallback = match (&order, d.webhook.flavor) {
        (None, WebhookFlavor::Redo) => {
            Some(snapshot(store, &event.order_id, data.order_id.as_deref()).await?)
        }
        _ => None,
    };
    let body = body(
        d.webhook.flavor,
        &d.webhook.id,
        event,
        &data,
        order.as_ref(),
        fallback,
    )?;
    serde_json::to_string(&body).map_err(|e| StoreError::internal("encoding a webhook body", e))
}

/// The body of `event` for a subscription of `flavor`: `data` is the event's change (its
/// snapshot taken out), `order` the order it reports (`None`: unknown, then `fallback` or the
/// bare ids stand in for it).
pub fn body(
    flavor: WebhookFlavor,
    webhook_id: &str,
    event: &OutboxEvent,
    data: &EventData,
    order: Option<&Order>,
    fallback: Option<Value>,
) -> StoreResult<Value> {
    Ok(match flavor {
        // The automation worker renders these bodies when it queues them.
        WebhookFlavor::Automation => {
            return Err(StoreError::Internal(
                "an automation delivery was queued without its body".into(),
            ));
        }
        WebhookFlavor::Redo => {
            // A return event carries its return beside the change, in the returns API's shape.
            let mut data = data.clone();
            let return_json = data
                .return_record
                .take()
                .map(|r| serde_json::to_value(ReturnJson::from(&r)))
                .transpose()
                .map_err(|e| StoreError::internal("encoding a return", e))?;
            let data = &data;
            let order_json = match order {
                Some(o) => serde_json::to_value(OrderJson::from(o))
                    .map_err(|e| StoreError::internal("encoding an order", e))?,
                None => fallback
                    .unwrap_or_else(|| json!({ "id": event.order_id, "orderId": data.order_id })),
            };
            let change = serde_json::to_value(data)
                .map_err(|e| StoreError::internal("encoding an event's change", e))?;
            let mut body = json!({
                "id": event.event_id,
                "type": event.event_type,
                "at": time::format(event.created_at),
                "seq": event.seq,
                "change": change,
                "order": order_json,
            });
            if let Some(f) = fulfillment(order, event.fulfillment_id.as_deref()) {
                body["fulfillment"] = f;
            }
            if let Some(r) = return_json {
                body["return"] = r;
            }
            body
        }
        WebhookFlavor::Fourthwall => {
            let order_json = match order {
                Some(o) => serde_json::to_value(OrderV1::from(o))
                    .map_err(|e| StoreError::internal("encoding an order", e))?,
                None => json!({ "id": event.order_id }),
            };
            let kind = fourthwall_type(&event.event_type);
            let data = if kind == "ORDER_PLACED" {
                order_json
            } else {
                json!({
                    "order": order_json,
                    "update": fourthwall_update(&event.event_type, event.fulfillment_id.as_deref(), data),
                })
            };
            json!({
                "testMode": false,
                "id": event.event_id,
                "webhookId": webhook_id,
                "shopId": event.store_id,
                "type": kind,
                "apiVersion": "V1",
                "createdAt": time::format(event.created_at),
                "data": data,
            })
        }
    })
}

/// `ORDER_UPDATED`'s `update`: Fourthwall's `type` (`STATUS` when a shipment moved the order,
/// `OTHER` for an edit of the order) with what changed: the order's status before, and for a
/// shipment its id, status or event and status before, and the units it moved.
fn fourthwall_update(event_type: &str, fulfillment_id: Option<&str>, data: &EventData) -> Value {
    let mut update = json!({
        "type": if event_type.starts_with("fulfillment.") { "STATUS" } else { "OTHER" },
    });
    if let Some(previous) = &data.previous_order_status {
        update["previousStatus"] = json!(previous);
    }
    if let Some(id) = fulfillment_id {
        let mut shipment = json!({ "id": id });
        if let Some(status) = &data.status {
            shipment["status"] = json!(status);
        }
        if let Some(previous) = &data.previous_status {
            shipment["previousStatus"] = json!(previous);
        }
        if let Some(reason) = &data.reason {
            shipment["reason"] = json!(reason);
        }
        if let Some(ledger) = &data.ledger {
            shipment["ledger"] = json!(ledger);
        }
        if data.tracking == Some(true) {
            shipment["tracking"] = json!(true);
        }
        update["fulfillment"] = shipment;
    }
    update
}

fn fulfillment(order: Option<&Order>, id: Option<&str>) -> Option<Value> {
    let id = id?;
    let f = order?.fulfillments.iter().find(|f| f.id == id)?;
    serde_json::to_value(FulfillmentJson::from(f)).ok()
}

async fn snapshot(
    store: &dyn Store,
    order_id: &str,
    external_id: Option<&str>,
) -> StoreResult<Value> {
    if let Some(last) = store.last_order_payload(order_id).await?
        && let Ok(body) = serde_json::from_str::<Value>(&last)
        && let Some(order) = body
            .get("order")
            .filter(|o| o.get("orderId").is_some_and(|id| !id.is_null()))
    {
        return Ok(order.clone());
    }
    Ok(json!({
        "id": order_id,
        "orderId": external_id,
    }))
}
