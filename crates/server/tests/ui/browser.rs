//! The dashboard in a real headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini: sign in, search by tracking number, open the order and the fulfillment's
//! timeline, screenshot it; a wrong secret, a form without its CSRF token and a revoked key are
//! refused.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/install-browser`). Without them the
//! test fails when `CI` is set, and otherwise says loudly that it did not run.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::harness::{App, TRACKING};

/// Where artifacts (the screenshots) go: `target/ui-artifacts/`.
pub(crate) fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("ui-artifacts")
}

/// A program from an environment variable, or found on the PATH.
pub(crate) fn program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A chromedriver process on a loopback port, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start(chromedriver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(chromedriver);
        // Its own process group, which the browsers it starts join: dropping the driver ends
        // them all, even when the test fails half-way.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let ready = match client.get(format!("{}/status", driver.url)).send().await {
                Ok(resp) => resp
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group (chromedriver and the browsers it started), by its id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,900",
                "--disable-dev-shm-usage",
                "--no-first-run",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

/// Waits until the page's path (and query) is `expected` or satisfies the check.
pub(crate) async fn wait_for_path(
    client: &Client,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = client.current_url().await.expect("current URL");
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if ok(&path) {
            return path;
        }
        assert!(Instant::now() < deadline, "never reached {what}; at {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the first element matching `css`, once it satisfies `ok`. Retried until then:
/// right after a click the old page may still be there, or go away mid-read.
pub(crate) async fn wait_text(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = match client.find(Locator::Css(css)).await {
            Ok(element) => match element.text().await {
                Ok(text) if ok(&text) => return text,
                Ok(text) => text,
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{css}: never as expected; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the first element matching `css`, once there is one.
pub(crate) async fn text(client: &Client, css: &str) -> String {
    wait_text(client, css, |_| true).await
}

pub(crate) async fn sign_in(client: &Client, base: &str, secret: &str) {
    client
        .goto(&format!("{base}/ui/login"))
        .await
        .expect("login page");
    let field = client
        .find(Locator::Id("secret"))
        .await
        .expect("secret field");
    field.clear().await.expect("clear");
    field.send_keys(secret).await.expect("type secret");
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("click sign in");
}

#[tokio::test]
async fn dashboard_in_headless_chromium() {
    let (Some(chromedriver), Some(chromium)) = (
        program("WAYBILL_CHROMEDRIVER", "chromedriver"),
        program("WAYBILL_CHROMIUM", "chromium"),
    ) else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!(
                "CI is set but chromium/chromedriver are not installed: the browser tests must \
                 run in CI (install them with scripts/install-browser)"
            );
        }
        let _ = std::io::stderr().write_all(
            b"\n[waybill] *** browser tests NOT RUN: install with scripts/install-browser \
              (Debian's chromium and chromium-driver) ***\n",
        );
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(180),
        run_in_browser(&chromedriver, &chromium),
    )
    .await
    .expect("the browser test finished in time");
}

async fn run_in_browser(chromedriver: &Path, chromium: &Path) {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let driver = Driver::start(chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, chromium, profile.path()).await;
    let base = app.base.clone();

    // A wrong secret is refused on the sign-in page.
    sign_in(
        &client,
        &base,
        "wb_sk_0000000000000000000000000000000000000000000000000000000000000000",
    )
    .await;
    let error = text(&client, "#login-error").await;
    assert!(error.contains("not a live API secret"), "{error}");
    assert_eq!(
        wait_for_path(&client, "login", |p| p == "/ui/login").await,
        "/ui/login"
    );

    // The right one opens the exceptions view; the orders list is a link away.
    sign_in(&client, &base, &seeded.secret).await;
    wait_for_path(&client, "exceptions", |p| p == "/ui/exceptions").await;
    wait_text(&client, "main h1", |t| t == "Exceptions").await;
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders");
    wait_text(&client, "main h1", |t| t == "Orders").await;

    // Search by tracking number.
    let search = client.find(Locator::Id("q")).await.expect("search box");
    search.send_keys(TRACKING).await.expect("type");
    client
        .find(Locator::Css("form.search button[type=submit]"))
        .await
        .expect("search button")
        .click()
        .await
        .expect("search");
    wait_for_path(&client, "search results", |p| p.contains(TRACKING)).await;
    let rows = client
        .find_all(Locator::Css("main table tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "one order has that tracking number");
    let link = client
        .find(Locator::Css("main table tbody th a"))
        .await
        .expect("order link");
    assert_eq!(link.text().await.expect("text"), seeded.order);
    link.click().await.expect("open order");

    // The order: its lines and its fulfillment.
    wait_for_path(&client, "order page", |p| {
        p.starts_with("/ui/orders/") && !p.contains("fulfillments")
    })
    .await;
    wait_text(&client, "main h1", |t| t == "Order 1001").await;
    let lines = text(&client, "main table").await;
    assert!(
        lines.contains("T-shirt") && lines.contains("TEE-M"),
        "{lines}"
    );
    client
        .find(Locator::LinkText(&seeded.fulfillment))
        .await
        .expect("fulfillment link")
        .click()
        .await
        .expect("open fulfillment");

    // The fulfillment's timeline: every entry, in event-time order, with the carrier link.
    wait_for_path(&client, "fulfillment page", |p| {
        p.contains("/fulfillments/ful-1")
    })
    .await;
    wait_text(&client, "main h1", |t| t == "Fulfillment ful-1").await;
    let entries = client
        .find_all(Locator::Css("ol.timeline > li"))
        .await
        .expect("timeline entries");
    let mut messages = Vec::new();
    let mut times = Vec::new();
    for entry in &entries {
        messages.push(entry.text().await.expect("entry text"));
        let time = entry
            .find(Locator::Css("time"))
            .await
            .expect("entry time")
            .attr("datetime")
            .await
            .expect("datetime")
            .expect("datetime attribute");
        times.push(time);
    }
    assert_eq!(
        entries.len(),
        seeded.messages.len() + 1,
        "creation + updates: {messages:#?}"
    );
    assert_eq!(
        entries.len(),
        seeded.messages.len() + 1,
        "creation + updates: {messages:#?}"
    );
    for (entry, expected) in messages[1..].iter().zip(&seeded.messages) {
        assert!(
            entry.contains(expected),
            "{expected} not in {entry}: {messages:#?}"
        );
    }
    assert!(messages[0].contains("Label created"), "{messages:#?}");
    assert!(messages[3].contains("Out for delivery") && messages[3].contains("(latest)"));
    assert!(messages[1].contains("Louisville, KY, US"), "{messages:#?}");
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "entries are chronological");
    let track = client
        .find(Locator::Css("a.track"))
        .await
        .expect("carrier link");
    assert_eq!(
        track.attr("href").await.expect("href").as_deref(),
        Some(format!("https://www.ups.com/track?tracknum={TRACKING}").as_str())
    );
    assert!(track.text().await.expect("text").contains("Track on UPS"));
    let facts = text(&client, "dl.facts").await;
    assert!(facts.contains("Out for delivery"), "{facts}");
    assert!(facts.contains(&seeded.eta), "ETA shown: {facts}");

    // The screenshot, kept as an artifact.
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a real page, not a blank one: {} bytes",
        png.len()
    );
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join("timeline.png"), &png).expect("write screenshot");

    // On a phone-sized window the page does not scroll sideways.
    client.set_window_size(390, 844).await.expect("resize");
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders");
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(fits, json!(true), "no sideways scrolling on a phone");
    let png = client.screenshot().await.expect("phone screenshot");
    std::fs::write(dir.join("orders-phone.png"), &png).expect("write screenshot");
    client
        .set_window_size(1280, 900)
        .await
        .expect("resize back");

    // A form without its CSRF token is refused with 403, and the session survives.
    client
        .execute(
            "document.querySelector('form.signout input[name=csrf]').remove();",
            vec![],
        )
        .await
        .expect("drop the token");
    client
        .find(Locator::Css("form.signout button"))
        .await
        .expect("sign-out button")
        .click()
        .await
        .expect("sign out");
    let heading = wait_text(&client, "main h1", |t| t.contains("403")).await;
    assert_eq!(heading, "403 Forbidden");
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders");
    wait_text(&client, "main h1", |t| t == "Orders").await;

    // Revoking the key ends the session on the next request.
    assert!(
        app.store
            .revoke_api_key(&seeded.key_id)
            .await
            .expect("revoke")
    );
    client
        .goto(&format!("{base}/ui/orders"))
        .await
        .expect("orders after revocation");
    wait_for_path(&client, "sign-in after revocation", |p| {
        p == "/ui/login?ended=revoked"
    })
    .await;
    let notice = text(&client, "p.notice").await;
    assert!(notice.contains("revoked"), "{notice}");
    let cookies = client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().all(|c| c.name() != "waybill_session"),
        "the session cookie is gone"
    );

    client.close().await.expect("close the browser");
}

#[tokio::test]
async fn webhook_subscriptions_in_headless_chromium() {
    let (Some(chromedriver), Some(chromium)) = (
        program("WAYBILL_CHROMEDRIVER", "chromedriver"),
        program("WAYBILL_CHROMIUM", "chromium"),
    ) else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set but chromium/chromedriver are not installed");
        }
        let _ = std::io::stderr()
            .write_all(b"\n[waybill] *** webhook browser test NOT RUN: no chromium ***\n");
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(180),
        webhooks_in_browser(&chromedriver, &chromium),
    )
    .await
    .expect("the browser test finished in time");
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

pub(crate) async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Screenshots the current page at `width` into the artifacts, checking it does not scroll
/// sideways.
pub(crate) async fn shoot(client: &Client, width: u32, name: &str) {
    client.set_window_size(width, 1000).await.expect("resize");
    client.refresh().await.expect("reload");
    wait_text(client, "main h1", |t| !t.is_empty()).await;
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure");
    if fits != json!(true) {
        let wide = client
            .execute(
                "return [...document.querySelectorAll('body *')].filter(e => \
                 e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => \
                 e.tagName + '.' + e.className + '#' + e.id + ' ' + \
                 Math.round(e.getBoundingClientRect().right));",
                vec![],
            )
            .await
            .expect("measure");
        panic!("{name}: sideways scrolling at {width} px; too wide: {wide}");
    }
    let png = client.screenshot().await.expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{name}"
    );
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join(name), &png).expect("write screenshot");
}

async fn webhooks_in_browser(chromedriver: &Path, chromium: &Path) {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let driver = Driver::start(chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, chromium, profile.path()).await;
    let base = app.base.clone();
    let store_id = seeded.store_id.clone();
    let hooks = || {
        let store = app.store.clone();
        let store_id = store_id.clone();
        async move {
            store
                .list_webhooks(&store_id, waybill_store::WebhookFlavor::Redo)
                .await
                .expect("list")
        }
    };
    sign_in(&client, &base, &seeded.secret).await;
    wait_for_path(&client, "exceptions", |p| p == "/ui/exceptions").await;

    // Create through the form: the page shows the secret once.
    client
        .goto(&format!("{base}/ui/webhooks"))
        .await
        .expect("webhooks");
    click(&client, "a.button").await;
    wait_text(&client, "main h1", |t| t == "New webhook subscription").await;
    type_into(&client, "#redo-url", "http://127.0.0.1:9/hook").await;
    click(&client, "#new-redo input[name=topic][value=fulfillment]").await;
    type_into(&client, "#redo-bearer", "tok-browser").await;
    click(&client, "#new-redo button[type=submit]").await;
    let secret = wait_text(&client, "#revealed-secret", |t| t.starts_with("whsec_")).await;
    let created = hooks().await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].secret, secret);
    assert_eq!(created[0].topics, ["fulfillment"]);
    let id = created[0].id.clone();

    // Listed, and linked to its page.
    client
        .goto(&format!("{base}/ui/webhooks"))
        .await
        .expect("webhooks");
    let table = text(&client, "table.webhooks").await;
    assert!(
        table.contains("http://127.0.0.1:9/hook") && table.contains("Never"),
        "{table}"
    );
    client
        .find(Locator::LinkText("http://127.0.0.1:9/hook"))
        .await
        .expect("subscription link")
        .click()
        .await
        .expect("open subscription");
    wait_for_path(&client, "subscription", |p| {
        p == format!("/ui/webhooks/{id}")
    })
    .await;

    // Edit the URL.
    type_into(&client, "#url", "http://127.0.0.1:9/edited").await;
    click(&client, "#edit button[type=submit]").await;
    wait_for_path(&client, "saved", |p| p.ends_with("done=updated")).await;
    let facts = wait_text(&client, "dl.facts", |t| t.contains("/edited")).await;
    assert!(facts.contains("Set (not shown)"), "{facts}");
    assert_eq!(hooks().await[0].url, "http://127.0.0.1:9/edited");

    // Disable it.
    click(&client, "#toggle button").await;
    wait_text(&client, "#state", |t| t.starts_with("Disabled")).await;
    assert!(!hooks().await[0].enabled);

    // A POST without the CSRF token is refused and changes nothing.
    client
        .execute(
            "document.querySelector('#toggle input[name=csrf]').remove();",
            vec![],
        )
        .await
        .expect("drop the token");
    click(&client, "#toggle button").await;
    let heading = wait_text(&client, "main h1", |t| t.contains("403")).await;
    assert_eq!(heading, "403 Forbidden");
    assert!(!hooks().await[0].enabled, "still disabled");

    // Enable it again, and rotate its secret.
    client
        .goto(&format!("{base}/ui/webhooks/{id}"))
        .await
        .expect("subscription");
    click(&client, "#toggle button").await;
    wait_text(&client, "#state", |t| t == "Enabled").await;
    click(&client, "#rotate button").await;
    let rotated = wait_text(&client, "#revealed-secret", |t| t.starts_with("whsec_")).await;
    assert_ne!(rotated, secret);
    assert_eq!(hooks().await[0].secret, rotated);

    // Deliveries: one delivered, the rest pending. Filter the log by status.
    let path = format!(
        "/v2.2/stores/{}/orders/{}/fulfillments/{}/shipment-status",
        seeded.store_id, seeded.order, seeded.fulfillment
    );
    for status in ["in_transit", "out_for_delivery", "delivered"] {
        app.api(&seeded.secret, &path, json!({ "status": status }))
            .await;
    }
    assert_eq!(app.play_deliveries(&id).await, (1, 1));
    client
        .goto(&format!("{base}/ui/webhooks/{id}"))
        .await
        .expect("subscription");
    let all = client
        .find_all(Locator::Css("table.deliveries tbody tr"))
        .await
        .expect("rows");
    assert!(all.len() >= 3, "{} rows", all.len());
    client
        .find(Locator::Id("status"))
        .await
        .expect("status filter")
        .select_by_value("delivered")
        .await
        .expect("choose delivered");
    click(&client, "form.filters button[type=submit]").await;
    wait_for_path(&client, "filtered", |p| p.contains("status=delivered")).await;
    let rows = client
        .find_all(Locator::Css("table.deliveries tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "only the delivered one");
    for row in &rows {
        let badge = row
            .find(Locator::Css("td .badge"))
            .await
            .expect("status badge")
            .text()
            .await
            .expect("text");
        assert_eq!(badge, "delivered");
    }

    // Screenshots of the list and the subscription page, wide and phone-sized.
    client
        .goto(&format!("{base}/ui/webhooks/{id}"))
        .await
        .expect("subscription");
    shoot(&client, 1400, "webhook.png").await;
    shoot(&client, 390, "webhook-phone.png").await;
    client
        .goto(&format!("{base}/ui/webhooks"))
        .await
        .expect("webhooks");
    shoot(&client, 1400, "webhooks.png").await;
    shoot(&client, 390, "webhooks-phone.png").await;
    client
        .set_window_size(1280, 900)
        .await
        .expect("resize back");

    // Delete, through the confirmation step.
    client
        .goto(&format!("{base}/ui/webhooks/{id}"))
        .await
        .expect("subscription");
    click(&client, "a.danger-link").await;
    wait_text(&client, "main h1", |t| t == "Delete this subscription?").await;
    assert_eq!(hooks().await.len(), 1, "not before confirming");
    click(&client, "#confirm-delete button").await;
    wait_for_path(&client, "deleted", |p| p == "/ui/webhooks?done=deleted").await;
    let notice = text(&client, "p.notice").await;
    assert!(notice.contains("deleted"), "{notice}");
    assert!(hooks().await.is_empty());

    client.close().await.expect("close the browser");
}
