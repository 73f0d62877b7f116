//! Several servers on one database, as behind a load balancer without sticky sessions: a
//! session signed in on one works on the other (cookie and CSRF token) and after a restart,
//! sign-out ends it everywhere, failed sign-ins count across servers, and with a shared rate
//! limit the limit holds across them. On a SQLite file (two servers may share one) or on
//! PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use waybill_server::limits::LimitSettings;
use waybill_store::testing::TestDatabase;

use crate::harness::{App, FormBody, csrf_in};

async fn two_servers() -> (App, App) {
    let db = Arc::new(TestDatabase::new().await.expect("test database"));
    let one = App::spawn_on(db.clone(), |s| s, std::future::pending()).await;
    let two = App::spawn_on(db, |s| s, std::future::pending()).await;
    (one, two)
}

#[tokio::test]
async fn a_session_signed_in_on_one_server_works_on_another_and_after_a_restart() {
    let db = Arc::new(TestDatabase::new().await.expect("test database"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let one = App::spawn_on(db.clone(), |s| s, async move {
        let _ = stopped.await;
    })
    .await;
    let two = App::spawn_on(db.clone(), |s| s, std::future::pending()).await;
    let seeded = one.seed().await;
    let session = one.sign_in(&seeded.secret).await;

    // Server 2 knows the session and its CSRF token: a page, then a form post (sign-out is
    // the one post that needs nothing but the token) that is refused without the token.
    let (status, html) = two.page(&session, "/ui/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&seeded.store_id));
    let csrf = csrf_in(&html).expect("the session's token in the page");
    let (_, html_one) = one.page(&session, "/ui/orders").await;
    assert_eq!(
        csrf_in(&html_one).as_deref(),
        Some(csrf.as_str()),
        "one token per session"
    );
    let (status, _, _) = two
        .post_form(&session, "/ui/logout", &[("csrf", "wrong")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Server 1 stops; a new server on the same database still takes the cookie.
    stop.send(()).expect("server 1 running");
    drop(one);
    let restarted = App::spawn_on(db.clone(), |s| s, std::future::pending()).await;
    assert_eq!(
        restarted.page(&session, "/ui/orders").await.0,
        StatusCode::OK,
        "the session survives a restart"
    );

    // Sign-out on server 2 ends it on the restarted server too.
    let (status, location, _) = two
        .post_form(&session, "/ui/logout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/ui/login?ended=signed-out");
    let (status, _) = restarted.page(&session, "/ui/orders").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out everywhere");
    let (status, _) = two.page(&session, "/ui/orders").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Only the cookie's hash is stored: the cookie value itself finds nothing.
    assert!(two.store.get_session(&session).await.unwrap().is_none());
}

#[tokio::test]
async fn revoking_the_key_on_one_server_ends_the_session_on_the_other() {
    let (one, two) = two_servers().await;
    let seeded = one.seed().await;
    let session = one.sign_in(&seeded.secret).await;
    assert_eq!(two.page(&session, "/ui/orders").await.0, StatusCode::OK);
    assert!(one.store.revoke_api_key(&seeded.key_id).await.unwrap());
    let resp = two
        .client
        .get(two.url("/ui/orders"))
        .header(COOKIE, format!("waybill_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/ui/login?ended=revoked")
    );
    assert_eq!(
        one.page(&session, "/ui/orders").await.0,
        StatusCode::SEE_OTHER
    );
}

/// Posts the sign-in form to `app`; the status and `Retry-After`.
async fn try_sign_in(app: &App, secret: &str) -> (StatusCode, Option<u64>) {
    let (cookie, token) = app.login_form().await;
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={cookie}"))
        .form_body(&[("csrf", token.as_str()), ("secret", secret)])
        .send()
        .await
        .expect("sign in");
    let retry = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (resp.status(), retry)
}

#[tokio::test]
async fn failed_sign_ins_count_across_servers() {
    let (one, two) = two_servers().await;
    let seeded = one.seed().await;
    let wrong = "wb_sk_not-a-real-secret-0000000000000000";
    // Four failures spread over both servers, then the fifth blocks on both.
    for i in 0..4 {
        let app = if i % 2 == 0 { &one } else { &two };
        assert_eq!(
            try_sign_in(app, wrong).await,
            (StatusCode::UNAUTHORIZED, None),
            "failure {i}"
        );
    }
    assert_eq!(try_sign_in(&two, wrong).await.0, StatusCode::UNAUTHORIZED);
    for app in [&one, &two] {
        let (status, retry) = try_sign_in(app, &seeded.secret).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "blocked on both");
        assert!(retry.is_some_and(|r| (1..=30).contains(&r)), "{retry:?}");
    }
}

#[tokio::test]
async fn a_success_on_one_server_resets_the_count_on_the_other() {
    let (one, two) = two_servers().await;
    let seeded = one.seed().await;
    let wrong = "wb_sk_not-a-real-secret-0000000000000000";
    for _ in 0..4 {
        assert_eq!(try_sign_in(&one, wrong).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        try_sign_in(&two, &seeded.secret).await.0,
        StatusCode::SEE_OTHER
    );
    for i in 0..4 {
        assert_eq!(
            try_sign_in(&one, wrong).await,
            (StatusCode::UNAUTHORIZED, None),
            "failure {i} after the reset"
        );
    }
}

#[tokio::test]
async fn a_shared_rate_limit_holds_across_servers() {
    let db = Arc::new(TestDatabase::new().await.expect("test database"));
    // 2 per second, burst 10: shared windows of 5 s that admit 10 requests in all. Each
    // server's own limiter would let 10 through at once, so 16 requests spread over two
    // servers would all pass if each counted alone.
    let settings = LimitSettings {
        rate_per_second: 2,
        burst: 10,
        shared_rate: true,
        ..LimitSettings::default()
    };
    assert_eq!(
        waybill_server::limits::shared_window(&settings),
        Some((std::time::Duration::from_secs(5), 10))
    );
    let configure = |s: waybill_server::AppState| s.with_limits(settings.clone());
    let one = App::spawn_on(db.clone(), configure, std::future::pending()).await;
    let two = App::spawn_on(db.clone(), configure, std::future::pending()).await;
    let (record, key) = one.store.create_store("rate").await.unwrap();
    let path = format!("/v2.2/stores/{}/orders", record.id);
    // Start just after a window begins (windows are aligned to multiples of 5 s).
    let window_of = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() / 5000;
    let now = chrono::Utc::now().timestamp_millis();
    let wait = 5000 - now.rem_euclid(5000) + 20;
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(wait).unwrap(),
    ))
    .await;
    let start = chrono::Utc::now();
    let mut passed = 0;
    let mut refused = 0;
    for i in 0..16 {
        let app = if i % 2 == 0 { &one } else { &two };
        let resp = app
            .client
            .get(app.url(&path))
            .bearer_auth(&key.secret)
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let retry: u64 = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After");
                assert!((1..=5).contains(&retry), "{retry}");
                let body = resp.text().await.unwrap();
                assert!(body.contains("across all servers"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let end = chrono::Utc::now();
    assert_eq!(
        window_of(start),
        window_of(end),
        "the 16 requests took over 5 s; the test cannot tell one window from two"
    );
    assert_eq!(
        (passed, refused),
        (10, 6),
        "10 pass in the window across both servers"
    );
}

#[tokio::test]
async fn two_servers_sweeping_at_once_share_the_work() {
    use waybill_server::retention::{RetentionSettings, sweep};
    use waybill_store::NewSession;
    let db = TestDatabase::new().await.expect("test database");
    let one = db.open().await.unwrap();
    let two = db.open().await.unwrap();
    let (shop, _) = one.create_store("s").await.unwrap();
    let now = chrono::Utc::now();
    let session = |hash: String, expires: i64| NewSession {
        token_hash: hash,
        store_id: shop.id.clone(),
        key_ids: vec!["key".into()],
        csrf: "t".into(),
        created_at: now - chrono::Duration::hours(13),
        expires_at: now + chrono::Duration::seconds(expires),
    };
    for i in 0..450 {
        one.create_session(session(format!("old{i}"), -60))
            .await
            .unwrap();
    }
    one.create_session(session("live".into(), 3600))
        .await
        .unwrap();
    one.touch_session("live", now).await.unwrap();
    let settings = RetentionSettings {
        batch: 50,
        pause: std::time::Duration::from_millis(1),
        ..RetentionSettings::default()
    };
    let limits = LimitSettings::default();
    let (a, b) = tokio::join!(
        sweep(one.as_ref(), &settings, &limits, now),
        sweep(two.as_ref(), &settings, &limits, now)
    );
    let (a, b) = (a.expect("sweep one"), b.expect("sweep two"));
    assert_eq!(
        a.of("sessions") + b.of("sessions"),
        450,
        "every expired session deleted once: {a:?} {b:?}"
    );
    assert!(one.get_session("old0").await.unwrap().is_none());
    assert!(two.get_session("live").await.unwrap().is_some());
}
