//! The real `waybill` binary: serve in one process, manage stores from another.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_waybill");

fn waybill(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("WAYBILL_DATABASE_URL", db)
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run waybill")
}

fn json_line(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stdout: {stdout:?}"
    );
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `waybill serve` on port 0 and reads the address from its start-up log line.
fn serve(db: &str) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("WAYBILL_DATABASE_URL", db)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            assert!(
                line.contains("sqlite://"),
                "start-up line names the database: {line}"
            );
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Server {
                child,
                base: format!("http://{addr}"),
            };
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not report its address: {seen:#?}");
}

#[test]
fn stores_create_prints_one_json_line_with_a_prefixed_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let created = json_line(&waybill(&db, &["stores", "create", "--name", "Shop"]));
    let secret = created["apiSecret"].as_str().unwrap();
    assert!(secret.starts_with("wb_sk_"));
    assert_eq!(created["storeId"].as_str().unwrap().len(), 24);

    let listed = waybill(&db, &["stores", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(created["storeId"].as_str().unwrap()));
    // Only the hash is stored: the secret appears nowhere in the database file.
    let bytes = std::fs::read(dir.path().join("w.db")).unwrap();
    let wal = std::fs::read(dir.path().join("w.db-wal")).unwrap_or_default();
    for haystack in [&bytes, &wal] {
        assert!(
            !haystack
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
        );
    }
}

#[test]
fn migrate_creates_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/w.db");
    let out = waybill(&format!("sqlite://{}", path.display()), &["migrate"]);
    assert!(out.status.success(), "{out:?}");
    assert!(path.exists());
}

#[tokio::test]
async fn a_store_created_while_serving_works_at_once_and_revocation_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let server = serve(&db);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let created = json_line(&waybill(&db, &["stores", "create", "--name", "Late"]));
    let (store, secret) = (
        created["storeId"].as_str().unwrap().to_owned(),
        created["apiSecret"].as_str().unwrap().to_owned(),
    );
    let order = json!({
        "orderId": "1", "createdAt": "2024-03-20T12:00:00Z",
        "lineItems": [{"id": "l", "productId": "p", "title": "t", "quantity": 1}]
    });
    let resp = client
        .post(format!("{}/v2.2/stores/{store}/orders", server.base))
        .bearer_auth(&secret)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    // A second key, then revoking it from the CLI: refused on the next request.
    let key = json_line(&waybill(&db, &["keys", "create", "--store", &store]));
    let second = key["apiSecret"].as_str().unwrap();
    let get = |s: String| {
        let client = client.clone();
        let url = format!("{}/v2.2/stores/{store}/orders/1", server.base);
        async move {
            client
                .get(url)
                .bearer_auth(s)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(second.to_owned()).await, 200);
    json_line(&waybill(
        &db,
        &["keys", "revoke", key["keyId"].as_str().unwrap()],
    ));
    assert_eq!(get(second.to_owned()).await, 401);
    assert_eq!(get(secret.clone()).await, 200);
    let keys = waybill(&db, &["keys", "list", "--store", &store]);
    let listing = String::from_utf8_lossy(&keys.stdout);
    assert_eq!(listing.lines().count(), 2);
    assert!(
        !listing.contains(&secret),
        "key listing must not show secrets"
    );
}

/// The benchmark harness keeps working: a tiny run completes with no failed request.
#[test]
fn bench_runs_and_reports_every_phase() {
    let out = Command::new(BIN)
        .args([
            "bench",
            "--orders",
            "40",
            "--concurrency",
            "4",
            "--seconds",
            "1",
        ])
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in [
        "raw create fulfillment",
        "raw get order",
        "http create fulfillment",
        "http shipment status",
        "http get order",
        "HTTP/raw create-fulfillment ratio",
    ] {
        assert!(stdout.contains(phase), "missing {phase}: {stdout}");
    }
}

/// The webhook benchmark keeps working: a tiny run delivers every event.
#[test]
fn bench_webhooks_delivers_every_event() {
    let out = Command::new(BIN)
        .args(["bench-webhooks", "--events", "200", "--orders", "10"])
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run bench-webhooks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["events"], 200);
    assert!(report["deliveriesPerSecond"].as_f64().unwrap() > 0.0);
}

/// `waybill worker` refuses settings that cannot work, before doing anything.
#[test]
fn worker_refuses_bad_webhook_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    for (var, value, needle) in [
        ("WAYBILL_WEBHOOK_LEASE", "5s", "lease"),
        ("WAYBILL_WEBHOOK_RETRY_SCHEDULE", "0s,5x", "RETRY_SCHEDULE"),
        ("WAYBILL_WEBHOOK_ALLOW_CIDRS", "10.0.0.0/99", "ALLOW_CIDRS"),
        ("WAYBILL_WEBHOOK_RETRY_JITTER", "2", "JITTER"),
    ] {
        let out = Command::new(BIN)
            .arg("worker")
            .env("WAYBILL_DATABASE_URL", &db)
            .env("WAYBILL_LOG", "warn")
            .env(var, value)
            .output()
            .expect("run worker");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{var}: {stderr}");
    }
}
