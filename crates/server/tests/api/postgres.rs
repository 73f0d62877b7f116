//! PostgreSQL faults: backends terminated under load, and the database unreachable for a
//! while. Both need a PostgreSQL server: without `WAYBILL_TEST_POSTGRES_URL` they are ignored,
//! with the reason in the test summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use waybill_store::OpenOptions;
use waybill_store::postgres::PgOptions;
use waybill_store::testing::{Backend, POSTGRES_ENV, TestDatabase};

use crate::common::*;

/// The tests here are ignored unless this crate was built with `WAYBILL_TEST_POSTGRES_URL` set
/// (see build.rs). Run without it anyway (the test binary started by hand), they fail rather
/// than pass having tested nothing.
fn require_postgres() {
    assert_eq!(
        Backend::from_env(),
        Backend::Postgres,
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
}

/// Terminates every backend of this test's connections, several times, while four clients
/// create fulfillments and read the order. Requests answer 200 or 503 (never 500), Waybill
/// recovers without a restart, and the ledger holds exactly the acknowledged units.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
async fn terminated_backends_recover_without_restart() {
    require_postgres();
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant("shop").await;
    app.order(&t, "PG-1", 1000).await;
    let schema = app.db.postgres_schema().expect("schema").to_owned();
    let admin = app.db.postgres_admin_url().expect("admin url").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (app, t, stop) = (app.clone(), t.clone(), stop.clone());
        let (acknowledged, unavailable) = (acknowledged.clone(), unavailable.clone());
        clients.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 150 {
                sent += 1;
                let (status, body) = app
                    .post(
                        &t,
                        "/orders/PG-1/fulfillments",
                        json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
                    )
                    .await;
                match status {
                    StatusCode::OK => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE);
                        unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
                let (status, body) = app.get(&t, "/orders/PG-1").await;
                assert!(
                    status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                    "{status}: {body}"
                );
            }
        }));
    }

    let terminate = format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = '{schema}') AS t"
    );
    let (admin_client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    let mut terminated = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let row = admin_client
            .query_one(&terminate, &[])
            .await
            .expect("terminate");
        terminated += row.get::<_, i64>(0);
    }
    assert!(
        terminated > 0,
        "the test terminated some of Waybill's backends"
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }

    // Recovered: a run of requests after the faults all succeed, with no restart.
    for _ in 0..10 {
        let (status, body) = app
            .post(
                &t,
                "/orders/PG-1/fulfillments",
                json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        acknowledged.fetch_add(1, Ordering::Relaxed);
    }
    let (status, order) = app.get(&t, "/orders/PG-1").await;
    assert_eq!(status, StatusCode::OK);
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    assert_eq!(
        order["lineItems"][0]["fulfilledQuantity"],
        json!(acknowledged),
        "every acknowledged unit is stored, nothing else"
    );
    assert_eq!(
        order["fulfillments"].as_array().map(Vec::len),
        Some(acknowledged)
    );
    eprintln!(
        "terminated {terminated} backends; acknowledged {acknowledged}, answered 503 {}",
        unavailable.load(Ordering::Relaxed)
    );
}

/// A TCP proxy in front of PostgreSQL that can cut the database off: while down it closes
/// every connection it holds and every new one at once.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (up2, generation2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = generation2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// With the database unreachable, `/readyz` and requests answer 503 and change nothing; when
/// it is back, Waybill recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
async fn database_outage_answers_503_and_recovers() {
    require_postgres();
    let db = TestDatabase::new().await.expect("test database");
    let env_url = std::env::var(POSTGRES_ENV).expect("url");
    let config: tokio_postgres::Config = env_url.parse().expect("postgres url");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    let schema = db.postgres_schema().expect("schema");
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}?options=-c%20search_path%3D{schema}",
        config.get_user().unwrap_or("postgres"),
        proxy.port,
        config.get_dbname().unwrap_or("test"),
    );
    let options = OpenOptions {
        postgres: PgOptions {
            pool_size: 4,
            acquire_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = waybill_store::open_with(&url, &options)
        .await
        .expect("open through the proxy");
    let app = TestApp::serve(db, store).await;
    let t = app.tenant("shop").await;
    app.order(&t, "OUT-1", 5).await;
    let (status, _) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);

    proxy.down();
    let (status, body) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = app
        .post(
            &t,
            "/orders/OUT-1/fulfillments",
            json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
        )
        .await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = app.get(&t, "/orders/OUT-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    proxy.restore();
    let mut ready = false;
    for _ in 0..100 {
        let (status, _) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
        if status == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz recovers once the database is back");
    let (status, body) = app
        .post(
            &t,
            "/orders/OUT-1/fulfillments",
            json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, order) = app.get(&t, "/orders/OUT-1").await;
    assert_eq!(
        order["lineItems"][0]["fulfilledQuantity"],
        json!(1),
        "the request refused during the outage left nothing behind"
    );
}
