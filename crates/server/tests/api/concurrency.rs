use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

/// 50 simultaneous requests each fulfil 1 unit of a line ordered ×10: exactly 10 succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_single_units_against_ten() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant("shop").await;
    app.order(&t, "C-1", 10).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, t, barrier) = (app.clone(), t.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.post(
                &t,
                "/orders/C-1/fulfillments",
                json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
            )
            .await
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => {
                let message = assert_error(status, &body, StatusCode::BAD_REQUEST);
                assert!(message.contains("0 unit(s) left"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, refused), (10, 40));
    let (_, order) = app.get(&t, "/orders/C-1").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 10);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 10);
}
