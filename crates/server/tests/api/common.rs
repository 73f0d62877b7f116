use std::sync::Arc;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use waybill_server::AppState;
use waybill_store::Store;
use waybill_store::testing::TestDatabase;

/// A running server on its own database.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub db: TestDatabase,
}

/// A store with its secret, as a caller holds them.
#[derive(Clone)]
pub struct Tenant {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(waybill_server::webhooks::UrlPolicy::default()).await
    }

    /// A server whose webhook registration follows `policy`.
    pub async fn spawn_with(policy: waybill_server::webhooks::UrlPolicy) -> TestApp {
        let db = TestDatabase::new().await.expect("test database");
        let store = db.open().await.expect("open store");
        TestApp::serve_with(db, store, policy).await
    }

    /// Serves `store` (opened on `db`, perhaps with options of the test's own).
    pub async fn serve(db: TestDatabase, store: Arc<dyn Store>) -> TestApp {
        Self::serve_with(db, store, waybill_server::webhooks::UrlPolicy::default()).await
    }

    async fn serve_with(
        db: TestDatabase,
        store: Arc<dyn Store>,
        policy: waybill_server::webhooks::UrlPolicy,
    ) -> TestApp {
        Self::serve_configured(db, store, |s| s.with_url_policy(policy)).await
    }

    /// A server whose state `configure` adjusts (limits, policies).
    pub async fn spawn_configured(configure: impl FnOnce(AppState) -> AppState) -> TestApp {
        let db = TestDatabase::new().await.expect("test database");
        let store = db.open().await.expect("open store");
        Self::serve_configured(db, store, configure).await
    }

    async fn serve_configured(
        db: TestDatabase,
        store: Arc<dyn Store>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = configure(AppState::new(store.clone()));
        tokio::spawn(waybill_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        TestApp {
            base: format!("http://{addr}"),
            client: Client::new(),
            store,
            db,
        }
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let (record, key) = self.store.create_store(name).await.expect("create store");
        Tenant {
            id: record.id,
            secret: key.secret,
        }
    }

    /// Sends a request with an optional bearer secret and JSON body; returns status and JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = secret.map_or(Auth::None, Auth::Bearer);
        self.send(method, path, auth, body).await
    }

    pub async fn post(&self, t: &Tenant, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &t.path(path), Some(&t.secret), Some(body))
            .await
    }

    pub async fn get(&self, t: &Tenant, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &t.path(path), Some(&t.secret), None)
            .await
    }

    /// Creates order `external_id` with one line `line-1` of `quantity` units (and a second line
    /// `line-2` of 1 unit).
    pub async fn order(&self, t: &Tenant, external_id: &str, quantity: u32) -> Value {
        let (status, body) = self
            .post(t, "/orders", order_body(external_id, quantity))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

impl Tenant {
    pub fn path(&self, rest: &str) -> String {
        format!("/v2.2/stores/{}{rest}", self.id)
    }
}

pub fn order_body(external_id: &str, quantity: u32) -> Value {
    json!({
        "orderId": external_id,
        "createdAt": "2024-03-20T12:00:00Z",
        "customer": { "email": "ada@example.com", "firstName": "Ada" },
        "totalPrice": 59.97,
        "currencyCode": "USD",
        "lineItems": [
            {
                "id": "line-1",
                "productId": "prod-1",
                "variantId": "var-1",
                "sku": "SKU-1",
                "title": "T-shirt",
                "quantity": quantity,
                "price": "19.99"
            },
            { "id": "line-2", "productId": "prod-2", "title": "Mug", "quantity": 1 }
        ]
    })
}

fn schema(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("schema JSON")
}

pub fn assert_schema(name: &str, instance: &Value) {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema(name))
        .expect("valid schema");
    if let Err(e) = validator.validate(instance) {
        panic!("response does not match {name}: {e}\n{instance:#}");
    }
}

/// Asserts a response matches the seed's `orders-api-fulfillment-response.schema`.
pub fn assert_fulfillment_schema(body: &Value) {
    assert_schema("redo_fulfillment_response.schema.json", body);
}

/// Asserts a Redo error in the seeds' format and returns its sentence: `{"error": "..."}` for
/// the statuses the seeds list (400, 401, 404), problem details (the seeds' `default`
/// response) for every other status.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body}");
    let message = if matches!(
        expected,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
    ) {
        assert_schema("redo_error.schema.json", body);
        body["error"].as_str()
    } else {
        assert_problem(status, body, expected);
        body["detail"].as_str()
    };
    let message = message.unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "empty error message: {body}");
    message
}

/// Asserts a problem-details body.
pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_schema("problem.schema.json", body);
    assert_eq!(body["status"], expected.as_u16(), "{body}");
}

impl TestApp {
    /// A request with a raw JSON body and full control of the Authorization header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(s) => req.bearer_auth(s),
            Auth::Basic(user, pass) => req.basic_auth(user, Some(pass)),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response to {path} is not JSON ({status}): {text:?}"));
        (status, json)
    }
}

/// How a test request authenticates.
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}
