//! Read replicas against a real streaming replica: the test makes its own PostgreSQL primary and
//! hot standby (initdb, pg_basebackup -R, on free loopback ports, in a temporary directory),
//! serves Waybill on them with `WAYBILL_PG_READ_URL`, and checks over HTTP that a node always
//! reads its own writes, that reads are in fact answered by the standby once it has caught up,
//! that a paused standby is used only within the lag bound and a stopped one not at all, with no
//! error to the client. Both clusters are stopped at the end, also when the test fails.
//!
//! It needs PostgreSQL's server binaries (Debian's `postgresql` package, which `.ci/postgres`
//! installs), so like the other PostgreSQL tests it runs when `WAYBILL_TEST_POSTGRES_URL` is set
//! and then fails, rather than skips, if a binary is missing.

#![cfg_attr(not(waybill_postgres), allow(dead_code, unused_imports))]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_waybill");
/// The bound the replica node runs with (generous, so that a loaded machine still sees a stale
/// read within it).
const MAX_LAG: Duration = Duration::from_millis(2500);
const DEADLINE: Duration = Duration::from_secs(30);

/// PostgreSQL's server programs, run as the `postgres` OS user when this test runs as root
/// (PostgreSQL refuses to run as root).
struct PgTools {
    bin: PathBuf,
    run_as: Option<&'static str>,
}

impl PgTools {
    fn find() -> PgTools {
        let bin = match std::env::var_os("WAYBILL_TEST_PG_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => {
                // Debian: /usr/lib/postgresql/<major>/bin; the newest one.
                let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|entry| {
                        let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
                        Some((major, entry.path().join("bin")))
                    })
                    .collect();
                found.sort();
                match found.pop() {
                    Some((_, bin)) => bin,
                    None => panic!(
                        "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install \
                         Debian's postgresql (bash .ci/postgres does) or set WAYBILL_TEST_PG_BIN"
                    ),
                }
            }
        };
        for tool in ["initdb", "pg_ctl", "pg_basebackup", "postgres"] {
            assert!(
                bin.join(tool).is_file(),
                "{} is missing: install Debian's postgresql (bash .ci/postgres does) or set \
                 WAYBILL_TEST_PG_BIN",
                bin.join(tool).display()
            );
        }
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        PgTools {
            bin,
            run_as: root.then_some("postgres"),
        }
    }

    fn command(&self, tool: &str, dir: &Path) -> Command {
        let program = self.bin.join(tool);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(dir).stdin(Stdio::null());
        cmd
    }

    fn run(&self, dir: &Path, tool: &str, args: &[&str]) {
        let out = self
            .command(tool, dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Node {
    name: &'static str,
    data: PathBuf,
    port: u16,
}

impl Node {
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// A primary and a hot standby streaming from it, stopped when dropped.
struct Clusters {
    tools: PgTools,
    dir: tempfile::TempDir,
    primary: Node,
    standby: Node,
}

impl Drop for Clusters {
    fn drop(&mut self) {
        for node in [&self.standby, &self.primary] {
            let data = node.data.to_string_lossy().into_owned();
            let _ = self
                .tools
                .command("pg_ctl", self.dir.path())
                .args(["-D", &data, "-m", "immediate", "-w", "-t", "20", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl Clusters {
    async fn start() -> Clusters {
        let tools = PgTools::find();
        let dir = tempfile::Builder::new()
            .prefix("waybill-replica")
            .tempdir()
            .expect("temporary directory");
        if let Some(user) = tools.run_as {
            let status = Command::new("chown")
                .args([user, &dir.path().to_string_lossy()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let primary = Node {
            name: "primary",
            data: dir.path().join("primary"),
            port: free_port(),
        };
        let standby = Node {
            name: "standby",
            data: dir.path().join("standby"),
            port: free_port(),
        };
        let clusters = Clusters {
            tools,
            dir,
            primary,
            standby,
        };
        let dir = clusters.dir.path();
        let primary_data = clusters.primary.data.to_string_lossy().into_owned();
        clusters.tools.run(
            dir,
            "initdb",
            &[
                "-D",
                &primary_data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n\
             shared_preload_libraries = 'pg_stat_statements'\nfsync = off\n\
             max_connections = 80\n",
            clusters.primary.port,
            dir.display()
        );
        append(&clusters.primary.data.join("postgresql.conf"), &settings);
        clusters.start_node(&clusters.primary);
        let admin = connect(&clusters.primary.url("postgres")).await;
        admin
            .batch_execute("CREATE DATABASE waybill")
            .await
            .expect("create the database");
        let db = connect(&clusters.primary.url("waybill")).await;
        db.batch_execute("CREATE EXTENSION pg_stat_statements")
            .await
            .expect("create pg_stat_statements");

        let standby_data = clusters.standby.data.to_string_lossy().into_owned();
        let primary_port = clusters.primary.port.to_string();
        clusters.tools.run(
            dir,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                &standby_data,
                "-R",
                "-X",
                "stream",
                // A fast checkpoint to start from, not one spread over minutes.
                "-c",
                "fast",
            ],
        );
        // The copy's settings are the primary's; a later line wins.
        append(
            &clusters.standby.data.join("postgresql.conf"),
            &format!("\nport = {}\n", clusters.standby.port),
        );
        clusters.start_node(&clusters.standby);
        let standby = connect(&clusters.standby.url("waybill")).await;
        let in_recovery: bool = standby
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .expect("ask the standby")
            .get(0);
        assert!(in_recovery, "the standby is not in recovery");
        let started = Instant::now();
        loop {
            let streaming: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                    &[],
                )
                .await
                .expect("pg_stat_replication")
                .get(0);
            if streaming == 1 {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the standby never streamed: {}",
                clusters.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        clusters
    }

    fn start_node(&self, node: &Node) {
        let data = node.data.to_string_lossy().into_owned();
        let log = self
            .dir
            .path()
            .join(format!("{}.log", node.name))
            .to_string_lossy()
            .into_owned();
        self.tools.run(
            self.dir.path(),
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "30", "start"],
        );
    }

    fn stop_standby(&self) {
        let data = self.standby.data.to_string_lossy().into_owned();
        self.tools.run(
            self.dir.path(),
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"],
        );
    }

    fn logs(&self) -> String {
        ["primary", "standby"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                format!(
                    "--- {name}.log (last lines, newest first)\n{}",
                    tail.join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    async fn wait_caught_up(
        &self,
        primary: &tokio_postgres::Client,
        standby: &tokio_postgres::Client,
    ) {
        let target: tokio_postgres::types::PgLsn = primary
            .query_one("SELECT pg_current_wal_lsn()", &[])
            .await
            .expect("primary LSN")
            .get(0);
        let started = Instant::now();
        loop {
            let replayed: Option<tokio_postgres::types::PgLsn> = standby
                .query_one("SELECT pg_last_wal_replay_lsn()", &[])
                .await
                .expect("standby LSN")
                .get(0);
            if replayed.is_some_and(|r| r >= target) {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "the standby never caught up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.write_all(text.as_bytes()).expect("append settings");
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let started = Instant::now();
    loop {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(e) => {
                assert!(started.elapsed() < DEADLINE, "connecting to {url}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Statements that read orders, counted by pg_stat_statements on one server.
async fn order_reads(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT COALESCE(sum(calls), 0)::int8 FROM pg_stat_statements
             WHERE query ILIKE '%FROM orders%' AND query NOT ILIKE '%pg_stat_statements%'",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .get(0)
}

/// `waybill serve` on loopback with JSON logs collected; killed when dropped.
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
    fn start(env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]);
        for (k, _) in std::env::vars() {
            if k.starts_with("WAYBILL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("WAYBILL_LOG", "info").envs(env.iter().copied());
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn waybill serve");
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
        let Ok(addr) = rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            panic!("serve did not start: {:#?}", logs.lock().unwrap());
        };
        Server {
            child,
            base: format!("http://{addr}"),
            logs,
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    async fn wait_logged(&self, needle: &str) {
        let started = Instant::now();
        while !self.logged(needle) {
            assert!(
                started.elapsed() < DEADLINE,
                "never logged {needle:?}: {:#?}",
                self.logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A store made with `waybill stores create`: its id and API secret.
fn create_store(database_url: &str, name: &str) -> (String, String) {
    let out = Command::new(BIN)
        .args(["stores", "create", "--name", name])
        .env("WAYBILL_DATABASE_URL", database_url)
        .env("WAYBILL_LOG", "warn")
        .env_remove("WAYBILL_PG_READ_URL")
        .output()
        .expect("run waybill stores create");
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (
        created["storeId"].as_str().expect("storeId").to_owned(),
        created["apiSecret"].as_str().expect("apiSecret").to_owned(),
    )
}

struct Api {
    http: reqwest::Client,
}

impl Api {
    fn orders(server: &Server, store: &str) -> String {
        format!("{}/v2.2/stores/{store}/orders", server.base)
    }

    async fn create_order(&self, server: &Server, store: &(String, String), id: &str) {
        let resp = self
            .http
            .post(Self::orders(server, &store.0))
            .bearer_auth(&store.1)
            .json(&json!({"orderId": id, "createdAt": "2024-03-20T12:00:00Z",
                "lineItems": [{"id": "l", "productId": "p", "title": "t", "quantity": 2}]}))
            .send()
            .await
            .expect("POST order");
        let status = resp.status();
        assert_eq!(
            status,
            200,
            "creating {id}: {}",
            resp.text().await.unwrap_or_default()
        );
    }

    /// GET one order: its status, and its `orderId` when found.
    async fn get_order(&self, server: &Server, store: &(String, String), id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/{id}", Self::orders(server, &store.0)))
            .bearer_auth(&store.1)
            .send()
            .await
            .expect("GET order");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn list_ids(&self, server: &Server, store: &(String, String)) -> Vec<String> {
        let resp = self
            .http
            .get(Self::orders(server, &store.0))
            .bearer_auth(&store.1)
            .header("X-Page-Size", "100")
            .send()
            .await
            .expect("GET orders");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("JSON");
        body["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .filter_map(|o| o["orderId"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The read replica's figures in a node's `/metrics`.
#[derive(Debug, Default)]
struct ReplicaMetrics {
    /// `read_replica_reads_total` by (server, reason).
    reads: HashMap<(String, String), u64>,
    up: Option<f64>,
    lag: Option<f64>,
}

impl ReplicaMetrics {
    fn reads(&self, server: &str, reason: &str) -> u64 {
        self.reads
            .get(&(server.to_owned(), reason.to_owned()))
            .copied()
            .unwrap_or_else(|| panic!("no read_replica_reads_total{{{server},{reason}}}: {self:?}"))
    }

    fn replica(&self) -> u64 {
        self.reads("replica", "caught_up")
    }

    fn primary(&self, reason: &str) -> u64 {
        self.reads("primary", reason)
    }

    fn total(&self) -> u64 {
        self.reads.values().sum()
    }

    /// How each count moved since `before`, for messages.
    fn since(&self, before: &ReplicaMetrics) -> String {
        let mut moved: Vec<String> = self
            .reads
            .iter()
            .map(|((server, reason), n)| {
                let was = before
                    .reads
                    .get(&(server.clone(), reason.clone()))
                    .copied()
                    .unwrap_or(0);
                format!("{server}/{reason} +{}", n - was)
            })
            .collect();
        moved.sort();
        moved.join(", ")
    }
}

impl Api {
    async fn replica_metrics(&self, server: &Server) -> ReplicaMetrics {
        let resp = self
            .http
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("metrics text");
        let mut metrics = ReplicaMetrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("read_replica_reads_total{") {
                let (labels, value) = rest.split_once("} ").expect("a counter line");
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("no {name} in {line}"))
                        .to_owned()
                };
                metrics.reads.insert(
                    (label("server"), label("reason")),
                    value.parse().expect("a count"),
                );
            } else if let Some(value) = line.strip_prefix("read_replica_up ") {
                metrics.up = Some(value.parse().expect("a gauge"));
            } else if let Some(value) = line.strip_prefix("read_replica_lag_seconds ") {
                metrics.lag = Some(value.parse().expect("a gauge"));
            }
        }
        assert_eq!(metrics.reads.len(), 5, "every route is listed: {text}");
        metrics
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL (the test runs its own clusters \
              with the machine's PostgreSQL binaries)"
)]
async fn reads_use_a_caught_up_replica_and_always_see_the_nodes_own_writes() {
    let began = Instant::now();
    let clusters = Clusters::start().await;
    eprintln!("primary and standby streaming after {:?}", began.elapsed());
    let primary_url = clusters.primary.url("waybill");
    let read_url = clusters.standby.url("waybill");
    let primary = connect(&primary_url).await;
    let standby = connect(&read_url).await;
    let max_lag = MAX_LAG.as_millis().to_string();
    // Node A reads from the standby; node B, on the same database, does not.
    let node_a = Server::start(&[
        ("WAYBILL_DATABASE_URL", &primary_url),
        ("WAYBILL_PG_READ_URL", &read_url),
        ("WAYBILL_PG_READ_MAX_LAG_MS", &max_lag),
    ]);
    let node_b = Server::start(&[("WAYBILL_DATABASE_URL", &primary_url)]);
    node_a.wait_logged("the read replica answers").await;
    assert!(
        node_a.logged(&format!("127.0.0.1:{}", clusters.standby.port)),
        "node A names its read replica in its log"
    );
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("HTTP client"),
    };
    let store1 = create_store(&primary_url, "Replica one");
    let store2 = create_store(&primary_url, "Replica two");

    // Node A counts its reads by route from the start; node B, without a replica, lists the
    // families but has no series.
    let start = api.replica_metrics(&node_a).await;
    assert_eq!(start.up, Some(1.0), "{start:?}");
    assert!(
        start.lag.is_some_and(|lag| lag < MAX_LAG.as_secs_f64()),
        "{start:?}"
    );
    let resp = api
        .http
        .get(format!("{}/metrics", node_b.base))
        .send()
        .await
        .expect("GET /metrics");
    let text = resp.text().await.expect("metrics text");
    assert!(text.contains("# TYPE read_replica_reads counter"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("read_replica")),
        "node B has no replica, yet reports one: {text}"
    );

    // 1. Read-your-writes: every order node A accepts is there on node A's very next read.
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = format!("RYW-{i}");
        api.create_order(&node_a, &store1, &id).await;
        let (status, body) = api.get_order(&node_a, &store1, &id).await;
        assert_eq!(status, 200, "node A lost its own write {id}: {body}");
        assert_eq!(body["orderId"], id.as_str());
        ids.push(id);
        let listed = api.list_ids(&node_a, &store1).await;
        assert!(
            ids.iter().all(|id| listed.contains(id)),
            "node A's list misses its own writes: {listed:?}"
        );
    }

    eprintln!("read-your-writes checked after {:?}", began.elapsed());
    // Every one of the 60 reads is counted once; a read made just after the node's own write
    // mostly goes to the primary for it (the replica may have replayed the write in between).
    let after_ryw = api.replica_metrics(&node_a).await;
    assert_eq!(
        after_ryw.total() - start.total(),
        60,
        "{}",
        after_ryw.since(&start)
    );
    assert!(
        after_ryw.primary("own_write") > start.primary("own_write"),
        "no read after a write went to the primary: {}",
        after_ryw.since(&start)
    );
    eprintln!(
        "metrics after read-your-writes: {}",
        after_ryw.since(&start)
    );

    // 2. Once the standby has caught up, the same reads are answered by it.
    clusters.wait_caught_up(&primary, &standby).await;
    tokio::time::sleep(MAX_LAG / 10).await;
    let (on_standby, on_primary) = (order_reads(&standby).await, order_reads(&primary).await);
    for id in &ids {
        let (status, body) = api.get_order(&node_a, &store1, id).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["orderId"], id.as_str());
    }
    let listed = api.list_ids(&node_a, &store1).await;
    assert_eq!(listed.len(), ids.len(), "{listed:?}");
    let caught_up = api.replica_metrics(&node_a).await;
    let standby_reads = order_reads(&standby).await - on_standby;
    let primary_reads = order_reads(&primary).await - on_primary;
    eprintln!(
        "31 reads through node A on a caught-up standby: {standby_reads} order statements on \
         the standby, {primary_reads} on the primary"
    );
    assert!(
        standby_reads >= 25,
        "the standby answered {standby_reads} of 31 reads (the primary {primary_reads})"
    );
    // The metrics say the same: the replica answered (at least) as many of the 31 reads.
    assert_eq!(caught_up.total() - after_ryw.total(), 31);
    let replica_answered = caught_up.replica() - after_ryw.replica();
    assert!(
        replica_answered >= 25,
        "metrics: {}",
        caught_up.since(&after_ryw)
    );
    assert!(
        caught_up.lag.is_some_and(|lag| lag < MAX_LAG.as_secs_f64()),
        "{caught_up:?}"
    );

    // 3. Paused standby. A write through node B is not on the standby, and node A (which knows
    //    nothing of it) reads the standby's older copy: within the lag bound, a write through
    //    another node is not guaranteed to be seen.
    clusters.wait_caught_up(&primary, &standby).await;
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    let paused_at = Instant::now();
    api.create_order(&node_b, &store2, "ELSEWHERE-1").await;
    let (status, _) = api.get_order(&node_b, &store2, "ELSEWHERE-1").await;
    assert_eq!(status, 200, "node B reads the primary");
    let before_stale = api.replica_metrics(&node_a).await;
    let (status, body) = api.get_order(&node_a, &store2, "ELSEWHERE-1").await;
    let stale_within = paused_at.elapsed();
    assert!(
        stale_within < MAX_LAG,
        "the test was too slow ({stale_within:?}) to see a stale read within the bound"
    );
    assert_eq!(
        status, 404,
        "node A read ELSEWHERE-1 {stale_within:?} after the pause: not from the paused \
         standby? {body}"
    );
    // The stale answer (a 404) came from the replica, and is counted so.
    let after_stale = api.replica_metrics(&node_a).await;
    assert_eq!(
        (
            after_stale.total() - before_stale.total(),
            after_stale.replica() - before_stale.replica()
        ),
        (1, 1),
        "{}",
        after_stale.since(&before_stale)
    );
    // A write through node A is read back at once (from the primary) although the standby
    // stays behind; the metrics count that read as the primary's, for the node's own write.
    api.create_order(&node_a, &store1, "PAUSED-1").await;
    let before_own = api.replica_metrics(&node_a).await;
    let (status, body) = api.get_order(&node_a, &store1, "PAUSED-1").await;
    assert_eq!(
        status, 200,
        "node A lost its own write while the standby is paused: {body}"
    );
    let after_own = api.replica_metrics(&node_a).await;
    let own_within = paused_at.elapsed();
    assert!(
        own_within < MAX_LAG,
        "the test was too slow ({own_within:?}) to read its own write within the bound"
    );
    assert_eq!(
        (
            after_own.total() - before_own.total(),
            after_own.primary("own_write") - before_own.primary("own_write")
        ),
        (1, 1),
        "the read of the node's own write: {}",
        after_own.since(&before_own)
    );
    // Past the bound, every read falls back to the primary: the other node's write appears.
    tokio::time::sleep(MAX_LAG + MAX_LAG / 4).await;
    let before_lagging = api.replica_metrics(&node_a).await;
    assert_eq!(
        before_lagging.up,
        Some(1.0),
        "a paused standby still answers probes"
    );
    assert!(
        before_lagging
            .lag
            .is_some_and(|lag| lag >= MAX_LAG.as_secs_f64()),
        "the lag of a standby paused for {:?}: {before_lagging:?}",
        paused_at.elapsed()
    );
    let before = order_reads(&standby).await;
    let (status, body) = api.get_order(&node_a, &store2, "ELSEWHERE-1").await;
    assert_eq!(
        status, 200,
        "past the lag bound node A still read the standby: {body}"
    );
    for id in ids.iter().take(10) {
        assert_eq!(api.get_order(&node_a, &store1, id).await.0, 200);
    }
    assert_eq!(
        order_reads(&standby).await - before,
        0,
        "a standby lagging past the bound answered reads"
    );
    let lagging = api.replica_metrics(&node_a).await;
    assert_eq!(
        (
            lagging.total() - before_lagging.total(),
            lagging.primary("lagging") - before_lagging.primary("lagging")
        ),
        (11, 11),
        "the 11 reads past the bound: {}",
        lagging.since(&before_lagging)
    );
    eprintln!(
        "metrics: a standby paused for {:?} lags {:?} s",
        paused_at.elapsed(),
        lagging.lag
    );
    let paused_state: String = standby
        .query_one("SELECT pg_get_wal_replay_pause_state()", &[])
        .await
        .expect("pause state")
        .get(0);
    assert_eq!(paused_state, "paused");

    // 4. Resumed: once caught up, reads go back to the standby.
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .expect("resume replay");
    clusters.wait_caught_up(&primary, &standby).await;
    let started = Instant::now();
    loop {
        let before = order_reads(&standby).await;
        let (status, _) = api.get_order(&node_a, &store2, "ELSEWHERE-1").await;
        assert_eq!(status, 200);
        if order_reads(&standby).await > before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "reads never went back to the resumed standby"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 5. Stopped standby: reads fall back to the primary with no error to the client, whether
    //    the node has noticed yet or not.
    let before_stop = api.replica_metrics(&node_a).await;
    clusters.stop_standby();
    for id in ids.iter().take(10) {
        let (status, body) = api.get_order(&node_a, &store1, id).await;
        assert_eq!(status, 200, "with the standby stopped: {body}");
        assert_eq!(body["orderId"], id.as_str());
    }
    api.create_order(&node_a, &store1, "DOWN-1").await;
    assert_eq!(api.get_order(&node_a, &store1, "DOWN-1").await.0, 200);
    let listed = api.list_ids(&node_a, &store1).await;
    assert!(listed.iter().any(|id| id == "DOWN-1"), "{listed:?}");
    node_a
        .wait_logged("the read replica cannot be used; reading from the primary")
        .await;
    // The 12 reads went to the primary, for an error on the replica or for a replica known to
    // be down; now it is known down, with no lag, and the next read says so.
    let stopped = api.replica_metrics(&node_a).await;
    let fell_back = stopped.primary("replica_error") + stopped.primary("unavailable")
        - before_stop.primary("replica_error")
        - before_stop.primary("unavailable");
    assert_eq!(
        (stopped.total() - before_stop.total(), fell_back),
        (12, 12),
        "reads with the standby stopped: {}",
        stopped.since(&before_stop)
    );
    assert_eq!((stopped.up, stopped.lag), (Some(0.0), None), "{stopped:?}");
    assert_eq!(api.get_order(&node_a, &store1, "DOWN-1").await.0, 200);
    let down = api.replica_metrics(&node_a).await;
    assert_eq!(
        down.primary("unavailable") - stopped.primary("unavailable"),
        1,
        "{}",
        down.since(&stopped)
    );
    eprintln!(
        "metrics with the standby stopped: {}",
        stopped.since(&before_stop)
    );
    drop(node_a);
    drop(node_b);
    drop(clusters);
}

/// `waybill` with no WAYBILL_* variable but the ones given.
fn waybill(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("WAYBILL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("WAYBILL_LOG", "warn").envs(env.iter().copied());
    cmd.output().expect("run waybill")
}

#[test]
fn the_read_url_is_a_redacted_setting_that_needs_a_postgres_database() {
    let out = waybill(
        &["--pg-read-max-lag-ms", "250", "config"],
        &[
            (
                "WAYBILL_DATABASE_URL",
                "postgres://waybill:hunter2@db:5432/w",
            ),
            (
                "WAYBILL_PG_READ_URL",
                "postgres://reader:s3cret@replica:5432/w",
            ),
            ("WAYBILL_PG_READ_CHECK_INTERVAL_MS", "5"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("s3cret"),
        "the read URL's password is shown: {text}"
    );
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let setting = |key: &str| {
        let s = &config["settings"][key];
        (
            s["value"].as_str().unwrap_or_default().to_owned(),
            s["source"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(
        setting("pg_read_url").0,
        "postgres://reader:***@replica:5432/w"
    );
    assert!(setting("pg_read_url").1.contains("WAYBILL_PG_READ_URL"));
    assert_eq!(setting("pg_read_max_lag_ms").0, "250");
    assert!(
        setting("pg_read_max_lag_ms")
            .1
            .contains("--pg-read-max-lag-ms")
    );
    assert_eq!(setting("pg_read_check_interval_ms").0, "5");

    // A replica of SQLite, or a read URL that is not PostgreSQL, is refused up front.
    for (database, read, reason) in [
        (
            "sqlite://w.db",
            "postgres://reader:s3cret@replica/w",
            "needs a PostgreSQL database_url",
        ),
        (
            "postgres://db/w",
            "mysql://replica/w",
            "expected postgres://",
        ),
    ] {
        let out = waybill(
            &["config"],
            &[
                ("WAYBILL_DATABASE_URL", database),
                ("WAYBILL_PG_READ_URL", read),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid pg_read_url"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
