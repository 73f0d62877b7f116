//! Running `waybill` as a service: layered configuration, the effective configuration at start
//! (credentials redacted), request ids in the logs, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waybill_store::WebhookFlavor;
use waybill_store::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_waybill");

/// `waybill` in `dir`, with no WAYBILL_* variable but the ones given.
fn waybill(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args).env("WAYBILL_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("WAYBILL_") && k != "WAYBILL_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run waybill")
}

/// `waybill config`: the effective settings.
fn effective(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.push("config");
    let out = waybill(dir, &all, env);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("config prints JSON")
}

fn setting(config: &Value, key: &str) -> (String, String) {
    let s = &config["settings"][key];
    (
        s["value"].as_str().unwrap_or_default().to_owned(),
        s["source"].as_str().unwrap_or_default().to_owned(),
    )
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure: {out:?}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn settings_layer_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("waybill.toml"),
        "pg_pool_size = 3\nwebhook_retry_schedule = [\"0s\", \"1m\"]\n\
         database_url = \"postgres://app:hunter2@db.internal:5432/waybill\"\n",
    )
    .unwrap();

    // ./waybill.toml is read when present.
    let c = effective(dir.path(), &[], &[]);
    assert_eq!(
        setting(&c, "pg_pool_size"),
        ("3".into(), "file waybill.toml".into())
    );
    assert_eq!(setting(&c, "webhook_retry_schedule").0, "0s,1m");
    assert_eq!(
        setting(&c, "pg_statement_timeout_ms"),
        ("10000".into(), "default".into())
    );
    let database = setting(&c, "database_url").0;
    assert_eq!(database, "postgres://app:***@db.internal:5432/waybill");
    assert!(
        !c.to_string().contains("hunter2"),
        "the password leaked: {c}"
    );

    // The environment overrides the file, a flag overrides both.
    let env = [("WAYBILL_PG_POOL_SIZE", "5")];
    let c = effective(dir.path(), &[], &env);
    assert_eq!(
        setting(&c, "pg_pool_size"),
        ("5".into(), "env WAYBILL_PG_POOL_SIZE".into())
    );
    let c = effective(dir.path(), &["--pg-pool-size", "7"], &env);
    assert_eq!(
        setting(&c, "pg_pool_size"),
        ("7".into(), "flag --pg-pool-size".into())
    );

    // --config and WAYBILL_CONFIG name another file, which replaces ./waybill.toml.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "pg_pool_size = 9\n").unwrap();
    let other = other.to_str().unwrap();
    let c = effective(dir.path(), &["--config", other], &[]);
    assert_eq!(setting(&c, "pg_pool_size").0, "9");
    assert_eq!(setting(&c, "database_url").0, "sqlite://waybill.db");
    let c = effective(dir.path(), &[], &[("WAYBILL_CONFIG", other)]);
    assert_eq!(setting(&c, "pg_pool_size").0, "9");

    // The start-up log shows the effective configuration, without the password.
    let out = waybill(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("WAYBILL_LOG", "info"),
            (
                "WAYBILL_DATABASE_URL",
                "postgres://app:hunter2@127.0.0.1:1/waybill",
            ),
        ],
    );
    let stderr = failure(&out);
    assert!(stderr.contains("effective configuration"), "{stderr}");
    assert!(
        stderr.contains("postgres://app:***@127.0.0.1:1/waybill"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn bad_values_and_unknown_keys_are_refused_naming_setting_and_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    let file_arg = file.to_str().unwrap();

    std::fs::write(&file, "pg_pool_size = \"lots\"\n").unwrap();
    let stderr = failure(&waybill(dir.path(), &["--config", file_arg, "config"], &[]));
    assert!(
        stderr.contains("invalid pg_pool_size 'lots' (from the config file"),
        "{stderr}"
    );

    std::fs::write(
        &file,
        "listen = \"127.0.0.1:8080\"\nlisten_adress = \"x\"\n",
    )
    .unwrap();
    let stderr = failure(&waybill(
        dir.path(),
        &["--config", file_arg, "migrate"],
        &[],
    ));
    assert!(stderr.contains("unknown key 'listen_adress'"), "{stderr}");

    let stderr = failure(&waybill(
        dir.path(),
        &["config"],
        &[("WAYBILL_LOG_FORMAT", "xml")],
    ));
    assert!(
        stderr.contains(
            "invalid log_format 'xml' (from the environment variable WAYBILL_LOG_FORMAT)"
        ),
        "{stderr}"
    );

    let stderr = failure(&waybill(
        dir.path(),
        &[
            "serve",
            "--shutdown-grace",
            "soon",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    ));
    assert!(
        stderr.contains("invalid shutdown_grace 'soon' (from the flag --shutdown-grace)"),
        "{stderr}"
    );

    let missing = dir.path().join("missing.toml");
    let stderr = failure(&waybill(
        dir.path(),
        &["config"],
        &[("WAYBILL_CONFIG", missing.to_str().unwrap())],
    ));
    assert!(stderr.contains("does not exist"), "{stderr}");
    // Nothing was created by the refused commands.
    assert!(!dir.path().join("waybill.db").exists());
}

// ---------------------------------------------------------------- shutdown

struct Server {
    child: Child,
    base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `waybill serve` with JSON logs collected, on `db`, configured by `config` (a TOML file).
    fn start(dir: &Path, db: &str, config: &str) -> Server {
        let file = dir.join("waybill.toml");
        std::fs::write(&file, config).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("WAYBILL_DATABASE_URL", db)
            .env("WAYBILL_LOG", "info,tower_http=debug")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let collected = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                }
                collected.lock().unwrap().push(line);
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("serve did not start: {:#?}", logs.lock().unwrap());
        };
        Server {
            child,
            base: format!("http://{addr}"),
            logs,
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; returns its status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "serve still running {limit:?} after SIGTERM: {:#?}",
                self.logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_contains(&self, needles: &[&str]) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }
}

/// A webhook receiver on loopback that reports each request it reads, then answers 200 after
/// `delay` while `answering`, or never (holding the connection until the sender closes it).
struct SlowReceiver {
    url: String,
    received: mpsc::Receiver<()>,
    answering: Arc<AtomicBool>,
}

impl SlowReceiver {
    fn start(delay: Duration, answering: bool) -> SlowReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, received) = mpsc::channel();
        let answering = Arc::new(AtomicBool::new(answering));
        let answer = answering.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (tx, answer) = (tx.clone(), answer.clone());
                std::thread::spawn(move || handle(stream, delay, &tx, &answer));
            }
        });
        SlowReceiver {
            url,
            received,
            answering,
        }
    }
}

fn handle(mut stream: TcpStream, delay: Duration, tx: &mpsc::Sender<()>, answering: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        let _ = tx.send(());
        if !answering.load(Ordering::SeqCst) {
            // Hold the connection until the sender gives up.
            while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
            return;
        }
        std::thread::sleep(delay);
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// A store with a Redo webhook on `url` and one order (so one delivery is due).
async fn store_with_delivery(server: &Server, db: &str, url: &str) -> (String, String) {
    let created = waybill(
        Path::new("."),
        &["stores", "create", "--name", "Shutdown"],
        &[("WAYBILL_DATABASE_URL", db)],
    );
    assert!(created.status.success(), "{created:?}");
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let store = created["storeId"].as_str().unwrap().to_owned();
    let secret = created["apiSecret"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let base = format!("{}/v2.2/stores/{store}", server.base);
    let resp = client
        .post(format!("{base}/webhooks"))
        .bearer_auth(&secret)
        .json(&json!({"webhook": {"callback": {"url": url, "auth": null}, "topic": "order"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = client
        .post(format!("{base}/orders"))
        .bearer_auth(&secret)
        .json(&order_body("S-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    (store, secret)
}

fn order_body(id: &str) -> Value {
    json!({"orderId": id, "createdAt": "2024-03-20T12:00:00Z",
           "lineItems": [{"id": "l", "productId": "p", "title": "t", "quantity": 1}]})
}

fn wait_received(receiver: &SlowReceiver) {
    receiver
        .received
        .recv_timeout(Duration::from_secs(15))
        .expect("the receiver never got the delivery");
}

/// SIGTERM while a request is half sent and a delivery waits on a slow receiver: the request is
/// answered, the delivery's outcome recorded, and the process exits 0 well within the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_and_deliveries_in_flight() {
    let db = TestDatabase::new().await.expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let receiver = SlowReceiver::start(Duration::from_millis(1500), true);
    let mut server = Server::start(
        dir.path(),
        &db.url,
        "webhook_allow_private = true\nshutdown_grace = 15\nwebhook_timeout = \"10s\"\n",
    );
    let (store, secret) = store_with_delivery(&server, &db.url, &receiver.url).await;
    wait_received(&receiver);

    // A request whose body is still arriving when the signal comes.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).unwrap();
    let body = order_body("S-2").to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    write!(
        slow,
        "POST /v2.2/stores/{store}/orders HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {secret}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nx-request-id: slow-request-1\r\n\r\n",
        body.len()
    )
    .unwrap();
    slow.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    slow.write_all(rest).unwrap();
    let mut response = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"externalOrderId\":\"S-2\""),
        "{response}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-request-id: slow-request-1")
    );
    // No new connections once stopping.
    assert!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .is_err(),
        "a new connection was accepted after SIGTERM"
    );

    let (status, took) = server.wait_exit(Duration::from_secs(14));
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Every log line of the request carries its id.
    assert!(server.log_contains(&[
        "\"request_id\":\"slow-request-1\"",
        "started processing request"
    ]));
    assert!(server.log_contains(&["finishing requests and webhook deliveries in flight"]));

    let store_handle = db.open().await.unwrap();
    let deliveries = store_handle
        .list_webhook_deliveries(
            &store,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 10),
        )
        .await
        .unwrap();
    let first = deliveries
        .iter()
        .find(|d| d.seq == 1 && d.event_type == "order.created")
        .expect("the first order's delivery");
    assert_eq!(
        first.status,
        waybill_store::DeliveryState::Delivered,
        "{deliveries:?}"
    );
    assert_eq!(first.attempts, 1);
}

/// A receiver that never answers cannot hold the process past the grace; the abandoned
/// delivery is sent by the next process once its lease expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_bounds_shutdown_and_an_abandoned_delivery_is_sent_later() {
    let db = TestDatabase::new().await.expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let receiver = SlowReceiver::start(Duration::ZERO, false);
    let config = "webhook_allow_private = true\nshutdown_grace = 1\n\
                  webhook_timeout = \"3s\"\nwebhook_lease = \"4s\"\n";
    let mut server = Server::start(dir.path(), &db.url, config);
    let (store, _) = store_with_delivery(&server, &db.url, &receiver.url).await;
    wait_received(&receiver);

    server.terminate();
    let (status, took) = server.wait_exit(Duration::from_secs(6));
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    drop(server);

    let store_handle = db.open().await.unwrap();
    let open = store_handle
        .list_webhook_deliveries(
            &store,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 10),
        )
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    // In flight counts as pending in the log; the abandoned attempt is counted.
    assert_eq!(
        open[0].status,
        waybill_store::DeliveryState::Pending,
        "{open:?}"
    );
    assert_eq!(open[0].attempts, 1, "{open:?}");

    receiver.answering.store(true, Ordering::SeqCst);
    let _server = Server::start(dir.path(), &db.url, config);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = store_handle
            .list_webhook_deliveries(
                &store,
                waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 10),
            )
            .await
            .unwrap();
        if d[0].status == waybill_store::DeliveryState::Delivered {
            // The abandoned attempt counted; the second one delivered it.
            assert_eq!(d[0].attempts, 2, "{d:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never re-sent: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
