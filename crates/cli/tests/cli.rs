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
            let scheme = db.split("://").next().unwrap_or(db);
            assert!(
                line.contains(&format!("{scheme}://")),
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

    // A second key, then revoking it from the CLI (another process): the server remembers live
    // keys for `auth_cache_ttl` (2 s by default), so the key is refused within that.
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
    let revoked = std::time::Instant::now();
    loop {
        let status = get(second.to_owned()).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(5),
            "a revoked key still works {:?} after revocation",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    let mut args = vec![
        "bench".to_owned(),
        "--orders".into(),
        "40".into(),
        "--concurrency".into(),
        "4".into(),
        "--seconds".into(),
        "1".into(),
        "--rates".into(),
        "20".into(),
    ];
    // On the PostgreSQL half of CI the bench runs there too, with pgbench beside it.
    let postgres = std::env::var(waybill_store::testing::POSTGRES_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty());
    if let Some(url) = &postgres {
        args.extend([
            "--postgres".to_owned(),
            url.clone(),
            "--pgbench-clients".into(),
            "2".into(),
            // Most orders copied in SQL from one the store made, and two alternated pairs.
            "--store-orders".into(),
            "10".into(),
            "--pairs".into(),
            "2".into(),
        ]);
    }
    let out = Command::new(BIN)
        .args(&args)
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = vec![
        "raw create fulfillment",
        "raw get order",
        "http create fulfillment",
        "http create @ 20/s",
        "http shipment status",
        "http get order",
        "HTTP/raw create-fulfillment ratio",
        "server start-up to ready with 40 orders",
        "server RSS idle",
        "server peak RSS under load",
    ];
    if postgres.is_some() {
        expected.extend([
            "copied orders B-10 .. B-39",
            "pair 2: pgbench",
            "HTTP/pgbench ratio (median of 2 pairs)",
        ]);
    } else {
        // SQLite: the server runs on a copy of the database as prepared.
        expected.push("copied the prepared database for the server");
    }
    for phase in expected {
        assert!(stdout.contains(phase), "missing {phase}: {stdout}");
    }
}

/// Two `waybill serve` processes on one database (PostgreSQL in CI, the same SQLite file
/// otherwise), started at the same moment (so both race to migrate), take 200 concurrent
/// one-unit fulfillments split across them against two lines ordered ×50: exactly 50 units
/// per line are fulfilled and every other request gets the over-fulfillment error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_ledger() {
    let db = waybill_store::testing::TestDatabase::new()
        .await
        .expect("test database");
    let url = db.url.clone();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| serve(&url));
        let b = s.spawn(|| serve(&url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let created = json_line(&waybill(&url, &["stores", "create", "--name", "Shared"]));
    let store = created["storeId"].as_str().unwrap().to_owned();
    let secret = created["apiSecret"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let order = json!({
        "orderId": "MP-1", "createdAt": "2024-03-20T12:00:00Z",
        "lineItems": [
            {"id": "a", "productId": "p", "title": "A", "quantity": 50},
            {"id": "b", "productId": "p", "title": "B", "quantity": 50}
        ]
    });
    let resp = client
        .post(format!("{}/v2.2/stores/{store}/orders", a.base))
        .bearer_auth(&secret)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let url = format!("{base}/v2.2/stores/{store}/orders/MP-1/fulfillments");
        let line = if i % 4 < 2 { "a" } else { "b" };
        let (client, secret, barrier) = (client.clone(), secret.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = client
                .post(url)
                .bearer_auth(secret)
                .json(&json!({"lineItems": [{"id": line, "quantity": 1}]}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (line, status, resp.json::<Value>().await.unwrap())
        }));
    }
    let mut ok = std::collections::HashMap::new();
    let mut refused = 0;
    for task in tasks {
        let (line, status, body) = task.await.unwrap();
        match status {
            200 => *ok.entry(line).or_insert(0) += 1,
            400 => {
                let message = body["error"].as_str().unwrap_or_default();
                assert!(message.contains("0 unit(s) left"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok.get("a"), Some(&50));
    assert_eq!(ok.get("b"), Some(&50));
    assert_eq!(refused, 100);
    let order: Value = client
        .get(format!("{}/v2.2/stores/{store}/orders/MP-1", b.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 50);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 50);
    assert_eq!(order["fulfillments"].as_array().map(Vec::len), Some(100));
}

/// Nothing acknowledged is lost when the process dies between (or during) batches: clients
/// create fulfillments with ids of their own while the server is killed with SIGKILL; after a
/// restart on the same database every acknowledged fulfillment is there, and the ledger counts
/// exactly the fulfillments that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_nothing_it_acknowledged() {
    let db = waybill_store::testing::TestDatabase::new()
        .await
        .expect("test database");
    let url = db.url.clone();
    let created = json_line(&waybill(&url, &["stores", "create", "--name", "Crash"]));
    let store = created["storeId"].as_str().unwrap().to_owned();
    let secret = created["apiSecret"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();

    let mut server = serve(&url);
    let order = json!({
        "orderId": "K-1", "createdAt": "2024-03-20T12:00:00Z",
        "lineItems": [{"id": "a", "productId": "p", "title": "A", "quantity": 1000}]
    });
    let resp = client
        .post(format!("{}/v2.2/stores/{store}/orders", server.base))
        .bearer_auth(&secret)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..8 {
        let url = format!(
            "{}/v2.2/stores/{store}/orders/K-1/fulfillments",
            server.base
        );
        let (client, secret, acknowledged) = (client.clone(), secret.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..200 {
                let id = format!("k-{c}-{i}");
                let sent = client
                    .post(&url)
                    .bearer_auth(&secret)
                    .json(&json!({"fulfillmentId": id, "lineItems": [{"id": "a", "quantity": 1}]}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == 200 => acknowledged.lock().unwrap().push(id),
                    Ok(resp) => panic!("unexpected {}", resp.status()),
                    // The server is gone: stop this client.
                    Err(_) => return,
                }
            }
        }));
    }
    // Let some requests through, then kill the server without warning.
    while acknowledged.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 40);

    let server = serve(&url);
    let stored: Value = client
        .get(format!("{}/v2.2/stores/{store}/orders/K-1", server.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: std::collections::HashSet<&str> = stored["fulfillments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(ids.contains(id.as_str()), "acknowledged {id} was lost");
    }
    assert_eq!(
        stored["lineItems"][0]["fulfilledQuantity"],
        json!(ids.len()),
        "the ledger counts exactly the stored fulfillments"
    );
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

/// `waybill` with stdout and stderr piped, no WAYBILL_* variable but the ones given, and no
/// variable that forces colours on or off.
fn plain(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("WAYBILL_") || k.starts_with("RUST_") {
            cmd.env_remove(k);
        }
    }
    for k in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run waybill")
}

fn assert_no_ansi(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains("\x1b["), "ANSI escapes in {what}: {text:?}");
}

/// A user's mistake is one line on stderr, `error: …` with its causes, and exit status 1: no
/// "Caused by:" block, no backtrace, no panic, even with backtraces asked for.
#[test]
fn user_errors_are_one_line_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let created = json_line(&waybill(&db, &["stores", "create", "--name", "Shop"]));
    let store = created["storeId"].as_str().unwrap();
    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, "keep me").unwrap();
    let existing = existing.to_str().unwrap();
    let missing_csv = dir.path().join("missing.csv");
    let missing_csv = missing_csv.to_str().unwrap();
    // A database below a regular file cannot be created.
    let blocked = format!("sqlite://{existing}/sub/w.db");
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "listen = \"127.0.0.1:0\"\npg_pool_size = \n").unwrap();
    let bad_toml = bad_toml.to_str().unwrap();

    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--database",
                &db,
                "keys",
                "create",
                "--store",
                "does-not-exist",
            ],
            "store 'does-not-exist' was not found",
        ),
        (
            &[
                "--database",
                &db,
                "--pg-pool-size",
                "lots",
                "stores",
                "list",
            ],
            "invalid pg_pool_size 'lots' (from the flag --pg-pool-size)",
        ),
        (
            &["--database", &db, "keys", "revoke", "no-such-key"],
            "no live key 'no-such-key'",
        ),
        (
            &[
                "--database",
                &db,
                "import",
                "fulfillments",
                missing_csv,
                "--store",
                store,
            ],
            "opening ",
        ),
        (
            &["--database", &blocked, "stores", "list"],
            "opening sqlite://",
        ),
        (
            &["--database", "mysql://localhost/w", "stores", "list"],
            "invalid database_url",
        ),
        (&["--database", &db, "backup", existing], "--force"),
        (
            &["--config", bad_toml, "config"],
            "is not valid TOML at line 2, column 16",
        ),
    ];
    for (args, fragment) in cases {
        let out = plain(
            args,
            &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {stderr}");
        let line = lines[0];
        assert!(line.starts_with("error: "), "{args:?}: {line}");
        assert!(
            line.contains(fragment),
            "{args:?}: {line} lacks {fragment:?}"
        );
        for bad in ["Caused by", "backtrace", "panicked"] {
            assert!(
                !line.to_lowercase().contains(&bad.to_lowercase()),
                "{args:?}: {line}"
            );
        }
        assert_no_ansi("an error", &out.stderr);
    }
    assert_eq!(std::fs::read(existing).unwrap(), b"keep me");
}

/// Usage errors stay clap's: exit status 2, with the usage, and no colours in a pipe.
#[test]
fn usage_errors_exit_2_without_colours_in_a_pipe() {
    let out = plain(&["keys", "create"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--store <STORE>"), "{stderr}");
    assert_no_ansi("a usage error", &out.stderr);
}

/// Logs written to a pipe carry no ANSI colours.
#[test]
fn logs_have_no_colours_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let out = plain(
        &["--database", &db, "--log-format", "pretty", "migrate"],
        &[("WAYBILL_LOG", "info")],
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database is migrated"), "{stderr}");
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert_no_ansi("the logs", &out.stderr);
}

/// `waybill import` with stderr on a pipe: whole log lines, no progress bar and none of its
/// control sequences.
#[test]
fn import_logs_whole_lines_and_no_progress_bar_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let created = json_line(&waybill(&db, &["stores", "create", "--name", "Shop"]));
    let store = created["storeId"].as_str().unwrap();
    let file = dir.path().join("rows.csv");
    let mut csv = String::from("Order ID,Line Item ID,Qty,Tracking Number\n");
    for i in 0..500 {
        csv.push_str(&format!("NOPE-{i},a,1,T{i}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let file = file.to_str().unwrap();

    for format in ["pretty", "json"] {
        let out = plain(
            &[
                "--database",
                &db,
                "--log-format",
                format,
                "import",
                "fulfillments",
                file,
                "--store",
                store,
            ],
            &[("WAYBILL_LOG", "debug")],
        );
        assert!(out.status.success(), "{out:?}");
        let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
        assert_eq!(summary["rows"], 500);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.ends_with('\n'), "{format}: {stderr:?}");
        assert!(!stderr.contains('\r'), "{format}: {stderr:?}");
        assert!(
            !stderr.contains("rows  "),
            "{format}: a progress bar: {stderr:?}"
        );
        assert_no_ansi(format, &out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.iter().any(|l| l.contains("import finished")),
            "{format}: {stderr}"
        );
        for line in lines {
            match format {
                "json" => {
                    let event: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line:?}"));
                    assert!(event["level"].is_string(), "{line}");
                }
                _ => {
                    // A timestamp, a level and a target: `2026-01-01T00:00:00.000000Z  INFO x: …`.
                    let (stamp, rest) = line.split_once(' ').unwrap_or_default();
                    assert!(
                        stamp.len() > 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
                        "not a whole log line: {line:?}"
                    );
                    let level = rest.trim_start().split(' ').next().unwrap_or_default();
                    assert!(
                        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
                        "not a whole log line: {line:?}"
                    );
                }
            }
        }
    }
}

/// `serve --help`: the command's own options first, then the shared ones under headings of
/// their own.
#[test]
fn serve_help_shows_its_own_options_before_the_global_ones() {
    let out = plain(&["serve", "--help"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_no_ansi("the help", &out.stdout);
    let help = String::from_utf8_lossy(&out.stdout);
    let at = |needle: &str| {
        help.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} is not in the help:\n{help}"))
    };
    let (database, global) = (at("\nDatabase options:\n"), at("\nGlobal options:\n"));
    let own = at("--listen <ADDR>")
        .max(at("--shutdown-grace"))
        .max(at("--smtp-url"));
    assert!(own < database && own < global, "{help}");
    // Each flag lies under its heading and before the next one, whichever comes first.
    for flag in ["--database <URL>", "--pg-pool-size", "--sqlite-synchronous"] {
        let i = at(flag);
        assert!(
            i > database && (global < database || i < global),
            "{flag}:\n{help}"
        );
    }
    for flag in ["--config <FILE>", "--log-format"] {
        let i = at(flag);
        assert!(
            i > global && (database < global || i < database),
            "{flag}:\n{help}"
        );
    }
}
