//! A server to test the dashboard against, seeded through the real Redo API.

use std::sync::Arc;

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use waybill_server::AppState;
use waybill_server::webhooks::UrlPolicy;
use waybill_store::Store;
use waybill_store::testing::TestDatabase;

pub const TRACKING: &str = "1Z999AA10123456784";

/// A running server on its own database, and an HTTP client that does not follow redirects.
pub struct App {
    pub base: String,
    pub client: Client,
    pub store: Arc<dyn Store>,
    /// Shared by every server of a test that runs several on one database.
    pub _db: Arc<TestDatabase>,
}

/// What `seed` created.
pub struct Seeded {
    pub store_id: String,
    pub secret: String,
    pub key_id: String,
    pub order: String,
    pub fulfillment: String,
    /// The updates' messages, oldest first (after the creation entry).
    pub messages: Vec<&'static str>,
    /// The estimated delivery date sent (`YYYY-MM-DD`).
    pub eta: String,
}

impl App {
    pub async fn spawn() -> App {
        let db = TestDatabase::new().await.expect("test database");
        App::spawn_on(Arc::new(db), |state| state, std::future::pending()).await
    }

    /// A server on an existing database (one of several, or a restart), with its own store
    /// handle, state as `configure` makes it, running until `shutdown` resolves.
    pub async fn spawn_on(
        db: Arc<TestDatabase>,
        configure: impl FnOnce(AppState) -> AppState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> App {
        let store = db.open().await.expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Webhook callbacks on loopback are accepted; no dispatcher runs, nothing is sent.
        let state = configure(AppState::new(store.clone()).with_url_policy(UrlPolicy::allow_all()));
        tokio::spawn(waybill_server::serve(listener, state, shutdown));
        App {
            base: format!("http://{addr}"),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            store,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A Redo API call that must succeed.
    pub async fn api(&self, secret: &str, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(secret)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("JSON");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// A store with order 1001 (2 T-shirts, 1 mug) and fulfillment ful-1 of one T-shirt by UPS,
    /// which then gets three tracking updates, all through the Redo API.
    pub async fn seed(&self) -> Seeded {
        let (record, key) = self.store.create_store("UI shop").await.expect("store");
        let base = format!("/v2.2/stores/{}", record.id);
        let secret = key.secret.clone();
        self.api(
            &secret,
            &format!("{base}/orders"),
            json!({
                "orderId": "1001",
                "createdAt": "2024-03-20T12:00:00Z",
                "customer": {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
                "totalPrice": 59.97,
                "currencyCode": "USD",
                "lineItems": [
                    {"id": "line-1", "productId": "prod-1", "sku": "TEE-M", "title": "T-shirt",
                     "quantity": 2, "price": "19.99"},
                    {"id": "line-2", "productId": "prod-2", "sku": "MUG", "title": "Mug", "quantity": 1}
                ]
            }),
        )
        .await;
        self.api(
            &secret,
            &format!("{base}/orders/1001/fulfillments"),
            json!({"fulfillmentId": "ful-1", "lineItems": [{"id": "line-1", "quantity": 1}],
                   "tracking": {"carrier": "UPS", "code": TRACKING}}),
        )
        .await;
        // Event times after the creation entry (which is stamped now), an hour and days apart.
        let at = |hours: i64| {
            (Utc::now() + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        // Due the day it goes out for delivery: on time, so no "arriving early" event.
        let eta = (Utc::now() + Duration::hours(50))
            .format("%Y-%m-%d")
            .to_string();
        let updates = [
            json!({"status": "in_transit", "message": "Departed facility", "datetime": at(1),
                   "location": {"city": "Louisville", "state": "KY", "country": "US"},
                   "estimatedDeliveryDate": eta.clone()}),
            json!({"status": "in_transit", "message": "Arrived at sort facility", "datetime": at(26),
                   "location": {"city": "Chicago", "state": "IL", "country": "US"}}),
            json!({"status": "out_for_delivery", "message": "Out for delivery", "datetime": at(50),
                   "location": {"city": "Evanston", "state": "IL", "postalCode": "60201", "country": "US"}}),
        ];
        for update in updates {
            self.api(
                &secret,
                &format!("{base}/orders/1001/fulfillments/ful-1/shipment-status"),
                update,
            )
            .await;
        }
        Seeded {
            key_id: key.id,
            store_id: record.id,
            secret,
            order: "1001".into(),
            fulfillment: "ful-1".into(),
            eta,
            messages: vec![
                "Departed facility",
                "Arrived at sort facility",
                "Out for delivery",
            ],
        }
    }

    /// Signs in over HTTP as a browser would; returns the session cookie's value.
    pub async fn sign_in(&self, secret: &str) -> String {
        let (login_cookie, token) = self.login_form().await;
        let resp = self
            .client
            .post(self.url("/ui/login"))
            .header(COOKIE, format!("waybill_login={login_cookie}"))
            .form_body(&[("csrf", token.as_str()), ("secret", secret)])
            .send()
            .await
            .expect("sign in");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        cookie_value(&resp, "waybill_session").expect("session cookie")
    }

    /// The sign-in form's cookie and hidden token.
    pub async fn login_form(&self) -> (String, String) {
        let resp = self
            .client
            .get(self.url("/ui/login"))
            .send()
            .await
            .expect("login form");
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = cookie_value(&resp, "waybill_login").expect("login cookie");
        let html = resp.text().await.expect("html");
        (cookie, csrf_in(&html).expect("token in form"))
    }

    /// GET a dashboard page with a session cookie.
    pub async fn page(&self, session: &str, path: &str) -> (StatusCode, String) {
        let resp = self
            .client
            .get(self.url(path))
            .header(COOKIE, format!("waybill_session={session}"))
            .send()
            .await
            .expect("page");
        let status = resp.status();
        // minijinja escapes '/' as an entity, even in URLs (as HTML allows); read it back.
        let html = resp.text().await.expect("html").replace("&#x2f;", "/");
        (status, html)
    }
}

/// The first hidden CSRF token in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

/// A cookie the response sets (an empty value, as when deleting, counts as none).
pub fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookie_header(resp, name)
        .and_then(|h| {
            h.split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .map(|(_, v)| v.to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// The whole `Set-Cookie` header for a cookie.
pub fn set_cookie_header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// `application/x-www-form-urlencoded` bodies (reqwest's own `form` needs a feature this
/// workspace does not turn on).
pub trait FormBody {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            body.append_pair(k.as_ref(), v.as_ref());
        }
        self.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.finish())
    }
}

impl App {
    /// POSTs a form with a session cookie; status, `Location` and the page.
    pub async fn post_form(
        &self,
        session: &str,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let resp = self
            .client
            .post(self.url(path))
            .header(COOKIE, format!("waybill_session={session}"))
            .form_body(pairs)
            .send()
            .await
            .expect("post form");
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let html = resp.text().await.expect("html").replace("&#x2f;", "/");
        (status, location, html)
    }

    /// Plays the dispatcher for `webhook_id` without sending anything: fans the outbox out,
    /// then claims until nothing is due, recording the first delivery as delivered (200) and
    /// every later one as failing with 500, to be retried in an hour (which holds back the
    /// rest of its order). Returns how many of each.
    pub async fn play_deliveries(&self, webhook_id: &str) -> (usize, usize) {
        use waybill_store::{AttemptLog, DeliveryNext, DeliveryResult, WebhookHealth};
        let now = Utc::now();
        while self
            .store
            .fan_out_webhook_events("ui-test", 100, now)
            .await
            .expect("fan out")
            > 0
        {}
        let (mut ok, mut failed) = (0, 0);
        loop {
            let claimed = self
                .store
                .claim_webhook_deliveries(now, 100, std::time::Duration::from_secs(60))
                .await
                .expect("claim");
            if claimed.is_empty() {
                return (ok, failed);
            }
            for d in claimed.iter().filter(|d| d.webhook.id == webhook_id) {
                let delivered = ok == 0;
                let result = DeliveryResult {
                    delivery_id: d.delivery_id,
                    claim: d.claim,
                    webhook_id: d.webhook.id.clone(),
                    attempt: AttemptLog {
                        at: now,
                        status_code: Some(if delivered { 200 } else { 500 }),
                        latency_ms: 5,
                        error: None,
                        response_excerpt: None,
                    },
                    next: if delivered {
                        DeliveryNext::Delivered
                    } else {
                        DeliveryNext::RetryAt(now + Duration::hours(1))
                    },
                    health: if delivered {
                        WebhookHealth::Healthy
                    } else {
                        WebhookHealth::Failing
                    },
                    payload: Some("{}".into()),
                };
                assert!(
                    self.store
                        .finish_webhook_delivery(result, now)
                        .await
                        .expect("finish")
                );
                if delivered {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
        }
    }
}
