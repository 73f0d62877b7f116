//! Every event type a subscription can receive: its name, who receives it, the schema of its
//! body and an example body rendered by the same code that renders real deliveries
//! ([`super::payload::body`]). The OpenAPI document's `webhooks` and the examples in
//! docs/API.md are made from this list, so neither can drift from what is sent.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use waybill_core::{
    Customer, Fulfillment, FulfillmentLine, HistoryEntry, LineItem, Money, Order, OrderDetails,
    Package, Return, ReturnLine, ReturnReason, ReturnStatus, ShipmentStatus, time,
};
use waybill_store::{EventData, LedgerChange, OutboxEvent, UnitsOfLine, WebhookFlavor};

use super::payload;
use crate::dialects::fourthwall::OrderV1;
use crate::dialects::redo::returns::ReturnJson;
use crate::dialects::redo::types::{FulfillmentJson, OrderJson};

/// One event type as the document lists it.
pub struct EventType {
    /// The name in the body's `type` (and the key under the document's `webhooks`).
    pub name: &'static str,
    /// Who receives it: which subscription topic or allowed type selects it.
    pub selected_by: &'static str,
    pub summary: &'static str,
    /// The component schema of the body.
    pub schema: &'static str,
    pub example: Value,
}

/// A Redo-shaped event: what every subscription made under `/v2.2/.../webhooks` receives,
/// signed the Standard Webhooks way (`webhook-id` is the body's `id`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedoEvent {
    /// The event's id: the same in every attempt, redelivery and replay.
    #[schema(format = Uuid)]
    id: String,
    #[serde(rename = "type")]
    #[schema(
        pattern = "^(order\\.(created|updated|deleted)|fulfillment\\.(created|updated|event))$"
    )]
    event_type: String,
    /// When the change was written.
    #[schema(format = DateTime)]
    at: String,
    /// The event's place among its order's events, from 1; deliveries of one order arrive in
    /// this order.
    #[schema(minimum = 1)]
    seq: i64,
    change: EventChange,
    /// The order as this event left it (the `GET` order shape).
    order: OrderJson,
    /// The fulfillment the event is about, as this event left it (fulfillment events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    fulfillment: Option<FulfillmentJson>,
}

/// A Redo-shaped return event (`return.created`, `return.updated`), sent to subscriptions with
/// the topic `return`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedoReturnEvent {
    /// The event's id: the same in every attempt, redelivery and replay.
    #[schema(format = Uuid)]
    id: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^return\\.(created|updated)$")]
    event_type: String,
    /// When the change was written.
    #[schema(format = DateTime)]
    at: String,
    /// The event's place among its order's events, from 1.
    #[schema(minimum = 1)]
    seq: i64,
    change: ReturnEventChange,
    /// The order as this event left it (the `GET` order shape).
    order: OrderJson,
    /// The return as this event left it (the `GET /returns/{returnId}` shape).
    #[serde(rename = "return")]
    return_: ReturnJson,
}

/// What a return event changed: the return's lifecycle status (Waybill's names) and the
/// order's derived status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnEventChange {
    #[schema(schema_with = return_lifecycle_schema)]
    status: String,
    /// The return's status before the change; absent for a new return.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = return_lifecycle_schema)]
    previous_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = order_status_schema)]
    order_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = order_status_schema)]
    previous_order_status: Option<String>,
}

fn return_lifecycle_schema() -> utoipa::openapi::schema::Object {
    crate::dialects::common::enum_schema(ReturnStatus::ALL.iter().map(|s| s.as_str()))
}

/// What an event changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventChange {
    /// The shipment status or event name the event reports (fulfillment events).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::status_or_event_schema)]
    status: Option<String>,
    /// The fulfillment's status before the change; absent for a new fulfillment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::shipment_status_schema)]
    previous_status: Option<String>,
    /// The order's derived status after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = order_status_schema)]
    order_status: Option<String>,
    /// The order's derived status before the change; absent for a new order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = order_status_schema)]
    previous_order_status: Option<String>,
    /// Waybill extension: the exception reason the status or event carried (only on
    /// `failure`, `return_to_sender` and `delayed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::exception_reason_schema)]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<LedgerChangeJson>,
    /// Set when the fulfillment's tracking numbers were replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<bool>,
    /// The order's own id (`order.deleted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
}

/// Units a change reserved on the ledger or gave back to it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerChangeJson {
    /// `reserved`: the units now count against the ordered quantity; `released`: they no
    /// longer do.
    #[schema(pattern = "^(reserved|released)$")]
    effect: String,
    units: Vec<UnitsJson>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitsJson {
    line_item_id: String,
    #[schema(minimum = 1)]
    quantity: u32,
}

/// Fourthwall's `ORDER_PLACED`: the envelope with the new order as `data`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FourthwallOrderPlaced {
    test_mode: bool,
    #[schema(format = Uuid)]
    id: String,
    webhook_id: String,
    shop_id: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^ORDER_PLACED$")]
    event_type: String,
    #[schema(pattern = "^V1$")]
    api_version: String,
    #[schema(format = DateTime)]
    created_at: String,
    data: OrderV1,
}

/// Fourthwall's `ORDER_UPDATED`: the envelope with the order as this event left it and what
/// changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FourthwallOrderUpdated {
    test_mode: bool,
    #[schema(format = Uuid)]
    id: String,
    webhook_id: String,
    shop_id: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^ORDER_UPDATED$")]
    event_type: String,
    #[schema(pattern = "^V1$")]
    api_version: String,
    #[schema(format = DateTime)]
    created_at: String,
    data: FourthwallUpdatedData,
}

#[derive(Serialize, ToSchema)]
pub struct FourthwallUpdatedData {
    order: OrderV1,
    update: FourthwallUpdate,
}

/// `update`: Fourthwall's `type`, and (Waybill's additions) the order's status before and the
/// shipment that moved it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FourthwallUpdate {
    /// `STATUS`: a shipment moved the order; `OTHER`: the order was edited.
    #[serde(rename = "type")]
    #[schema(pattern = "^(STATUS|OTHER)$")]
    update_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = order_status_schema)]
    previous_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fulfillment: Option<ShipmentChange>,
}

/// The shipment an `ORDER_UPDATED` reports.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentChange {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::status_or_event_schema)]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::shipment_status_schema)]
    previous_status: Option<String>,
    /// The exception reason the status or event carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::dialects::common::exception_reason_schema)]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<LedgerChangeJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<bool>,
}

fn order_status_schema() -> utoipa::openapi::schema::Object {
    let names = waybill_core::OrderStatus::ALL.map(|s| s.as_str());
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(names))
        .build()
}

/// Every event type, with an example body.
pub fn event_types() -> Vec<EventType> {
    let created = example_order(None);
    let shipped = example_order(Some(ShipmentStatus::PreTransit));
    let moving = example_order(Some(ShipmentStatus::InTransit));
    let redo = |name: &'static str,
                topic: &'static str,
                summary: &'static str,
                seq: i64,
                fulfillment: bool,
                data: EventData,
                order: &Order| EventType {
        name,
        selected_by: topic,
        summary,
        schema: "RedoEvent",
        example: example(WebhookFlavor::Redo, name, seq, fulfillment, &data, order),
    };
    let status_change = EventData {
        order_status: Some("SHIPPED".into()),
        previous_order_status: Some("IN_PRODUCTION".into()),
        ..EventData::status("in_transit", Some("pre_transit"))
    };
    let reserved = EventData {
        ledger: Some(LedgerChange {
            effect: "reserved".into(),
            units: vec![UnitsOfLine {
                line_item_id: "line-1".into(),
                quantity: 2,
            }],
        }),
        order_status: Some("IN_PRODUCTION".into()),
        previous_order_status: Some("CONFIRMED".into()),
        ..EventData::status("pre_transit", None)
    };
    vec![
        redo(
            "order.created",
            "Redo topic `order`",
            "An order was created.",
            1,
            false,
            EventData {
                order_status: Some("CONFIRMED".into()),
                ..EventData::default()
            },
            &created,
        ),
        redo(
            "order.updated",
            "Redo topic `order`",
            "An order's details or lines were changed.",
            2,
            false,
            EventData {
                order_status: Some("CONFIRMED".into()),
                previous_order_status: Some("CONFIRMED".into()),
                ..EventData::default()
            },
            &created,
        ),
        redo(
            "order.deleted",
            "Redo topic `order`",
            "An order was deleted; `order` is the order as it was.",
            3,
            false,
            EventData {
                order_id: Some(created.external_id.clone()),
                previous_order_status: Some("CONFIRMED".into()),
                ..EventData::default()
            },
            &created,
        ),
        redo(
            "fulfillment.created",
            "Redo topic `fulfillment`",
            "A fulfillment was created; its units were reserved (unless it starts cancelled).",
            2,
            true,
            reserved,
            &shipped,
        ),
        redo(
            "fulfillment.updated",
            "Redo topic `fulfillment`",
            "A fulfillment's status, contents or tracking changed (a cancellation releases its units).",
            3,
            true,
            status_change.clone(),
            &moving,
        ),
        redo(
            "fulfillment.event",
            "Redo topic `fulfillment`",
            "A shipment event (`delayed`, `stalled_in_transit`, `arriving_early`) happened; the status stays. `change.reason` carries an exception reason when one was given (`delayed`, and `fulfillment.updated` to `failure` or `return_to_sender`).",
            4,
            true,
            EventData {
                order_status: Some("SHIPPED".into()),
                previous_order_status: Some("SHIPPED".into()),
                reason: Some("weather".into()),
                ..EventData::status("delayed", Some("in_transit"))
            },
            &moving,
        ),
        redo_return(
            "return.created",
            "A return of fulfilled units was created (status `requested`; Redo: `open`).",
            4,
            None,
            example_return(ReturnStatus::Requested),
            &moving,
        ),
        redo_return(
            "return.updated",
            "A return moved through its lifecycle or its parcel moved (a rejection gives its units back).",
            5,
            Some(ReturnStatus::Requested),
            example_return(ReturnStatus::InTransit),
            &moving,
        ),
        EventType {
            name: "ORDER_PLACED",
            selected_by: "Fourthwall allowed type `ORDER_PLACED`",
            summary: "An order was created (Fourthwall's shape: the order is `data`).",
            schema: "FourthwallOrderPlaced",
            example: example(
                WebhookFlavor::Fourthwall,
                "order.created",
                1,
                false,
                &EventData::default(),
                &created,
            ),
        },
        EventType {
            name: "ORDER_UPDATED",
            selected_by: "Fourthwall allowed type `ORDER_UPDATED`",
            summary: "A shipment moved the order (`update.type` `STATUS`: every fulfillment event) or the order was edited (`OTHER`).",
            schema: "FourthwallOrderUpdated",
            example: example(
                WebhookFlavor::Fourthwall,
                "fulfillment.updated",
                3,
                true,
                &status_change,
                &moving,
            ),
        },
    ]
}

fn redo_return(
    name: &'static str,
    summary: &'static str,
    seq: i64,
    previous: Option<ReturnStatus>,
    the_return: Return,
    order: &Order,
) -> EventType {
    let data = EventData {
        order_status: Some("SHIPPED".into()),
        previous_order_status: Some("SHIPPED".into()),
        return_record: Some(the_return.clone()),
        ..EventData::status(the_return.status.as_str(), previous.map(|p| p.as_str()))
    };
    EventType {
        name,
        selected_by: "Redo topic `return`",
        summary,
        schema: "RedoReturnEvent",
        example: example(WebhookFlavor::Redo, name, seq, false, &data, order),
    }
}

/// The example return: 1 unit of the example order's line, too small.
fn example_return(status: ReturnStatus) -> Return {
    let at = |minutes: i64| time::from_millis(1_733_572_800_000 + minutes * 60_000);
    let mut history = vec![HistoryEntry {
        status: "return.requested".into(),
        message: ReturnStatus::Requested.description().into(),
        datetime: at(60),
        location: None,
        reason: None,
    }];
    let mut shipment = ShipmentStatus::PreTransit;
    if status == ReturnStatus::InTransit {
        shipment = ShipmentStatus::InTransit;
        history.push(HistoryEntry {
            status: "in_transit".into(),
            message: ShipmentStatus::InTransit.description().into(),
            datetime: at(90),
            location: None,
            reason: None,
        });
        history.push(HistoryEntry {
            status: "return.in_transit".into(),
            message: ReturnStatus::InTransit.description().into(),
            datetime: at(90),
            location: None,
            reason: None,
        });
    }
    Return {
        id: "1001-r1".into(),
        order_id: Uuid::from_u128(0x0193_a5e4_7c00_7000_8000_0000_0000_1001),
        order_external_id: "1001".into(),
        created_at: at(60),
        updated_at: history.last().map_or(at(60), |h| h.datetime),
        status,
        shipment_status: shipment,
        packages: vec![Package {
            carrier: Some("USPS".into()),
            tracking_number: "9400111899223344556677".into(),
            tracking_url: Some(
                "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223344556677"
                    .into(),
            ),
        }],
        lines: vec![ReturnLine {
            line_item_id: "line-1".into(),
            quantity: 1,
            reason: ReturnReason::TooSmall,
            note: Some("Runs small".into()),
            title: "T-shirt, black, M".into(),
            sku: Some("TEE-BLK-M".into()),
        }],
        note: None,
        history,
    }
}

fn example(
    flavor: WebhookFlavor,
    event_type: &str,
    seq: i64,
    fulfillment: bool,
    data: &EventData,
    order: &Order,
) -> Value {
    let event = OutboxEvent {
        outbox_id: seq,
        event_id: format!("0193a5e4-7c00-7000-8000-00000000000{seq}"),
        store_id: "st_example".into(),
        order_id: order.id.to_string(),
        seq,
        event_type: event_type.to_owned(),
        fulfillment_id: fulfillment.then(|| "1001-f1".to_owned()),
        data: None,
        created_at: time::from_millis(1_733_572_800_000 + seq * 60_000),
    };
    payload::body(flavor, "whk_0193a5e4", &event, data, Some(order), None)
        .unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// The example order: one line of 3, and (with `status`) one fulfillment of 2 units.
fn example_order(status: Option<ShipmentStatus>) -> Order {
    let at = |minutes: i64| time::from_millis(1_733_572_800_000 + minutes * 60_000);
    let money = |text: &str| Money::parse("example", text).ok();
    let mut order = Order {
        id: Uuid::from_u128(0x0193_a5e4_7c00_7000_8000_0000_0000_1001),
        store_id: "st_example".into(),
        external_id: "1001".into(),
        created_at: at(0),
        updated_at: at(0),
        line_items: vec![LineItem {
            id: "line-1".into(),
            product_id: Some("prod-1".into()),
            variant_id: Some("var-1".into()),
            sku: Some("TEE-BLK-M".into()),
            title: "T-shirt, black, M".into(),
            quantity: 3,
            fulfilled: 0,
            returned: 0,
            price: money("19.99"),
            extra: waybill_core::order::LineItemExtra::default(),
        }],
        details: OrderDetails {
            customer: Some(Customer {
                email: Some("ada@example.com".into()),
                first_name: Some("Ada".into()),
                ..Customer::default()
            }),
            total_price: money("59.97"),
            currency_code: Some("USD".into()),
            ..OrderDetails::default()
        },
        fulfillments: Vec::new(),
    };
    let Some(status) = status else {
        return order;
    };
    order.line_items[0].fulfilled = 2;
    let mut history = vec![HistoryEntry {
        status: "pre_transit".into(),
        message: ShipmentStatus::PreTransit.description().to_owned(),
        datetime: at(2),
        location: None,
        reason: None,
    }];
    if status != ShipmentStatus::PreTransit {
        history.push(HistoryEntry {
            status: status.as_str().into(),
            message: status.description().to_owned(),
            datetime: at(3),
            location: None,
            reason: None,
        });
    }
    order.updated_at = history.last().map_or(at(2), |h| h.datetime);
    order.fulfillments.push(Fulfillment {
        id: "1001-f1".into(),
        order_id: order.id,
        created_at: at(2),
        updated_at: order.updated_at,
        status,
        status_label: None,
        packages: vec![Package {
            carrier: Some("UPS".into()),
            tracking_number: "1Z999AA10123456784".into(),
            tracking_url: Some("https://www.ups.com/track?tracknum=1Z999AA10123456784".into()),
        }],
        estimated_delivery: chrono::NaiveDate::from_ymd_opt(2024, 12, 10),
        delivered_at: None,
        lines: vec![FulfillmentLine {
            line_item_id: "line-1".into(),
            quantity: 2,
            title: "T-shirt, black, M".into(),
            product_id: Some("prod-1".into()),
            variant_id: Some("var-1".into()),
            sku: Some("TEE-BLK-M".into()),
        }],
        history,
    });
    order
}

/// The event catalogue as docs/API.md shows it (between its `webhook-events` markers): a table
/// of the event types, then each example body.
pub fn markdown() -> String {
    let events = event_types();
    let mut text = String::from("| Event type | Sent to | What happened |\n|---|---|---|\n");
    for e in &events {
        text.push_str(&format!(
            "| `{}` | {} | {} |\n",
            e.name, e.selected_by, e.summary
        ));
    }
    for e in &events {
        let body = serde_json::to_string_pretty(&e.example).unwrap_or_default();
        text.push_str(&format!("\n#### `{}`\n\n```json\n{body}\n```\n", e.name));
    }
    text
}
