//! Templates (embedded at compile time, rendered with minijinja, HTML auto-escaping on for all
//! of them), static assets, and the small formatting helpers the pages share.

use std::sync::LazyLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use sha2::{Digest, Sha256};
use waybill_core::{Location, StatusOrEvent, Timestamp};

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("orders.html", include_str!("templates/orders.html")),
    ("exceptions.html", include_str!("templates/exceptions.html")),
    ("order.html", include_str!("templates/order.html")),
    (
        "fulfillment.html",
        include_str!("templates/fulfillment.html"),
    ),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
    (
        "webhook_new.html",
        include_str!("templates/webhook_new.html"),
    ),
    (
        "webhook_delete.html",
        include_str!("templates/webhook_delete.html"),
    ),
    (
        "automations.html",
        include_str!("templates/automations.html"),
    ),
    ("automation.html", include_str!("templates/automation.html")),
    ("error.html", include_str!("templates/error.html")),
    (
        "fulfillment_actions.html",
        include_str!("templates/fulfillment_actions.html"),
    ),
    (
        "fulfillment_cancel.html",
        include_str!("templates/fulfillment_cancel.html"),
    ),
    (
        "automation_form.html",
        include_str!("templates/automation_form.html"),
    ),
    (
        "automation_delete.html",
        include_str!("templates/automation_delete.html"),
    ),
    ("import.html", include_str!("templates/import.html")),
    ("returns.html", include_str!("templates/returns.html")),
    ("return.html", include_str!("templates/return.html")),
    ("return_new.html", include_str!("templates/return_new.html")),
];

pub const CSS: &str = include_str!("static/ui.css");
pub const JS: &str = include_str!("static/ui.js");

/// A short hash of the assets, put in their URLs so that they can be cached for good.
pub static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new().chain_update(CSS).chain_update(JS).finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
});

/// Upper bound on template work per render (minijinja "fuel"): far above what any page with
/// full listings needs, so that a template bug cannot spin forever.
const FUEL: u64 = 50_000_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Escape everything, whatever a template's name: no page may emit unescaped data.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_fuel(Some(FUEL));
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "dashboard template does not compile");
        }
    }
    env
});

/// What every page's layout needs.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark current (`orders`, `webhooks`, `automations`), if any.
    pub section: &'static str,
    /// The signed-in store, if any (the sign-out form and the navigation need it).
    pub store_id: Option<String>,
    pub csrf: Option<String>,
    pub asset_version: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, section: &'static str) -> Layout {
        Layout {
            title: title.into(),
            section,
            store_id: None,
            csrf: None,
            asset_version: ASSET_VERSION.as_str(),
        }
    }
}

#[derive(Serialize)]
struct Page<'a, T: Serialize> {
    layout: &'a Layout,
    #[serde(flatten)]
    body: &'a T,
}

/// Renders a template as an HTML response that no cache keeps (pages show a store's data).
pub fn page<T: Serialize>(status: StatusCode, name: &str, layout: &Layout, body: &T) -> Response {
    let rendered = ENV
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(Page { layout, body })));
    match rendered {
        Ok(html) => html_response(status, html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "rendering a dashboard page");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Error</title>\
                 <p>Something went wrong on our side. Try again shortly.</p></html>"
                    .to_owned(),
            )
        }
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error page with a fixed, non-revealing message.
pub fn error_page(status: StatusCode, message: &str, layout: &Layout) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        status: u16,
        reason: &'a str,
        message: &'a str,
    }
    page(
        status,
        "error.html",
        layout,
        &Body {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        },
    )
}

/// An instant for people: `2024-03-21 08:00 UTC`.
pub fn human_time(ts: Timestamp) -> String {
    ts.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An instant for machines (`<time datetime>`).
pub fn machine_time(ts: Timestamp) -> String {
    waybill_core::time::format(ts)
}

/// An instant, shown both ways.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    pub human: String,
    pub machine: String,
}

impl From<Timestamp> for When {
    fn from(ts: Timestamp) -> When {
        When {
            human: human_time(ts),
            machine: machine_time(ts),
        }
    }
}

/// "City, State 12345, Country", leaving out what is missing.
pub fn location_text(location: Option<&Location>) -> Option<String> {
    let l = location?;
    let city_state = [l.city.as_deref(), l.state.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let parts: Vec<String> = [Some(city_state), l.postal_code.clone(), l.country.clone()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The readable name of a status or event as stored in history ("in_transit" → "In transit").
pub fn status_text(status: &str) -> String {
    match StatusOrEvent::parse(status) {
        Ok(s) => s.description().to_owned(),
        Err(_) => status.replace('_', " "),
    }
}

/// A URL safe to put in an `href`: absolute http(s) only (never `javascript:` or the like).
pub fn safe_link(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// One path segment, percent-encoded (every byte but the unreserved ones).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name} does not compile");
        }
    }

    #[test]
    fn values_are_escaped() {
        let layout = Layout::new("<script>x</script>", "");
        let response = error_page(StatusCode::NOT_FOUND, "<b>&\"'", &layout);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let rendered = ENV
            .get_template("error.html")
            .and_then(|t| {
                t.render(minijinja::value::Serde(Page {
                    layout: &layout,
                    body: &serde_json::json!({"status": 404, "reason": "x", "message": "<b>&\"'"}),
                }))
            })
            .expect("renders");
        assert!(!rendered.contains("<script>x"));
        assert!(!rendered.contains("<b>&"));
        assert!(rendered.contains("&lt;b&gt;&amp;"));
    }

    #[test]
    fn only_http_links_are_kept() {
        assert_eq!(
            safe_link("https://www.ups.com/track?tracknum=1Z"),
            Some("https://www.ups.com/track?tracknum=1Z".to_owned())
        );
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(safe_link("data:text/html,x"), None);
        assert_eq!(safe_link("/relative"), None);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a b/c?d#é"), "a%20b%2Fc%3Fd%23%C3%A9");
        assert_eq!(segment("ful-1_x.y~"), "ful-1_x.y~");
    }

    #[test]
    fn locations_and_statuses_read_well() {
        let l = Location {
            city: Some("Louisville".into()),
            state: Some("KY".into()),
            country: Some("US".into()),
            postal_code: None,
        };
        assert_eq!(
            location_text(Some(&l)).as_deref(),
            Some("Louisville, KY, US")
        );
        assert_eq!(location_text(Some(&Location::default())), None);
        assert_eq!(status_text("in_transit"), "In transit");
        assert_eq!(status_text("made_up_thing"), "made up thing");
    }
}
