//! Idempotency-key leases shared by the processes on one database: a reservation renewed by its
//! holder stays its own, one left unrenewed is taken over once its lease has run out, and a
//! renewal, an answer or a release only ever acts on the reservation its token still holds.
//! On a real SQLite file, or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set; "two
//! processes" are two stores opened on the one database. Time is passed in, so the leases are
//! exact and the test does not sleep.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use waybill_core::Timestamp;
use waybill_store::testing::TestDatabase;
use waybill_store::{IdempotencyBegin, IdempotencyRequest, Store, StoredResponse};

const LEASE: Duration = Duration::from_secs(1);

fn at(base: Timestamp, millis: i64) -> Timestamp {
    base + chrono::Duration::milliseconds(millis)
}

fn request(store_id: &str, key: &str, token: &str) -> IdempotencyRequest {
    IdempotencyRequest {
        store_id: store_id.into(),
        key: key.into(),
        fingerprint: "the same request".into(),
        token: token.into(),
        lease: LEASE,
        ttl: Duration::from_secs(24 * 3600),
    }
}

fn answer(body: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn a_renewal_extends_only_the_reservation_its_token_holds() {
    let db = TestDatabase::new().await.unwrap();
    let one: Arc<dyn Store> = db.open().await.unwrap();
    let two: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = one.create_store("leases").await.unwrap();
    let t0 = Utc::now();

    // Process one reserves the key and renews it before its lease (t0 + 1 s) runs out.
    let a = request(&shop.id, "k", "holder-a");
    let b = request(&shop.id, "k", "holder-b");
    assert_eq!(
        one.idempotency_begin(a.clone(), t0).await.unwrap(),
        IdempotencyBegin::Proceed
    );
    assert!(
        one.idempotency_renew(&a.hold(), LEASE, at(t0, 800))
            .await
            .unwrap()
    );
    // Past the first lease, but within the renewed one (t0 + 1.8 s): still in progress for a
    // retry through the other process, which cannot renew what it does not hold.
    assert_eq!(
        two.idempotency_begin(b.clone(), at(t0, 1500))
            .await
            .unwrap(),
        IdempotencyBegin::InProgress
    );
    assert!(
        !two.idempotency_renew(&b.hold(), LEASE, at(t0, 1500))
            .await
            .unwrap(),
        "a token that holds nothing renewed the key"
    );
    assert_eq!(
        two.idempotency_begin(b.clone(), at(t0, 1799))
            .await
            .unwrap(),
        IdempotencyBegin::InProgress
    );

    // Holder a stops renewing (its process died): at t0 + 1.8 s the key is free to take over.
    assert_eq!(
        two.idempotency_begin(b.clone(), at(t0, 1800))
            .await
            .unwrap(),
        IdempotencyBegin::Proceed
    );
    // a comes back: its renewal, its answer and its release all miss, and change nothing.
    assert!(
        !one.idempotency_renew(&a.hold(), LEASE, at(t0, 1900))
            .await
            .unwrap()
    );
    assert!(
        !one.idempotency_release(&a.hold()).await.unwrap(),
        "a released b's reservation"
    );
    assert!(
        !one.idempotency_complete(&a.hold(), answer("a's"))
            .await
            .unwrap(),
        "a stored an answer over b's reservation"
    );
    let c = request(&shop.id, "k", "holder-c");
    assert_eq!(
        one.idempotency_begin(c.clone(), at(t0, 2000))
            .await
            .unwrap(),
        IdempotencyBegin::InProgress,
        "b's reservation is untouched"
    );
    // b renews and finishes; its answer is the one replayed.
    assert!(
        two.idempotency_renew(&b.hold(), LEASE, at(t0, 2500))
            .await
            .unwrap()
    );
    assert_eq!(
        one.idempotency_begin(c.clone(), at(t0, 3000))
            .await
            .unwrap(),
        IdempotencyBegin::InProgress,
        "renewed through t0 + 3.5 s"
    );
    assert!(
        two.idempotency_complete(&b.hold(), answer("b's"))
            .await
            .unwrap()
    );
    assert_eq!(
        one.idempotency_begin(c.clone(), at(t0, 3100))
            .await
            .unwrap(),
        IdempotencyBegin::Replay(answer("b's"))
    );

    // A late renewal of a completed key does not bring the reservation back, nor does a second
    // answer replace the first.
    assert!(
        !two.idempotency_renew(&b.hold(), LEASE, at(t0, 3200))
            .await
            .unwrap()
    );
    assert!(
        !two.idempotency_complete(&b.hold(), answer("again"))
            .await
            .unwrap()
    );
    assert!(!two.idempotency_release(&b.hold()).await.unwrap());
    assert_eq!(
        one.idempotency_begin(c.clone(), at(t0, 60_000))
            .await
            .unwrap(),
        IdempotencyBegin::Replay(answer("b's"))
    );

    // A released key is free at once, and its old holder cannot renew it back.
    let d = request(&shop.id, "k2", "holder-d");
    let e = request(&shop.id, "k2", "holder-e");
    assert_eq!(
        one.idempotency_begin(d.clone(), t0).await.unwrap(),
        IdempotencyBegin::Proceed
    );
    assert!(one.idempotency_release(&d.hold()).await.unwrap());
    assert!(
        !one.idempotency_renew(&d.hold(), LEASE, at(t0, 100))
            .await
            .unwrap()
    );
    assert_eq!(
        two.idempotency_begin(e.clone(), at(t0, 200)).await.unwrap(),
        IdempotencyBegin::Proceed
    );
    assert!(
        !one.idempotency_renew(&d.hold(), LEASE, at(t0, 300))
            .await
            .unwrap()
    );
    assert!(
        two.idempotency_renew(&e.hold(), LEASE, at(t0, 300))
            .await
            .unwrap()
    );

    // Keys are per store: the same key and token in another store is another reservation.
    let (other, _) = two.create_store("other").await.unwrap();
    let elsewhere = request(&other.id, "k2", "holder-e");
    assert!(
        !two.idempotency_renew(&elsewhere.hold(), LEASE, at(t0, 400))
            .await
            .unwrap()
    );
    assert_eq!(
        two.idempotency_begin(elsewhere, at(t0, 400)).await.unwrap(),
        IdempotencyBegin::Proceed
    );
}

/// A key reserved under one token, completed and then expired, can be reserved again: the
/// token of the old reservation does not reach the new one.
#[tokio::test]
async fn an_expired_key_starts_a_new_reservation_that_old_tokens_cannot_touch() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("expiry").await.unwrap();
    let t0 = Utc::now();
    let mut first = request(&shop.id, "k", "first");
    first.ttl = Duration::from_secs(60);
    assert_eq!(
        store.idempotency_begin(first.clone(), t0).await.unwrap(),
        IdempotencyBegin::Proceed
    );
    assert!(
        store
            .idempotency_complete(&first.hold(), answer("old"))
            .await
            .unwrap()
    );
    let later = request(&shop.id, "k", "second");
    assert_eq!(
        store
            .idempotency_begin(later.clone(), at(t0, 61_000))
            .await
            .unwrap(),
        IdempotencyBegin::Proceed,
        "an expired key counts as unused"
    );
    assert!(
        !store
            .idempotency_renew(&first.hold(), LEASE, at(t0, 61_100))
            .await
            .unwrap()
    );
    assert!(
        !store
            .idempotency_complete(&first.hold(), answer("stale"))
            .await
            .unwrap()
    );
    assert!(
        store
            .idempotency_renew(&later.hold(), LEASE, at(t0, 61_100))
            .await
            .unwrap()
    );
    assert!(
        store
            .idempotency_complete(&later.hold(), answer("new"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .idempotency_begin(request(&shop.id, "k", "third"), at(t0, 61_200))
            .await
            .unwrap(),
        IdempotencyBegin::Replay(answer("new"))
    );
}
