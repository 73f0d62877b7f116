//! The exceptions view, the orders list (sort, filters, search, paging that keeps them, CSV
//! export) and the order and fulfillment pages (every parcel linked, money by currency, the
//! delayed/stalled pills): over plain HTTP, and in headless Chromium with screenshots at 1400
//! and 390 px and no sideways scrolling from 360 to 1920 px. Data goes in through the Redo API
//! (a `delayed` and a `stalled_in_transit` event are POSTed to shipment-status). Another
//! store's data is never shown, and its pages are 404.

use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};
use waybill_core::OrderRef;

use crate::browser::{
    Driver, artifacts_dir, browser, click, program, sign_in, wait_for_path, wait_text,
};
use crate::harness::{App, Seeded};

/// What `seed_exceptions` made beyond `App::seed`'s on-time order 1001.
struct World {
    seeded: Seeded,
    /// Store A's orders' internal ids, by external id.
    delayed_id: String,
    stalled_id: String,
    /// The other store's delayed order (internal id) and its secret.
    other_order_id: String,
    other_secret: String,
}

/// The order id that tries to be a spreadsheet formula, with a comma and quotes.
const FORMULA_ID: &str = "=HYPERLINK(\"http://x\"),1";

async fn put(app: &App, secret: &str, path: &str, body: Value) {
    let resp = app
        .client
        .put(app.url(path))
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

async fn order_with_fulfillment(app: &App, secret: &str, store: &str, id: &str, day: u32) {
    let base = format!("/v2.2/stores/{store}");
    app.api(
        secret,
        &format!("{base}/orders"),
        json!({"orderId": id, "createdAt": format!("2024-03-{day:02}T12:00:00Z"),
               "customer": {"email": format!("c{id}@example.com")},
               "totalPrice": 12.5, "currencyCode": "EUR",
               "lineItems": [{"id": "l", "productId": "p", "sku": format!("SKU-{id}"), "title": "Thing", "quantity": 3}]}),
    )
    .await;
    app.api(
        secret,
        &format!("{base}/orders/{id}/fulfillments"),
        json!({"fulfillmentId": format!("ful-{id}"), "lineItems": [{"id": "l", "quantity": 3}],
               "tracking": {"carrier": "UPS", "code": format!("1Z999AA1000000{id}")}}),
    )
    .await;
}

async fn status(app: &App, secret: &str, store: &str, id: &str, status: &str) {
    app.api(
        secret,
        &format!("/v2.2/stores/{store}/orders/{id}/fulfillments/ful-{id}/shipment-status"),
        json!({"status": status}),
    )
    .await;
}

async fn internal_id(app: &App, store: &str, order: &str) -> String {
    app.store
        .get_order(store, &OrderRef::new(order))
        .await
        .expect("order")
        .id
        .to_string()
}

async fn seed_exceptions(app: &App) -> World {
    let seeded = app.seed().await;
    let (s, secret) = (seeded.store_id.clone(), seeded.secret.clone());
    // 2001: delayed.
    order_with_fulfillment(app, &secret, &s, "2001", 21).await;
    status(app, &secret, &s, "2001", "in_transit").await;
    status(app, &secret, &s, "2001", "delayed").await;
    // 2002: three parcels, then stalled.
    order_with_fulfillment(app, &secret, &s, "2002", 22).await;
    put(
        app,
        &secret,
        &format!("/v2.2/stores/{s}/orders/2002/fulfillments/ful-2002/tracking"),
        json!({"packages": [
            {"carrier": "UPS", "trackingNumber": "1Z999AA10000002002"},
            {"carrier": "FedEx", "trackingNumber": "794600000002"},
            {"carrier": "USPS", "trackingNumber": "9400100000000000000002"}
        ]}),
    )
    .await;
    status(app, &secret, &s, "2002", "in_transit").await;
    status(app, &secret, &s, "2002", "stalled_in_transit").await;
    // An order whose id is a formula, with a comma and quotes (no fulfillment).
    app.api(
        &secret,
        &format!("/v2.2/stores/{s}/orders"),
        json!({"orderId": FORMULA_ID, "createdAt": "2024-03-23T12:00:00Z",
               "lineItems": [{"id": "l", "productId": "p", "title": "Thing", "quantity": 1}]}),
    )
    .await;
    // Another store with a delayed shipment of its own.
    let (other, key) = app.store.create_store("Other").await.expect("store");
    order_with_fulfillment(app, &key.secret, &other.id, "9001", 24).await;
    status(app, &key.secret, &other.id, "9001", "delayed").await;
    World {
        delayed_id: internal_id(app, &s, "2001").await,
        stalled_id: internal_id(app, &s, "2002").await,
        other_order_id: internal_id(app, &other.id, "9001").await,
        other_secret: key.secret,
        seeded,
    }
}

/// The external ids of the orders table's rows, in order.
fn listed(html: &str) -> Vec<String> {
    let Some(start) = html.find("<tbody>") else {
        return Vec::new();
    };
    let body = &html[start
        ..html[start..]
            .find("</tbody>")
            .map_or(html.len(), |e| start + e)];
    body.split("<th scope=\"row\"><a href=\"")
        .skip(1)
        .filter_map(|row| {
            let open = row.find('>')? + 1;
            let close = row.find("</a>")?;
            Some(
                row[open..close]
                    .replace("&quot;", "\"")
                    .replace("&#x3d;", "=")
                    .replace("&amp;", "&"),
            )
        })
        .collect()
}

#[tokio::test]
async fn exceptions_list_delayed_and_stalled_shipments_of_the_store_only() {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let session = app.sign_in(&world.seeded.secret).await;

    let (code, html) = app.page(&session, "/ui/exceptions").await;
    assert_eq!(code, StatusCode::OK);
    let rows = listed(&html);
    assert!(rows.contains(&"2001".to_owned()), "{rows:?}");
    assert!(rows.contains(&"2002".to_owned()), "{rows:?}");
    assert!(!rows.contains(&"1001".to_owned()), "on time: {rows:?}");
    assert!(!html.contains("9001"), "another store's shipment is shown");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(html.contains("<span class=\"badge exc exc-delayed\">Delayed</span>"));
    assert!(html.contains("<span class=\"badge exc exc-stalled\">Stalled</span>"));
    for kind in ["Delayed", "Stalled"] {
        assert!(
            html.contains(&format!(
                "<span class=\"n\">1</span> <span class=\"what\">{kind}</span>"
            )),
            "count of {kind}"
        );
    }
    assert!(html.contains(&format!("href=\"/ui/orders/{}\"", world.delayed_id)));
    // One kind only.
    let (_, html) = app.page(&session, "/ui/exceptions?kind=stalled").await;
    assert_eq!(listed(&html), ["2002"]);
    // The landing page is the exceptions view.
    let resp = app
        .client
        .get(app.url("/ui/"))
        .header(COOKIE, format!("waybill_session={session}"))
        .send()
        .await
        .expect("home");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // The other store sees its own delayed shipment and none of these.
    let theirs = app.sign_in(&world.other_secret).await;
    let (_, html) = app.page(&theirs, "/ui/exceptions").await;
    assert_eq!(listed(&html), ["9001"]);
}

#[tokio::test]
async fn orders_sort_filter_search_and_page_with_their_filters() {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let s = world.seeded.store_id.clone();
    let session = app.sign_in(&world.seeded.secret).await;
    let ids = |path: &'static str| {
        let (app, session) = (&app, &session);
        async move {
            let (code, html) = app.page(session, path).await;
            assert_eq!(code, StatusCode::OK, "{path}");
            listed(&html)
        }
    };
    // Newest first by default; oldest first; by ETA (only 1001 has one).
    assert_eq!(
        ids("/ui/orders").await,
        [FORMULA_ID, "2002", "2001", "1001"]
    );
    assert_eq!(
        ids("/ui/orders?sort=oldest").await,
        ["1001", "2001", "2002", FORMULA_ID]
    );
    assert_eq!(ids("/ui/orders?sort=eta").await[0], "1001");
    let by_status = ids("/ui/orders?sort=status").await;
    assert_eq!(by_status.len(), 4);
    // Filters: exception, carrier, creation dates (both ends inclusive), status; search.
    assert_eq!(ids("/ui/orders?exception=delayed").await, ["2001"]);
    assert_eq!(ids("/ui/orders?exception=stalled").await, ["2002"]);
    assert_eq!(ids("/ui/orders?carrier=fedex").await, ["2002"]);
    assert_eq!(
        ids("/ui/orders?from=2024-03-21&to=2024-03-22&sort=oldest").await,
        ["2001", "2002"]
    );
    assert_eq!(ids("/ui/orders?q=SKU-2001").await, ["2001"]);
    assert_eq!(ids("/ui/orders?q=794600000002").await, ["2002"]);
    assert_eq!(ids("/ui/orders?q=c2002%40example.com").await, ["2002"]);
    assert_eq!(ids("/ui/orders?q=200&sort=oldest").await, ["2001", "2002"]);
    let (_, html) = app.page(&session, "/ui/orders?from=yesterday").await;
    assert!(html.contains("was not a date"), "a bad date is reported");

    // Paging keeps the filters: 26 orders starting "p-" make two pages.
    for i in 0..26 {
        app.store
            .create_order(
                &s,
                waybill_store::testing::one_line_order(&format!("p-{i:02}"), 1),
            )
            .await
            .expect("order");
    }
    let (_, html) = app.page(&session, "/ui/orders?q=p-&sort=oldest").await;
    assert_eq!(listed(&html).len(), 25);
    let next = "/ui/orders?q=p-&amp;sort=oldest&amp;page=2";
    assert!(html.contains(next), "the next link keeps the filters");
    let (_, html) = app.page(&session, &next.replace("&amp;", "&")).await;
    assert_eq!(listed(&html), ["p-25"]);
    assert!(html.contains("/ui/orders?q=p-&amp;sort=oldest\" rel=\"prev\""));
    assert!(html.contains("href=\"/ui/orders.csv?q=p-&amp;sort=oldest\""));
}

#[tokio::test]
async fn csv_export_is_the_filtered_list_quoted_and_formula_safe() {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let session = app.sign_in(&world.seeded.secret).await;
    let get = |path: &'static str| {
        let (app, session) = (&app, &session);
        async move {
            let resp = app
                .client
                .get(app.url(path))
                .header(COOKIE, format!("waybill_session={session}"))
                .send()
                .await
                .expect("export");
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let kind = resp.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap_or_default()
                .to_owned();
            assert!(kind.starts_with("text/csv"), "{kind}");
            let disposition = resp.headers()[CONTENT_DISPOSITION]
                .to_str()
                .unwrap_or_default()
                .to_owned();
            assert!(disposition.starts_with("attachment"), "{disposition}");
            resp.text().await.expect("body")
        }
    };
    let text = get("/ui/orders.csv?sort=oldest").await;
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    // The formula is defused with a quote, and the cell quoted (comma, doubled quotes).
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x\"\"),1\""),
        "{text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "order_id",
            "created_at",
            "status",
            "exceptions",
            "exception_reasons",
            "customer_email",
            "total",
            "currency",
            "units_ordered",
            "units_fulfilled",
            "estimated_delivery",
            "carriers",
            "tracking_numbers",
            "fulfillments"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, ["1001", "2001", "2002", "'=HYPERLINK(\"http://x\"),1"]);
    assert_eq!(&rows[0][5], "ada@example.com");
    assert_eq!(&rows[0][6], "59.97");
    assert_eq!(&rows[1][3], "Delayed");
    assert_eq!(&rows[1][4], "", "a delay without a reason");
    assert_eq!(&rows[2][3], "Stalled");
    assert_eq!(
        &rows[2][12],
        "1Z999AA10000002002; 794600000002; 9400100000000000000002"
    );

    // Filtered like the list; another store's order never appears.
    let text = get("/ui/orders.csv?exception=delayed").await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let ids: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[0].to_owned())
        .collect();
    assert_eq!(ids, ["2001"]);
    let text = get("/ui/orders.csv?q=9001").await;
    assert_eq!(text.lines().count(), 1, "only the header: {text}");
}

#[tokio::test]
async fn order_pages_show_every_parcel_money_and_flags_and_refuse_other_stores() {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let session = app.sign_in(&world.seeded.secret).await;

    let (code, html) = app
        .page(&session, &format!("/ui/orders/{}", world.stalled_id))
        .await;
    assert_eq!(code, StatusCode::OK);
    for link in [
        "https://www.ups.com/track?tracknum=1Z999AA10000002002",
        "https://www.fedex.com/fedextrack/?trknbr=794600000002",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000002",
    ] {
        let escaped = link.replace('&', "&amp;").replace('=', "&#x3d;");
        assert!(
            html.contains(link) || html.contains(&escaped),
            "{link} missing"
        );
    }
    assert_eq!(html.matches("class=\"track\"").count(), 3);
    assert!(html.contains("<span class=\"badge flag flag-stalled\">Stalled</span>"));
    assert!(html.contains("€12.50"), "money by currency");
    assert!(
        html.contains("<time datetime=\"20"),
        "machine-readable times"
    );
    let (_, html) = app.page(&session, "/ui/orders/1001").await;
    assert!(html.contains("$59.97"));
    let (_, html) = app
        .page(
            &session,
            &format!("/ui/orders/{}/fulfillments/ful-2001", world.delayed_id),
        )
        .await;
    assert!(html.contains("<span class=\"badge flag flag-delayed\">Delayed</span>"));

    // Another store's order and fulfillment are not found, by internal or external id.
    for path in [
        format!("/ui/orders/{}", world.other_order_id),
        format!("/ui/orders/{}/fulfillments/ful-9001", world.other_order_id),
        "/ui/orders/9001".to_owned(),
    ] {
        let (code, html) = app.page(&session, &path).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains("c9001@example.com"));
    }
}

// ---- in Chromium ----

/// Whether the page scrolls sideways at `width` px (`document.scrollingElement`).
async fn fits(client: &Client, width: u32) -> bool {
    client.set_window_size(width, 900).await.expect("resize");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let inner = client
        .execute("return window.innerWidth;", vec![])
        .await
        .expect("measure");
    let answer = client
        .execute(
            "return document.scrollingElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert!(inner.as_u64().is_some(), "innerWidth: {inner}");
    answer == json!(true)
}

/// Checks the current page at 360, 390, 1400 and 1920 px, and screenshots it at 1400 and
/// 390 px as `<name>-1400.png` and `<name>-390.png`.
pub(crate) async fn check_and_shoot(client: &Client, name: &str) {
    for width in [360, 390, 1400, 1920] {
        if !fits(client, width).await {
            // Name the elements that reach past the window, for whoever fixes it.
            let wide = client
                .execute(
                    "return [...document.querySelectorAll('body *')]
                       .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                       .slice(0, 8).map(e => e.tagName + '.' + e.className + ' '
                         + Math.round(e.getBoundingClientRect().right));",
                    vec![],
                )
                .await
                .expect("measure");
            panic!("{name}: sideways scrolling at {width} px: {wide}");
        }
    }
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    for width in [1400, 390] {
        client.set_window_size(width, 1000).await.expect("resize");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = client.screenshot().await.expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{name}"
        );
        std::fs::write(dir.join(format!("{name}-{width}.png")), &png).expect("write");
    }
}

#[tokio::test]
async fn exceptions_and_orders_in_headless_chromium() {
    let (Some(chromedriver), Some(chromium)) = (
        program("WAYBILL_CHROMEDRIVER", "chromedriver"),
        program("WAYBILL_CHROMIUM", "chromium"),
    ) else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set but chromium/chromedriver are not installed");
        }
        eprintln!("\n[waybill] *** exceptions browser test NOT RUN: no chromium ***");
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(240),
        in_browser(&chromedriver, &chromium),
    )
    .await
    .expect("the browser test finished in time");
}

async fn in_browser(chromedriver: &Path, chromium: &Path) {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let driver = Driver::start(chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, chromium, profile.path()).await;
    let base = app.base.clone();

    // The sign-in page, before signing in.
    client
        .goto(&format!("{base}/ui/login"))
        .await
        .expect("sign-in page");
    wait_text(&client, "main h1", |t| !t.is_empty()).await;
    check_and_shoot(&client, "login").await;

    // Signing in lands on the exceptions: the delayed and the stalled one, not the on-time one.
    sign_in(&client, &base, &world.seeded.secret).await;
    wait_for_path(&client, "exceptions", |p| p == "/ui/exceptions").await;
    let table = wait_text(&client, "table.exceptions", |t| t.contains("2002")).await;
    assert!(
        table.contains("2001") && table.contains("Delayed"),
        "{table}"
    );
    assert!(table.contains("Stalled"), "{table}");
    assert!(!table.contains("1001"), "{table}");
    // Times are shown in the browser's zone, with UTC kept on hover.
    let title = client
        .find(Locator::Css("table.exceptions time"))
        .await
        .expect("time")
        .attr("title")
        .await
        .expect("title");
    assert!(title.is_some_and(|t| t.ends_with("UTC")));
    check_and_shoot(&client, "exceptions").await;

    // The orders list, filtered by exception through the form.
    client.set_window_size(1400, 1000).await.expect("resize");
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders");
    wait_text(&client, "main h1", |t| t == "Orders").await;
    client
        .find(Locator::Css("#exception option[value=delayed]"))
        .await
        .expect("option")
        .click()
        .await
        .expect("choose");
    click(&client, "form.search button[type=submit]").await;
    wait_for_path(&client, "filtered", |p| p.contains("exception=delayed")).await;
    let rows = client
        .find_all(Locator::Css("table.orders tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders");
    wait_text(&client, "table.orders", |t| t.contains("2002")).await;
    check_and_shoot(&client, "orders").await;

    // The order with three parcels, and its fulfillment.
    client
        .goto(&format!("{base}/ui/orders/{}", world.stalled_id))
        .await
        .expect("order");
    wait_text(&client, "main h1", |t| t == "Order 2002").await;
    let links = client
        .find_all(Locator::Css("ul.parcels a.track"))
        .await
        .expect("parcel links");
    assert_eq!(links.len(), 3);
    check_and_shoot(&client, "order").await;
    client
        .goto(&format!(
            "{base}/ui/orders/{}/fulfillments/ful-2002",
            world.stalled_id
        ))
        .await
        .expect("fulfillment");
    wait_text(&client, "main h1", |t| t == "Fulfillment ful-2002").await;
    check_and_shoot(&client, "fulfillment").await;

    // The remaining pages, each at every width and in a screenshot.
    for (path, name) in [
        ("/ui/webhooks", "webhooks-list"),
        ("/ui/webhooks/new", "webhook-new"),
        ("/ui/automations", "automations"),
        ("/ui/automations/new", "automation-new"),
        ("/ui/import", "import"),
    ] {
        client.set_window_size(1400, 1000).await.expect("resize");
        client.goto(&format!("{base}{path}")).await.expect("page");
        wait_for_path(&client, name, |p| p == path).await;
        wait_text(&client, "main h1", |t| !t.is_empty()).await;
        check_and_shoot(&client, name).await;
    }
    let _ = client.close().await;
}

/// The form controls of a page without a label: neither a `<label for>` naming their id nor a
/// `<label>` around them (hidden inputs need none).
fn unlabelled(html: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in html.match_indices(tag) {
            let end = html[at..].find('>').map_or(html.len(), |e| at + e);
            let element = &html[at..end];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let by_id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .is_some_and(|id| html.contains(&format!("for=\"{id}\"")));
            let before = &html[..at];
            let wrapped = before
                .rfind("<label")
                .is_some_and(|open| !before[open..].contains("</label>"));
            if !by_id && !wrapped {
                missing.push(element.to_owned());
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_control_is_labelled() {
    let app = App::spawn().await;
    let world = seed_exceptions(&app).await;
    let session = app.sign_in(&world.seeded.secret).await;
    for path in [
        "/ui/exceptions".to_owned(),
        "/ui/orders".to_owned(),
        format!("/ui/orders/{}", world.stalled_id),
    ] {
        let (code, html) = app.page(&session, &path).await;
        assert_eq!(code, StatusCode::OK, "{path}");
        assert_eq!(unlabelled(&html), Vec::<String>::new(), "{path}");
    }
    // The check itself finds a bare control.
    assert_eq!(unlabelled("<p><input id=\"x\" name=\"x\"></p>").len(), 1);
    let (_, html) = app.page(&session, "/ui/orders").await;
    assert!(html.matches("<select").count() >= 2 && html.contains("type=\"date\""));
}
