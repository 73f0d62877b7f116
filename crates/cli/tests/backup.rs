//! `waybill backup`: an online copy of a live SQLite database, taken while a server keeps
//! writing, holds every order acknowledged before it started and a consistent ledger.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waybill_core::OrderRef;

const BIN: &str = env!("CARGO_BIN_EXE_waybill");

fn waybill(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("WAYBILL_DATABASE_URL", db)
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run waybill")
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &str) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("WAYBILL_DATABASE_URL", db)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Server(child, format!("http://{addr}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start");
}

/// Orders (and their fulfillments) the server acknowledged, in order.
type Acked = Arc<Mutex<Vec<(String, Vec<String>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_write_load_holds_everything_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    let created: Value =
        serde_json::from_slice(&waybill(&db, &["stores", "create", "--name", "B"]).stdout).unwrap();
    let store = created["storeId"].as_str().unwrap().to_owned();
    let secret = created["apiSecret"].as_str().unwrap().to_owned();
    let server = serve(&db);

    // Four writers: each creates orders and fulfills 1-2 of their 3 units, until told to stop.
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (acked, stop, secret) = (acked.clone(), stop.clone(), secret.clone());
        let root = format!("{}/v2.2/stores/{store}/orders", server.1);
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("w{w}-{n}");
                let order = json!({"orderId": id, "createdAt": "2024-03-20T12:00:00Z",
                    "lineItems": [{"id": "a", "productId": "p", "title": "A", "quantity": 3}]});
                let r = http
                    .post(&root)
                    .bearer_auth(&secret)
                    .json(&order)
                    .send()
                    .await;
                assert_eq!(r.unwrap().status(), 200);
                let fid = format!("{id}-f");
                let f = json!({"fulfillmentId": fid,
                    "lineItems": [{"id": "a", "quantity": 1 + n % 2}]});
                let r = http
                    .post(format!("{root}/{id}/fulfillments"))
                    .bearer_auth(&secret)
                    .json(&f)
                    .send()
                    .await;
                assert_eq!(r.unwrap().status(), 200);
                acked.lock().unwrap().push((id, vec![fid]));
                n += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The backup starts now: everything acknowledged so far must be in it.
    let before: Vec<(String, Vec<String>)> = acked.lock().unwrap().clone();
    let path = dir.path().join("copy.db");
    let out = {
        let (db, path) = (db.clone(), path.clone());
        tokio::task::spawn_blocking(move || waybill(&db, &["backup", path.to_str().unwrap()]))
            .await
            .unwrap()
    };
    let after = acked.lock().unwrap().len();
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert!(report["bytes"].as_u64().unwrap() > 0, "{report}");
    // Keep writing a little past the backup, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        acked.lock().unwrap().len() > before.len(),
        "the server kept writing during the backup"
    );
    drop(server);

    // A second backup to the same path is refused without --force.
    let again = waybill(&db, &["backup", path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // The copy opens as a Waybill database on its own (no -wal beside it).
    assert!(!dir.path().join("copy.db-wal").exists());
    let copy = waybill_store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the backup");
    for (id, fulfillments) in &before {
        let order = copy
            .get_order(&store, &OrderRef::new(id.clone()))
            .await
            .unwrap_or_else(|e| panic!("order {id}, acknowledged before the backup: {e}"));
        for f in fulfillments {
            assert!(
                order.fulfillments.iter().any(|x| &x.id == f),
                "fulfillment {f} acknowledged before the backup is missing"
            );
        }
    }
    // The ledger of every order in the copy: fulfilled = units in live fulfillments ≤ ordered.
    let mut seen = 0;
    let mut query = waybill_store::OrderQuery {
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = copy.list_orders(&store, query.clone()).await.unwrap();
        for order in &page.orders {
            let mut live: HashMap<&str, u32> = HashMap::new();
            for f in order.fulfillments.iter().filter(|f| f.status.is_live()) {
                for l in &f.lines {
                    *live.entry(l.line_item_id.as_str()).or_default() += l.quantity;
                }
            }
            for line in &order.line_items {
                let units = live.get(line.id.as_str()).copied().unwrap_or(0);
                assert_eq!(line.fulfilled, units, "order {}", order.external_id);
                assert!(line.fulfilled <= line.quantity);
            }
            seen += 1;
        }
        match (page.has_more, page.orders.last()) {
            (true, Some(last)) => query.after = Some(last.id.to_string()),
            _ => break,
        }
    }
    assert!(seen >= before.len(), "{seen} orders in the copy");
    assert!(
        seen <= after + 8,
        "the copy holds {seen} orders but only {after} were acknowledged when it finished"
    );
}

#[test]
fn backup_of_a_postgres_database_points_at_pg_dump() {
    let out = waybill(
        "postgres://postgres@127.0.0.1:1/none",
        &["backup", "/tmp/never-written.db"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(stderr.contains("docs/OPERATIONS.md"), "{stderr}");
    assert!(!std::path::Path::new("/tmp/never-written.db").exists());
}
