//! Returns in the dashboard over plain HTTP: the order page's units and returns, the "Create
//! return" form refusing bad input with the API's message (nothing changed) and creating a
//! return as the API does (carrier detected), the return page's status form following the
//! lifecycle, the list's filters, search and paging, the CSV export (RFC 4180, formulas
//! defused), CSRF (403) and another store (404) on every route, nothing changed.

use reqwest::StatusCode;
use serde_json::json;
use waybill_core::ReturnStatus;
use waybill_store::ReturnQuery;

use crate::harness::{App, Seeded, TRACKING, csrf_in};

async fn returns_of(app: &App, seeded: &Seeded) -> Vec<waybill_core::Return> {
    app.store
        .list_returns(&seeded.store_id, ReturnQuery::default())
        .await
        .expect("list returns")
}

/// The new-return form's fields for line-1 (the one fulfilled line of the seed).
fn create_form<'a>(csrf: &'a str, quantity: &'a str, reason: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("line", "line-1"),
        ("quantity", quantity),
        ("reason", reason),
    ]
}

#[tokio::test]
async fn returns_through_the_dashboard_over_http() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;

    // The order page: units per line, no returns yet, a link to the form.
    let (code, html) = app.page(&session, "/ui/orders/1001").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("Returnable") && html.contains("No returns."),
        "{html}"
    );
    assert!(html.contains("id=\"new-return\""), "{html}");
    let (code, form) = app.page(&session, "/ui/orders/1001/returns/new").await;
    assert_eq!(code, StatusCode::OK);
    assert!(form.contains("up to 1 can come back"), "{form}");
    assert!(
        !form.contains("Mug"),
        "an unfulfilled line is not offered: {form}"
    );
    assert!(
        form.contains("<label for=\"quantity-1\">"),
        "labelled: {form}"
    );
    let csrf = csrf_in(&form).expect("csrf");
    let post = "/ui/orders/1001/returns";

    // Without the token: 403, nothing created.
    let (code, _, _) = app
        .post_form(&session, post, &create_form("", "1", "damaged"))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Bad input: the API's messages, the values kept, nothing created.
    let (code, _, html) = app
        .post_form(&session, post, &create_form(&csrf, "2", "damaged"))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(
        html.contains("line-1") && html.contains("value=\"2\""),
        "{html}"
    );
    let (code, _, html) = app
        .post_form(&session, post, &create_form(&csrf, "1", "lost"))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("&#x27;lost&#x27; is not a return reason")
            || html.contains("is not a return reason"),
        "{html}"
    );
    let (code, _, html) = app
        .post_form(&session, post, &create_form(&csrf, "one", "damaged"))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("must be a whole number"), "{html}");
    let (code, _, html) = app
        .post_form(&session, post, &create_form(&csrf, "0", "damaged"))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("must contain at least one line item"),
        "{html}"
    );
    let mut with_carrier_only = create_form(&csrf, "1", "damaged");
    with_carrier_only.push(("carrier", "UPS"));
    let (code, _, _) = app.post_form(&session, post, &with_carrier_only).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        returns_of(&app, &seeded).await.is_empty(),
        "nothing was created"
    );

    // A good form: created as the API would, the carrier detected from the number.
    let mut good = create_form(&csrf, "1", "too_small");
    good.push(("tracking_number", TRACKING));
    good.push(("note", "=HYPERLINK(\"x\"), \"quoted\""));
    let (code, location, _) = app.post_form(&session, post, &good).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let created = returns_of(&app, &seeded).await;
    assert_eq!(created.len(), 1);
    let r = &created[0];
    assert_eq!(location, format!("/ui/returns/{}?done=created", r.id));
    assert_eq!(r.status, ReturnStatus::Requested);
    assert_eq!(r.packages[0].carrier.as_deref(), Some("UPS"));
    assert!(r.packages[0].tracking_url.is_some());
    assert_eq!(r.lines[0].quantity, 1);
    // All of line-1's fulfilled unit is in a return now: a second is refused by the ledger.
    let (code, _, html) = app
        .post_form(&session, post, &create_form(&csrf, "1", "damaged"))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("Nothing on this order can be returned"),
        "{html}"
    );
    assert!(html.contains("role=\"alert\""), "{html}");
    assert_eq!(returns_of(&app, &seeded).await.len(), 1);

    // The return page: status, line, reason, parcel link, history; the form offers the
    // lifecycle's next steps only.
    let page_path = format!("/ui/returns/{}", r.id);
    let (code, html) = app.page(&session, &location).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("The return was created."), "{html}");
    assert!(
        html.contains("Too small") && html.contains("T-shirt"),
        "{html}"
    );
    assert!(html.contains("Track on UPS"), "{html}");
    assert!(html.contains("Return requested"), "{html}");
    assert!(
        html.contains("value=\"in_transit\"") && !html.contains("value=\"closed\""),
        "{html}"
    );
    let status_path = format!("{page_path}/status");
    let (code, _, _) = app
        .post_form(
            &session,
            &status_path,
            &[("csrf", "nope"), ("status", "in_transit")],
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _, html) = app
        .post_form(
            &session,
            &status_path,
            &[("csrf", &csrf), ("status", "closed")],
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("cannot become closed"), "{html}");
    let (code, _, html) = app
        .post_form(
            &session,
            &status_path,
            &[("csrf", &csrf), ("status", "lost")],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{html}");
    let now = app
        .store
        .get_return(&seeded.store_id, &r.id)
        .await
        .expect("return");
    assert_eq!(
        now.status,
        ReturnStatus::Requested,
        "refusals changed nothing"
    );
    assert_eq!(now.history.len(), 1);
    let (code, location, _) = app
        .post_form(
            &session,
            &status_path,
            &[
                ("csrf", &csrf),
                ("status", "in_transit"),
                ("message", "Dropped off"),
            ],
        )
        .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("{page_path}?done=status"));
    let now = app
        .store
        .get_return(&seeded.store_id, &r.id)
        .await
        .expect("return");
    assert_eq!(now.status, ReturnStatus::InTransit);
    let (_, html) = app.page(&session, "/ui/orders/1001").await;
    assert!(
        html.contains(&page_path) && html.contains("In transit"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"new-return\""),
        "nothing left to return: {html}"
    );

    // The list: filters and search.
    for (query, shown) in [
        ("", true),
        ("?status=in_transit", true),
        ("?status=closed", false),
        ("?q=1001", true),
        ("?q=999aa+1012", true),
        ("?q=nothing-like-it", false),
    ] {
        let (code, html) = app.page(&session, &format!("/ui/returns{query}")).await;
        assert_eq!(code, StatusCode::OK, "{query}");
        assert_eq!(html.contains(&page_path), shown, "{query}: {html}");
    }

    // The export: RFC 4180, the formula defused, filtered like the list.
    let csv = export(&app, &session, "/ui/returns.csv").await;
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some(
            "return_id,order_id,created_at,updated_at,status,shipment_status,line_item_id,sku,\
             quantity,reason,carrier,tracking_number,note"
        )
    );
    let row = lines.next().expect("a row");
    assert!(row.starts_with(&format!("{},1001,", r.id)), "{row}");
    assert!(
        row.contains(&format!(",in_transit,pre_transit,line-1,TEE-M,1,too_small,UPS,{TRACKING},\"'=HYPERLINK(\"\"x\"\"), \"\"quoted\"\"\"")),
        "{row}"
    );
    assert_eq!(lines.next(), Some(""));
    let none = export(&app, &session, "/ui/returns.csv?status=closed").await;
    assert_eq!(none.lines().count(), 1, "{none}");

    // Another store: 404 on every route, nothing changed, nothing listed.
    let (_, other_key) = app.store.create_store("Other shop").await.expect("store");
    let other = app.sign_in(&other_key.secret).await;
    let (_, other_page) = app.page(&other, "/ui/returns").await;
    let other_csrf = csrf_in(&other_page).expect("csrf");
    assert!(!other_page.contains(&page_path));
    for path in [page_path.clone(), "/ui/orders/1001/returns/new".to_owned()] {
        let (code, _) = app.page(&other, &path).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
    let (code, _, _) = app
        .post_form(
            &other,
            &status_path,
            &[("csrf", &other_csrf), ("status", "received")],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _, _) = app
        .post_form(&other, post, &create_form(&other_csrf, "1", "damaged"))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        !export(&app, &other, "/ui/returns.csv")
            .await
            .contains(&r.id)
    );
    let now = app
        .store
        .get_return(&seeded.store_id, &r.id)
        .await
        .expect("return");
    assert_eq!(now.status, ReturnStatus::InTransit);
    assert_eq!(returns_of(&app, &seeded).await.len(), 1);
}

async fn export(app: &App, session: &str, path: &str) -> String {
    let resp = app
        .client
        .get(app.url(path))
        .header(
            reqwest::header::COOKIE,
            format!("waybill_session={session}"),
        )
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8; header=present")
    );
    resp.text().await.expect("CSV")
}

#[tokio::test]
async fn the_list_pages_by_cursor_and_keeps_its_filters() {
    let app = App::spawn().await;
    let (record, key) = app.store.create_store("Paging shop").await.expect("store");
    let base = format!("/v2.2/stores/{}", record.id);
    app.api(
        &key.secret,
        &format!("{base}/orders"),
        json!({"orderId": "P-1", "createdAt": "2024-03-20T12:00:00Z",
               "lineItems": [{"id": "line-1", "productId": "p", "title": "Sock", "quantity": 30}]}),
    )
    .await;
    app.api(
        &key.secret,
        &format!("{base}/orders/P-1/fulfillments"),
        json!({"fulfillmentId": "f", "lineItems": [{"id": "line-1", "quantity": 30}],
               "tracking": {"carrier": "UPS", "code": TRACKING}}),
    )
    .await;
    for i in 0..27 {
        app.api(
            &key.secret,
            &format!("{base}/returns"),
            json!({"data": {"returnId": format!("R-{i:02}"), "externalOrderId": "P-1",
                   "items": [{"lineItemId": "line-1", "quantity": 1, "reason": "other"}]}}),
        )
        .await;
    }
    let session = app.sign_in(&key.secret).await;
    let (code, first) = app.page(&session, "/ui/returns?status=requested").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        first.matches("<tr>").count() - 1,
        25,
        "a header row and 25 returns"
    );
    assert!(first.contains("R-00") && first.contains("R-24") && !first.contains("R-25"));
    let next = "/ui/returns?status=requested&amp;after=R-24";
    assert!(first.contains(next), "{first}");
    let (code, second) = app
        .page(&session, "/ui/returns?status=requested&after=R-24")
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(second.contains("R-25") && second.contains("R-26") && !second.contains("R-24<"));
    assert!(!second.contains("rel=\"next\""), "the last page: {second}");
    assert!(second.contains("First page"), "{second}");
    // A cursor that names nothing starts over, filters kept.
    let resp = app
        .client
        .get(app.url("/ui/returns?status=requested&after=nope"))
        .header(
            reqwest::header::COOKIE,
            format!("waybill_session={session}"),
        )
        .send()
        .await
        .expect("page");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The export has every page.
    let csv = export(&app, &session, "/ui/returns.csv?status=requested").await;
    assert_eq!(csv.lines().count(), 28, "header + 27");
}

/// A returns CSV uploaded on the import page: imported once through `import::returns`, with
/// its report; the same file again creates nothing.
#[tokio::test]
async fn a_returns_csv_uploaded_in_the_dashboard_is_imported_once() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let (_, html) = app.page(&session, "/ui/import").await;
    assert!(html.contains("<label for=\"kind\">"), "{html}");
    let csrf = csrf_in(&html).expect("csrf");
    // line-1 has one fulfilled unit; the mug none.
    let csv = "order,sku,qty,reason,tracking_number\n\
               1001,TEE-M,1,Too small,1Z999AA10123456784\n\
               1001,MUG,1,damaged,\n";
    let boundary = "waybill-returns-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nreturns\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let post = || {
        app.client
            .post(app.url("/ui/import"))
            .header(
                reqwest::header::COOKIE,
                format!("waybill_session={session}"),
            )
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body.clone())
            .send()
    };
    let report = post().await.expect("upload").text().await.expect("page");
    assert!(
        report.contains("1 created, 0 already imported, 1 refused, of 2 rows"),
        "{report}"
    );
    assert!(report.contains("can be returned"), "{report}");
    let again = post().await.expect("upload").text().await.expect("page");
    assert!(
        again.contains("0 created, 1 already imported, 1 refused"),
        "{again}"
    );
    let returns = returns_of(&app, &seeded).await;
    assert_eq!(returns.len(), 1);
    assert!(returns[0].id.starts_with("imr_"));
    assert_eq!(returns[0].packages[0].carrier.as_deref(), Some("UPS"));
}
