//! Automations end to end: rules over HTTP, runs queued with their trigger, the worker mailing
//! through a real SMTP receiver on loopback or queueing through the real webhook dispatcher, and
//! the scheduler raising time-based events on an injected clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use waybill_core::Timestamp;
use waybill_server::automations::{self, AutomationConfig, Mailer, SmtpConfig};
use waybill_server::webhooks::Clock;

use crate::common::*;
use crate::webhooks::{
    Answer, Receiver, loopback_app, start_dispatcher, test_config, verify_standard,
};

// ---------------------------------------------------------------- an SMTP receiver

/// One message as the SMTP receiver got it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A small SMTP server on loopback: enough of RFC 5321 for a client that sends EHLO, MAIL,
/// RCPT, DATA and QUIT. It refuses the first `refuse_first` sessions with a 421 greeting.
pub struct SmtpReceiver {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpReceiver {
    pub async fn start(refuse_first: usize) -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        tokio::spawn(async move {
            let mut sessions = 0usize;
            while let Ok((stream, _)) = listener.accept().await {
                sessions += 1;
                let refuse = sessions <= refuse_first;
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, refuse, store).await;
                });
            }
        });
        SmtpReceiver { port, mails }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn all(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    refuse: bool,
    mails: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if refuse {
        write
            .write_all(b"421 4.3.2 busy, try again later\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 test-smtp ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-test-smtp\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_owned();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

// ---------------------------------------------------------------- helpers

/// A clock the test sets.
struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    fn at(s: &str) -> Arc<FixedClock> {
        Arc::new(FixedClock(Mutex::new(
            waybill_core::time::parse_datetime("t", s).unwrap(),
        )))
    }
    fn set(&self, s: &str) {
        *self.0.lock().unwrap() = waybill_core::time::parse_datetime("t", s).unwrap();
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub(crate) fn config(smtp: Option<&SmtpReceiver>) -> AutomationConfig {
    AutomationConfig {
        mailer: smtp.map(|s| {
            Arc::new(
                Mailer::new(&SmtpConfig {
                    url: s.url(),
                    from: "Shop <orders@shop.example>".into(),
                })
                .expect("mailer"),
            )
        }),
        schedule: vec![Duration::ZERO, Duration::from_secs(60)],
        ..AutomationConfig::default()
    }
}

async fn automation(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let (status, created) = app
        .post(t, "/automations", json!({ "automation": body }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["automation"].clone()
}

fn email(trigger: &str) -> Value {
    json!({
        "name": format!("mail on {trigger}"),
        "trigger": trigger,
        "action": {
            "type": "email",
            "subject": "Order {{ order.id }}: {{ trigger }}",
            "body": "<p>Hi {{ order.customer_name }}, {{ carrier }} {{ tracking_number }} at {{ tracking_url }}, ETA {{ eta }}. Last: {{ last_event.message }}</p>"
        }
    })
}

async fn runs(app: &TestApp, t: &Tenant, automation_id: &str) -> Vec<Value> {
    let (status, body) = app
        .get(t, &format!("/automations/{automation_id}/runs"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

/// An order with a UPS fulfillment `f-<order>` whose label was made on 2024-03-19 (the tests'
/// carrier scans follow it); returns the status path.
async fn shipment(app: &TestApp, t: &Tenant, order: &str) -> String {
    app.order(t, order, 4).await;
    let (status, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": format!("f-{order}"), "lineItems": [{"id": "line-1", "quantity": 2}],
                   "tracking": {"carrier": "u.p.s.", "code": "1Z999AA10123456784"},
                   "useDummyTracking": true,
                   "initialTracking": {"status": "pre_transit", "datetime": "2024-03-19T00:00:00Z"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fulfillment"]["trackingCompany"], "UPS", "{body}");
    format!("/orders/{order}/fulfillments/f-{order}/shipment-status")
}

async fn status(app: &TestApp, t: &Tenant, path: &str, body: Value) -> Value {
    let (status, answer) = app.post(t, path, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_status_mails_the_customer_once_through_smtp() {
    let app = TestApp::spawn().await;
    let t = app.tenant("mailer").await;
    let smtp = SmtpReceiver::start(0).await;
    let rule = automation(&app, &t, email("in_transit")).await;
    let fedex_only = automation(
        &app,
        &t,
        json!({"name": "fedex", "trigger": "in_transit", "carrier": "Fed Ex",
               "action": {"type": "email", "subject": "x", "body": "x"}}),
    )
    .await;
    assert_eq!(
        fedex_only["carrier"], "FedEx",
        "free-text carrier normalised"
    );
    let path = shipment(&app, &t, "1001").await;
    let update = json!({"status": "in_transit", "estimatedDeliveryDate": "2024-03-25T00:00:00Z",
                        "message": "Departed <facility>", "datetime": "2024-03-21T08:00:00Z"});
    status(&app, &t, &path, update.clone()).await;
    status(&app, &t, &path, update).await;
    let cfg = config(Some(&smtp));
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        0
    );

    let mails = smtp.all();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["<ada@example.com>".to_owned()]);
    assert!(mail.from.contains("orders@shop.example"), "{}", mail.from);
    assert!(
        mail.data.contains("Subject: Order 1001: in_transit"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("text/html"), "{}", mail.data);
    let body = mail.data.replace("=\r\n", "");
    assert!(body.contains("Hi Ada, UPS 1Z999AA10123456784"), "{body}");
    assert!(body.contains("ups.com"), "tracking link in {body}");
    assert!(body.contains("ETA 2024-03-25"), "{body}");
    assert!(
        body.contains("Departed &lt;facility&gt;"),
        "escaped: {body}"
    );

    let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["status"], "succeeded");
    assert_eq!(list[0]["detail"], "mailed ada@example.com");
    assert_eq!(list[0]["fulfillmentId"], "f-1001");
    assert!(
        runs(&app, &t, fedex_only["id"].as_str().unwrap())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_refusing_smtp_server_is_retried() {
    let app = TestApp::spawn().await;
    let t = app.tenant("retry").await;
    let smtp = SmtpReceiver::start(1).await;
    let rule = automation(&app, &t, email("delivered")).await;
    let path = shipment(&app, &t, "2001").await;
    status(&app, &t, &path, json!({"status": "delivered"})).await;
    let clock = FixedClock::at("2030-01-01T00:00:00Z");
    let mut cfg = config(Some(&smtp));
    cfg.clock = clock.clone();
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        1
    );
    let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
    assert_eq!(list[0]["status"], "pending", "{list:?}");
    assert!(
        list[0]["lastError"].as_str().unwrap().contains("421"),
        "{list:?}"
    );
    assert!(smtp.all().is_empty());
    // Not due again until the schedule's next delay has passed.
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        0
    );
    clock.set("2030-01-01T00:01:01Z");
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        1
    );
    let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:?}");
    assert_eq!(list[0]["attempts"], 2);
    assert_eq!(smtp.all().len(), 1);
}

#[tokio::test]
async fn every_trigger_kind_runs_its_automations() {
    let app = TestApp::spawn().await;
    let t = app.tenant("triggers").await;
    let mut ids = std::collections::HashMap::new();
    for trigger in [
        "delivered",
        "delayed",
        "arriving_early",
        "stalled_in_transit",
    ] {
        let a = automation(&app, &t, email(trigger)).await;
        ids.insert(trigger, a["id"].as_str().unwrap().to_owned());
    }
    // A status and an event sent over the API.
    let a = shipment(&app, &t, "3001").await;
    status(&app, &t, &a, json!({"status": "delayed"})).await;
    status(&app, &t, &a, json!({"status": "delayed"})).await;
    // Delivered two days before the ETA: delivered and arriving_early.
    let b = shipment(&app, &t, "3002").await;
    status(
        &app,
        &t,
        &b,
        json!({"status": "in_transit", "estimatedDeliveryDate": "2024-03-25",
                                "datetime": "2024-03-20T10:00:00Z"}),
    )
    .await;
    let delivered = status(
        &app,
        &t,
        &b,
        json!({"status": "delivered", "datetime": "2024-03-23T10:00:00Z"}),
    )
    .await;
    let history: Vec<&str> = delivered["fulfillment"]["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history.last(), Some(&"arriving_early"), "{history:?}");
    // Stalled: raised by the scheduler (see the scheduler test for the clock).
    let c = shipment(&app, &t, "3003").await;
    status(
        &app,
        &t,
        &c,
        json!({"status": "in_transit", "datetime": "2024-03-20T10:00:00Z"}),
    )
    .await;
    let clock = FixedClock::at("2024-03-24T10:00:00Z");
    let cfg = AutomationConfig {
        clock: clock.clone(),
        ..config(None)
    };
    automations::tick(app.store.as_ref(), &cfg).await.unwrap();

    let count = |trigger: &'static str| {
        let app = &app;
        let t = &t;
        let id = ids[trigger].clone();
        async move { runs(app, t, &id).await }
    };
    let delayed = count("delayed").await;
    assert_eq!(
        delayed.len(),
        1,
        "an event sent twice runs once: {delayed:?}"
    );
    assert_eq!(delayed[0]["fulfillmentId"], "f-3001");
    let delivered = count("delivered").await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["fulfillmentId"], "f-3002");
    let early = count("arriving_early").await;
    assert_eq!(early.len(), 1, "{early:?}");
    assert_eq!(early[0]["fulfillmentId"], "f-3002");
    let stalled = count("stalled_in_transit").await;
    assert_eq!(stalled.len(), 1, "{stalled:?}");
    assert_eq!(stalled[0]["fulfillmentId"], "f-3003");
    // Without SMTP an email run fails with a clear reason, and stays failed.
    automations::run_due(app.store.as_ref(), &config(None))
        .await
        .unwrap();
    let stalled = count("stalled_in_transit").await;
    assert_eq!(stalled[0]["status"], "failed");
    assert!(stalled[0]["lastError"].as_str().unwrap().contains("SMTP"));
}

#[tokio::test]
async fn a_fulfillment_created_in_a_status_runs_the_automations_of_its_carrier() {
    let app = TestApp::spawn().await;
    let t = app.tenant("creation").await;
    let any = automation(&app, &t, email("in_transit")).await;
    let ups_only = automation(
        &app,
        &t,
        json!({"name": "ups", "trigger": "in_transit", "carrier": "UPS",
               "action": {"type": "email", "subject": "x", "body": "x"}}),
    )
    .await;
    let fedex_only = automation(
        &app,
        &t,
        json!({"name": "fedex", "trigger": "in_transit", "carrier": "FedEx",
               "action": {"type": "email", "subject": "x", "body": "x"}}),
    )
    .await;
    app.order(&t, "4001", 4).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/4001/fulfillments",
            json!({"fulfillmentId": "f-4001", "lineItems": [{"id": "line-1", "quantity": 1}],
                   "tracking": {"carrier": "ups", "code": "1Z999AA10123456784"},
                   "useDummyTracking": true,
                   "initialTracking": {"status": "in_transit", "datetime": "2024-03-19T00:00:00Z"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for (rule, expected) in [(&any, 1), (&ups_only, 1), (&fedex_only, 0)] {
        let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
        assert_eq!(list.len(), expected, "{}: {list:?}", rule["name"]);
        if let Some(run) = list.first() {
            assert_eq!(run["fulfillmentId"], "f-4001");
        }
    }
}

#[tokio::test]
async fn the_scheduler_raises_stalled_and_delayed_once_on_a_fake_clock() {
    let app = TestApp::spawn().await;
    let t = app.tenant("scheduler").await;
    let path = shipment(&app, &t, "4001").await;
    status(
        &app,
        &t,
        &path,
        json!({"status": "in_transit", "estimatedDeliveryDate": "2024-03-25",
                                   "datetime": "2024-03-21T12:00:00Z"}),
    )
    .await;
    let clock = FixedClock::at("2024-03-24T11:59:59Z");
    let cfg = AutomationConfig {
        clock: clock.clone(),
        ..config(None)
    };
    let tick = || automations::tick(app.store.as_ref(), &cfg);
    assert_eq!(tick().await.unwrap(), 0, "72 h have not passed");
    clock.set("2024-03-24T12:00:00Z");
    assert_eq!(tick().await.unwrap(), 1, "stalled after 72 h");
    assert_eq!(tick().await.unwrap(), 0, "stalled is raised once");
    clock.set("2024-03-25T23:59:59Z");
    assert_eq!(tick().await.unwrap(), 0, "the ETA day is not over");
    clock.set("2024-03-26T00:00:00Z");
    assert_eq!(tick().await.unwrap(), 1, "delayed once the ETA day is over");
    assert_eq!(tick().await.unwrap(), 0);
    let (_, order) = app.get(&t, "/orders/4001").await;
    let history: Vec<(String, String)> = order["fulfillments"][0]["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap().to_owned(),
                h["datetime"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history[history.len() - 2..],
        [
            (
                "stalled_in_transit".to_owned(),
                "2024-03-24T12:00:00.000Z".to_owned()
            ),
            ("delayed".to_owned(), "2024-03-26T00:00:00.000Z".to_owned())
        ],
        "{history:?}"
    );
    assert_eq!(
        order["fulfillments"][0]["status"], "in_transit",
        "events keep the status"
    );

    // A store's own threshold.
    let (s, settings) = app
        .call(
            Method::PUT,
            &t.path("/settings"),
            Some(&t.secret),
            Some(json!({"stalledAfterHours": 24})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{settings}");
    assert_eq!(settings["settings"]["stalledAfterHours"], 24);
    let other = shipment(&app, &t, "4002").await;
    status(
        &app,
        &t,
        &other,
        json!({"status": "in_transit", "datetime": "2024-03-26T00:00:00Z"}),
    )
    .await;
    clock.set("2024-03-27T00:00:00Z");
    assert_eq!(tick().await.unwrap(), 1, "stalled after the store's 24 h");
}

#[tokio::test]
async fn a_webhook_action_goes_through_the_dispatcher_signed() {
    let app = loopback_app().await;
    let t = app.tenant("hooks").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let rule = automation(
        &app,
        &t,
        json!({"name": "notify", "trigger": "out_for_delivery", "action": {"type": "webhook", "url": receiver.url,
               "body": "{\"order\": {{ order.id }}, \"status\": {{ fulfillment.status }}, \"track\": {{ tracking_url }}}"}}),
    )
    .await;
    let secret = rule["secret"]
        .as_str()
        .expect("signing secret shown once")
        .to_owned();
    let path = shipment(&app, &t, "5001").await;
    status(&app, &t, &path, json!({"status": "out_for_delivery"})).await;
    // The parcel moves on before the run: the run still describes its own event.
    status(&app, &t, &path, json!({"status": "delivered"})).await;
    automations::run_due(app.store.as_ref(), &config(None))
        .await
        .unwrap();
    let dispatcher = start_dispatcher(app.store.clone(), test_config());
    receiver
        .wait_for("the automation's webhook", Duration::from_secs(10), |r| {
            r.iter().any(|x| x.ok)
        })
        .await;
    // The receiver sees the attempt before the dispatcher records it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
        if list[0]["deliveryStatus"] == "delivered" || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    dispatcher.abort();
    let receipts = receiver.all();
    assert_eq!(receipts.len(), 1, "only the automation's delivery");
    let body = receipts[0].json();
    assert_eq!(body["order"], "5001", "{body}");
    assert_eq!(body["status"], "out_for_delivery", "{body}");
    assert!(
        body["track"]
            .as_str()
            .unwrap()
            .contains("1Z999AA10123456784")
    );
    verify_standard(&secret, &receipts[0]);
    assert_eq!(list[0]["status"], "succeeded");
    assert_eq!(list[0]["deliveryStatus"], "delivered", "{list:?}");
    // The automation's own subscription is not a Redo webhook: not listed, not reachable.
    let stored = app
        .store
        .get_automation(&t.id, rule["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let hook = stored
        .webhook_id
        .expect("a webhook action owns a subscription");
    let (status, body) = app.get(&t, &format!("/webhooks/{hook}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&t, "/webhooks").await;
    assert!(list["webhooks"].as_array().unwrap().is_empty(), "{list}");
    // The listing does not show the secret again.
    let (_, got) = app
        .get(
            &t,
            &format!("/automations/{}", rule["id"].as_str().unwrap()),
        )
        .await;
    assert!(got["automation"].get("secret").is_none(), "{got}");
}

#[tokio::test]
async fn automations_are_validated_and_kept_per_store() {
    let app = TestApp::spawn().await;
    let t = app.tenant("rules").await;
    let other = app.tenant("other").await;
    for (body, expect) in [
        (
            json!({"name": "x", "trigger": "teleported", "action": {"type": "email", "subject": "s", "body": "b"}}),
            "trigger",
        ),
        (
            json!({"name": "x", "trigger": "unknown", "action": {"type": "email", "subject": "s", "body": "b"}}),
            "trigger",
        ),
        (
            json!({"name": "", "trigger": "delivered", "action": {"type": "email", "subject": "s", "body": "b"}}),
            "name",
        ),
        (
            json!({"name": "x", "trigger": "delivered", "action": {"type": "email", "subject": "s", "body": "{% if %}"}}),
            "body",
        ),
        (
            json!({"name": "x", "trigger": "delivered", "action": {"type": "email", "subject": "s", "body": "b", "to": "not-an-address"}}),
            "to",
        ),
        (
            json!({"name": "x", "trigger": "delivered", "action": {"type": "webhook", "url": "http://127.0.0.1:9/x", "body": "{}"}}),
            "url",
        ),
        (
            json!({"name": "x", "trigger": "delivered", "action": {"type": "webhook", "url": "https://example.com/x", "body": "{\"a\": "}}),
            "JSON",
        ),
        (
            json!({"name": "x", "trigger": "delivered", "action": {"type": "sms", "to": "1"}}),
            "sms",
        ),
    ] {
        let (status, answer) = app
            .post(&t, "/automations", json!({"automation": body}))
            .await;
        let message = assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(
            message.contains(expect),
            "{message} should mention {expect}"
        );
    }
    assert!(
        app.store.list_automations(&t.id).await.unwrap().is_empty(),
        "nothing stored"
    );

    let rule = automation(&app, &t, email("delivered")).await;
    let id = rule["id"].as_str().unwrap();
    let (status, body) = app.get(&other, &format!("/automations/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::GET,
            &t.path(&format!("/automations/{id}")),
            Some(&other.secret),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let mut replaced = email("in_transit");
    replaced["enabled"] = json!(false);
    let (status, body) = app
        .call(
            Method::PUT,
            &t.path(&format!("/automations/{id}")),
            Some(&t.secret),
            Some(json!({"automation": replaced})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["automation"]["trigger"], "in_transit");
    assert_eq!(body["automation"]["enabled"], false);
    // A disabled automation does not run.
    let path = shipment(&app, &t, "6001").await;
    status_ok(&app, &t, &path).await;
    assert!(runs(&app, &t, id).await.is_empty());
    let (status, list) = app.get(&t, "/automations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["automations"].as_array().unwrap().len(), 1);
    let deleted = app
        .client
        .delete(format!(
            "{}{}",
            app.base,
            t.path(&format!("/automations/{id}"))
        ))
        .bearer_auth(&t.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, body) = app.get(&t, &format!("/automations/{id}/runs")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

async fn status_ok(app: &TestApp, t: &Tenant, path: &str) {
    status(app, t, path, json!({"status": "in_transit"})).await;
}
