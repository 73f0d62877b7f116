//! Automation templates: what a merchant writes for an email's subject and body or a webhook's
//! JSON, rendered with minijinja.
//!
//! Each kind of text has its own escaping: an email body is HTML (every substituted value is
//! HTML-escaped), a webhook body is JSON (every substituted value is written as a JSON value,
//! so `{"to": {{ order.email }}}` yields a quoted, escaped string), and a subject is plain text
//! (line breaks removed, so no header can be injected). Rendering has a fuel limit, so a
//! template cannot loop for ever.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use waybill_core::{Fulfillment, HistoryEntry, Order, Return, time};

/// Instructions a template may spend before rendering is stopped.
const FUEL: u64 = 50_000;

/// Longest rendered text kept.
const MAX_RENDERED: usize = 256 * 1024;

/// The kinds of template, each with its own escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Subject,
    HtmlBody,
    JsonBody,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Subject => "subject.txt",
            Kind::HtmlBody => "body.html",
            Kind::JsonBody => "body.json",
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else if name.ends_with(".json") {
            AutoEscape::Json
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env
}

/// Renders `source` with `context`; the error is a sentence fit for the merchant.
pub fn render(kind: Kind, source: &str, context: &TemplateContext) -> Result<String, String> {
    let env = environment();
    let value = Value::from(Serde(context));
    let rendered = env
        .render_named_str(kind.name(), source, value)
        .map_err(|e| format!("the {} template failed: {e}", kind.name()))?;
    if rendered.len() > MAX_RENDERED {
        return Err(format!(
            "the {} template rendered more than {MAX_RENDERED} bytes",
            kind.name()
        ));
    }
    Ok(match kind {
        Kind::Subject => rendered
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned(),
        Kind::HtmlBody => rendered,
        Kind::JsonBody => {
            let value = serde_json::from_str::<serde_json::Value>(&rendered).map_err(|e| {
                format!("the webhook body template does not render valid JSON: {e}")
            })?;
            if !value.is_object() {
                return Err("the webhook body template must render a JSON object".into());
            }
            rendered
        }
    })
}

/// Checks that `source` compiles and renders on a sample order: run when an automation is
/// saved, so a broken template is refused then rather than failing at its first run.
pub fn validate(kind: Kind, source: &str) -> Result<(), String> {
    render(kind, source, &TemplateContext::sample()).map(|_| ())?;
    render(kind, source, &TemplateContext::sample_return()).map(|_| ())
}

/// What a template sees. A shipment trigger's run sees the `fulfillment` (and no `return`); a
/// return trigger's run sees the `return` (and no `fulfillment`), and `carrier`,
/// `tracking_number`, `tracking_url` and `last_event` then describe the return parcel. A
/// missing value renders as nothing.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub trigger: String,
    pub order: OrderContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfillment: Option<FulfillmentContext>,
    #[serde(rename = "return", skip_serializing_if = "Option::is_none")]
    pub return_record: Option<ReturnContext>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    /// `YYYY-MM-DD`.
    pub eta: Option<String>,
    pub last_event: Option<EventContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderContext {
    /// The merchant's order id.
    pub id: String,
    /// Waybill's id.
    pub internal_id: String,
    pub email: Option<String>,
    pub customer_name: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FulfillmentContext {
    pub id: String,
    pub status: String,
    pub created_at: String,
    pub lines: Vec<LineContext>,
    pub packages: Vec<PackageContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReturnContext {
    pub id: String,
    /// The lifecycle status: `requested`, `in_transit`, `received`, `closed`, `rejected`.
    pub status: String,
    /// Where the return parcel is, as a shipment status.
    pub shipment_status: String,
    pub note: Option<String>,
    pub created_at: String,
    pub lines: Vec<ReturnLineContext>,
    pub packages: Vec<PackageContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReturnLineContext {
    pub id: String,
    pub title: String,
    pub sku: Option<String>,
    pub quantity: u32,
    pub reason: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineContext {
    pub id: String,
    pub title: String,
    pub sku: Option<String>,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageContext {
    pub carrier: Option<String>,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventContext {
    pub status: String,
    pub message: String,
    pub datetime: String,
    pub location: Option<String>,
}

fn order_context(order: &Order) -> OrderContext {
    let customer_name = order.details.customer.as_ref().and_then(|c| {
        let parts = [c.first_name.as_deref(), c.last_name.as_deref()];
        let joined = parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
        c.name
            .clone()
            .or_else(|| (!joined.is_empty()).then_some(joined))
    });
    OrderContext {
        id: order.external_id.clone(),
        internal_id: order.id.to_string(),
        email: order.details.customer_email().map(str::to_owned),
        customer_name,
        created_at: time::format(order.created_at),
    }
}

fn packages(packages: &[waybill_core::Package]) -> Vec<PackageContext> {
    packages
        .iter()
        .map(|p| PackageContext {
            carrier: p.carrier.clone(),
            tracking_number: p.tracking_number.clone(),
            tracking_url: p.tracking_url.clone(),
        })
        .collect()
}

fn event(h: &HistoryEntry) -> EventContext {
    EventContext {
        status: h.status.clone(),
        message: h.message.clone(),
        datetime: time::format(h.datetime),
        location: h.location.as_ref().map(|l| {
            [&l.city, &l.state, &l.country]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }),
    }
}

impl TemplateContext {
    pub fn new(trigger: &str, order: &Order, fulfillment: &Fulfillment) -> Self {
        let package = fulfillment.first_package();
        TemplateContext {
            trigger: trigger.to_owned(),
            order: order_context(order),
            fulfillment: Some(FulfillmentContext {
                id: fulfillment.id.clone(),
                status: fulfillment.status.as_str().to_owned(),
                created_at: time::format(fulfillment.created_at),
                lines: fulfillment
                    .lines
                    .iter()
                    .map(|l| LineContext {
                        id: l.line_item_id.clone(),
                        title: l.title.clone(),
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                    })
                    .collect(),
                packages: packages(&fulfillment.packages),
            }),
            return_record: None,
            carrier: package.and_then(|p| p.carrier.clone()),
            tracking_number: package.map(|p| p.tracking_number.clone()),
            tracking_url: package.and_then(|p| p.tracking_url.clone()),
            eta: fulfillment.estimated_delivery.map(time::format_date),
            last_event: fulfillment.history.last().map(event),
        }
    }

    /// What a return trigger's templates see: the order and the return as its event left them.
    pub fn for_return(trigger: &str, order: &Order, record: &Return) -> Self {
        let package = record.packages.first();
        TemplateContext {
            trigger: trigger.to_owned(),
            order: order_context(order),
            fulfillment: None,
            return_record: Some(ReturnContext {
                id: record.id.clone(),
                status: record.status.as_str().to_owned(),
                shipment_status: record.shipment_status.as_str().to_owned(),
                note: record.note.clone(),
                created_at: time::format(record.created_at),
                lines: record
                    .lines
                    .iter()
                    .map(|l| ReturnLineContext {
                        id: l.line_item_id.clone(),
                        title: l.title.clone(),
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                        reason: l.reason.as_str().to_owned(),
                        note: l.note.clone(),
                    })
                    .collect(),
                packages: packages(&record.packages),
            }),
            carrier: package.and_then(|p| p.carrier.clone()),
            tracking_number: package.map(|p| p.tracking_number.clone()),
            tracking_url: package.and_then(|p| p.tracking_url.clone()),
            eta: None,
            last_event: record.history.last().map(event),
        }
    }

    /// A made-up order for checking templates.
    pub fn sample() -> Self {
        TemplateContext {
            trigger: "in_transit".into(),
            order: OrderContext {
                id: "1001".into(),
                internal_id: "00000000-0000-0000-0000-000000000000".into(),
                email: Some("customer@example.com".into()),
                customer_name: Some("Ada Lovelace".into()),
                created_at: "2024-03-20T12:00:00.000Z".into(),
            },
            fulfillment: Some(FulfillmentContext {
                id: "f-1".into(),
                status: "in_transit".into(),
                created_at: "2024-03-20T12:00:00.000Z".into(),
                lines: vec![LineContext {
                    id: "line-1".into(),
                    title: "Mug".into(),
                    sku: Some("MUG-1".into()),
                    quantity: 1,
                }],
                packages: vec![PackageContext {
                    carrier: Some("UPS".into()),
                    tracking_number: "1Z999AA10123456784".into(),
                    tracking_url: Some(
                        "https://www.ups.com/track?tracknum=1Z999AA10123456784".into(),
                    ),
                }],
            }),
            return_record: None,
            carrier: Some("UPS".into()),
            tracking_number: Some("1Z999AA10123456784".into()),
            tracking_url: Some("https://www.ups.com/track?tracknum=1Z999AA10123456784".into()),
            eta: Some("2024-03-25".into()),
            last_event: Some(EventContext {
                status: "in_transit".into(),
                message: "Departed facility".into(),
                datetime: "2024-03-21T08:00:00.000Z".into(),
                location: Some("Louisville, KY, US".into()),
            }),
        }
    }
}

impl TemplateContext {
    /// A made-up return of the sample order, for checking templates.
    pub fn sample_return() -> Self {
        let sample = Self::sample();
        TemplateContext {
            trigger: "return.received".into(),
            fulfillment: None,
            return_record: Some(ReturnContext {
                id: "r-1".into(),
                status: "received".into(),
                shipment_status: "delivered".into(),
                note: None,
                created_at: "2024-03-28T12:00:00.000Z".into(),
                lines: vec![ReturnLineContext {
                    id: "line-1".into(),
                    title: "Mug".into(),
                    sku: Some("MUG-1".into()),
                    quantity: 1,
                    reason: "damaged".into(),
                    note: None,
                }],
                packages: sample
                    .fulfillment
                    .as_ref()
                    .map(|f| f.packages.clone())
                    .unwrap_or_default(),
            }),
            eta: None,
            ..sample
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_escape_what_they_substitute() {
        let mut ctx = TemplateContext::sample();
        ctx.order.customer_name = Some("<script>alert(1)</script>".into());
        let out = render(Kind::HtmlBody, "<p>Hi {{ order.customer_name }}</p>", &ctx).unwrap();
        assert_eq!(out, "<p>Hi &lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>");
    }

    #[test]
    fn json_bodies_quote_what_they_substitute() {
        let mut ctx = TemplateContext::sample();
        ctx.order.id = "a\"b".into();
        let out = render(
            Kind::JsonBody,
            r#"{"order": {{ order.id }}, "eta": {{ eta }}, "n": {{ fulfillment.lines | length }}}"#,
            &ctx,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["order"], "a\"b");
        assert_eq!(v["eta"], "2024-03-25");
        assert_eq!(v["n"], 1);
        assert!(validate(Kind::JsonBody, "{\"broken\": ").is_err());
        // A webhook body is an object: receivers read fields from it.
        let err = validate(Kind::JsonBody, "[1, 2]").unwrap_err();
        assert!(err.contains("must render a JSON object"), "{err}");
    }

    #[test]
    fn return_templates_name_the_return_and_not_a_fulfillment() {
        let ctx = TemplateContext::sample_return();
        let out = render(
            Kind::Subject,
            "Return {{ return.id }} {{ return.status }}: {{ return.lines[0].quantity }}x {{ return.lines[0].title }} ({{ return.lines[0].reason }}) {{ tracking_number }}{{ fulfillment.id }}",
            &ctx,
        )
        .unwrap();
        assert_eq!(
            out,
            "Return r-1 received: 1x Mug (damaged) 1Z999AA10123456784"
        );
        // A shipment's context has no return; naming one renders nothing.
        let out = render(
            Kind::Subject,
            "[{{ return.id }}]",
            &TemplateContext::sample(),
        )
        .unwrap();
        assert_eq!(out, "[]");
    }

    #[test]
    fn subjects_cannot_carry_line_breaks() {
        let mut ctx = TemplateContext::sample();
        ctx.order.id = "1\r\nBcc: x@example.com".into();
        let out = render(Kind::Subject, "Order {{ order.id }}", &ctx).unwrap();
        assert!(!out.contains('\n') && !out.contains('\r'), "{out:?}");
    }

    #[test]
    fn broken_or_endless_templates_are_refused() {
        assert!(validate(Kind::HtmlBody, "{% if %}").is_err());
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(validate(Kind::HtmlBody, endless).is_err());
    }
}
