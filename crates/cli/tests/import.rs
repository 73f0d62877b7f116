//! `waybill import fulfillments` on a 10,000-row file with 5 % bad rows of six kinds: every row
//! gets the right result in the report, the ledger holds exactly the good rows' units, and a
//! second run of the same file creates nothing and reports every earlier success as duplicate.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use waybill_core::order::LineItemExtra;
use waybill_core::{NewLineItem, NewOrder, OrderDetails, OrderRef, Quantity, time};
use waybill_store::Store;
use waybill_store::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_waybill");
const ORDERS: usize = 400;
const ROWS: usize = 10_000;
const ORDERED_PER_LINE: u32 = 40;

/// One generated CSV row, and what the import must make of it.
#[derive(Clone)]
struct Row {
    order: String,
    line_id: String,
    sku: String,
    qty: String,
    carrier: String,
    tracking: String,
    /// `None` for a good row; else a fragment of the expected error.
    error: Option<&'static str>,
}

fn line_item(id: &str, sku: &str) -> NewLineItem {
    NewLineItem {
        id: id.into(),
        product_id: None,
        variant_id: None,
        sku: Some(sku.into()),
        title: format!("Item {id}"),
        quantity: Quantity::new("quantity", i64::from(ORDERED_PER_LINE)).unwrap(),
        price: None,
        extra: LineItemExtra::default(),
    }
}

fn generate() -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::with_capacity(ROWS);
    for r in 1..=ROWS {
        let order = format!("IMP-{}", r % ORDERS);
        let by_sku = r % 3 == 0;
        let mut row = Row {
            order,
            line_id: if by_sku { String::new() } else { "a".into() },
            sku: if by_sku {
                "SKU-B".into()
            } else {
                String::new()
            },
            qty: (1 + r % 2).to_string(),
            carrier: if r % 2 == 0 {
                "UPS".into()
            } else {
                String::new()
            },
            tracking: format!("1Z{r:08}"),
            error: None,
        };
        if r % 20 == 0 {
            match (r / 20) % 6 {
                0 => {
                    row.order = format!("NOPE-{r}");
                    row.error = Some("was not found");
                }
                1 => {
                    row.line_id.clear();
                    row.sku = "SKU-UNKNOWN".into();
                    row.error = Some("is not on order");
                }
                2 => {
                    // More than was ever ordered, so over whatever remains.
                    row.qty = (ORDERED_PER_LINE + 1).to_string();
                    row.error = Some("left to fulfill");
                }
                3 => {
                    row.qty = "0".into();
                    row.error = Some("between 1 and 1000");
                }
                4 => {
                    row.qty = "two".into();
                    row.error = Some("not a whole number");
                }
                _ => {
                    row.tracking.clear();
                    row.error = Some("tracking number is empty");
                }
            }
        } else if r % 97 == 1
            && let Some(previous) = rows.last().filter(|p| p.error.is_none())
        {
            // Identical content to the row before: a second, separate fulfillment.
            row = previous.clone();
        }
        rows.push(row);
    }
    rows
}

fn write_csv(path: &Path, rows: &[Row]) {
    let mut out = String::from("Order ID,Line Item ID,SKU,Qty,Courier,Tracking Number\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.order, r.line_id, r.sku, r.qty, r.carrier, r.tracking
        ));
    }
    std::fs::write(path, out).unwrap();
}

/// Units the good rows fulfill, per (order, line).
fn expected_units(rows: &[Row]) -> HashMap<(String, &'static str), u32> {
    let mut units = HashMap::new();
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let line = if r.line_id == "a" { "a" } else { "b" };
        *units.entry((r.order.clone(), line)).or_insert(0) += r.qty.parse::<u32>().unwrap();
    }
    assert!(
        units.values().all(|u| *u <= ORDERED_PER_LINE),
        "the generator must not over-fulfill with good rows"
    );
    units
}

fn import(db: &str, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["import", "fulfillments"])
        .args(args)
        .env("WAYBILL_DATABASE_URL", db)
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run import");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON summary line")
}

/// The report's rows: (row, result, fulfillment id, error).
fn read_report(path: &Path) -> Vec<[String; 4]> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["row", "result", "fulfillment_id", "error"]
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            [0, 1, 2, 3].map(|i| r.get(i).unwrap_or_default().to_owned())
        })
        .collect()
}

async fn ledger(store: &Arc<dyn Store>, store_id: &str) -> (HashMap<(String, String), u32>, usize) {
    let mut units = HashMap::new();
    let mut fulfillments = 0;
    for o in 0..ORDERS {
        let order = store
            .get_order(store_id, &OrderRef::new(format!("IMP-{o}")))
            .await
            .unwrap();
        fulfillments += order.fulfillments.len();
        for line in &order.line_items {
            units.insert((order.external_id.clone(), line.id.clone()), line.fulfilled);
        }
    }
    (units, fulfillments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_ten_thousand_rows_twice_reports_every_row_and_creates_nothing_twice() {
    let db = TestDatabase::new().await.expect("test database");
    let store = db.open().await.unwrap();
    let (shop, _) = store.create_store("Importer").await.unwrap();
    for o in 0..ORDERS {
        let order = NewOrder::new(
            format!("IMP-{o}"),
            time::now(),
            vec![line_item("a", "SKU-A"), line_item("b", "SKU-B")],
            OrderDetails::default(),
        )
        .unwrap();
        store.create_order(&shop.id, order).await.unwrap();
    }
    let rows = generate();
    let bad = rows.iter().filter(|r| r.error.is_some()).count();
    assert_eq!(bad, ROWS / 20);
    let expected = expected_units(&rows);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shipments.csv");
    write_csv(&file, &rows);
    let report = dir.path().join("first.csv");
    let file_arg = file.to_str().unwrap();
    let summary = import(
        &db.url,
        &[
            file_arg,
            "--store",
            &shop.id,
            "--report",
            report.to_str().unwrap(),
        ],
    );
    eprintln!("first import: {summary}");
    assert_eq!(summary["rows"], ROWS);
    assert_eq!(summary["created"], ROWS - bad);
    assert_eq!(summary["duplicate"], 0);
    assert_eq!(summary["error"], bad);

    let first = read_report(&report);
    assert_eq!(first.len(), ROWS);
    let mut ids = HashSet::new();
    for (i, (line, row)) in first.iter().zip(&rows).enumerate() {
        assert_eq!(line[0], (i + 1).to_string(), "the report is in row order");
        match row.error {
            None => {
                assert_eq!(line[1], "created", "row {}: {line:?}", i + 1);
                assert!(
                    ids.insert(line[2].clone()),
                    "fulfillment id reused: {line:?}"
                );
            }
            Some(fragment) => {
                assert_eq!(line[1], "error", "row {}: {line:?}", i + 1);
                assert!(
                    line[3].contains(fragment),
                    "row {}: {line:?} lacks {fragment:?}",
                    i + 1
                );
                assert!(line[2].is_empty());
            }
        }
    }

    let (units, fulfillments) = ledger(&store, &shop.id).await;
    assert_eq!(fulfillments, ROWS - bad);
    for o in 0..ORDERS {
        for line in ["a", "b"] {
            let order = format!("IMP-{o}");
            let want = expected.get(&(order.clone(), line)).copied().unwrap_or(0);
            assert_eq!(
                units[&(order.clone(), line.to_owned())],
                want,
                "{order}/{line}"
            );
        }
    }

    // Again, with the report at its default place: nothing new, every success a duplicate.
    let summary = import(&db.url, &[file_arg, "--store", &shop.id]);
    eprintln!("second import: {summary}");
    assert_eq!(summary["created"], 0);
    assert_eq!(summary["duplicate"], ROWS - bad);
    assert_eq!(summary["error"], bad);
    let second = read_report(&dir.path().join("shipments.report.csv"));
    assert_eq!(second.len(), ROWS);
    for (before, after) in first.iter().zip(&second) {
        match before[1].as_str() {
            "created" => {
                assert_eq!(after[1], "duplicate", "{after:?}");
                assert_eq!(after[2], before[2], "the same fulfillment is named");
            }
            _ => assert_eq!(after[1], "error", "{after:?}"),
        }
    }
    let (units_again, fulfillments_again) = ledger(&store, &shop.id).await;
    assert_eq!(fulfillments_again, fulfillments);
    assert_eq!(units_again, units, "the ledger did not move");
}

#[test]
fn a_file_without_the_needed_columns_is_refused_before_any_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let created = Command::new(BIN)
        .args(["stores", "create", "--name", "S"])
        .env("WAYBILL_DATABASE_URL", &db)
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "order,qty,tracking\nA,1,T\n").unwrap();
    let out = Command::new(BIN)
        .args(["import", "fulfillments", file.to_str().unwrap(), "--store"])
        .arg(created["storeId"].as_str().unwrap())
        .env("WAYBILL_DATABASE_URL", &db)
        .env("WAYBILL_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("neither a line item id column"), "{stderr}");
    assert!(!dir.path().join("x.report.csv").exists());
}

// ---- returns ----

const RETURN_ORDERS: usize = 20;

/// `waybill import returns` on a file with good rows (by line id and by SKU, with and without a
/// parcel) and bad rows of six kinds: every row gets its result, the returned units are
/// exactly the good rows', carrier detection ran, and a second run creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_returns_twice_reports_every_row_and_returns_nothing_twice() {
    use waybill_core::{NewFulfillment, Package, ShipmentStatus};
    let db = TestDatabase::new().await.expect("test database");
    let store = db.open().await.unwrap();
    let (shop, _) = store.create_store("Returns importer").await.unwrap();
    for o in 0..RETURN_ORDERS {
        let order = NewOrder::new(
            format!("RET-{o}"),
            time::now(),
            vec![line_item("a", "SKU-A"), line_item("b", "SKU-B")],
            OrderDetails::default(),
        )
        .unwrap();
        store.create_order(&shop.id, order).await.unwrap();
        let q = |n| Quantity::new("quantity", n).unwrap();
        let fulfillment = NewFulfillment::new(
            Some(format!("f-{o}")),
            vec![("a".into(), q(10)), ("b".into(), q(6))],
            vec![Package {
                carrier: Some("UPS".into()),
                tracking_number: format!("1Z{o:08}"),
                tracking_url: None,
            }],
            ShipmentStatus::Delivered,
        )
        .unwrap();
        store
            .create_fulfillment(&shop.id, &OrderRef::new(format!("RET-{o}")), fulfillment)
            .await
            .unwrap();
    }
    // Per order: 3 units of a by id (2 + 1, the second with a detected UPS parcel), 2 of b by
    // SKU; then one bad row of each kind on some orders.
    let mut csv =
        String::from("Order ID,Line Item ID,SKU,Qty,Reason,Carrier,Tracking Number,Notes\n");
    let mut expected: Vec<Option<&str>> = Vec::new();
    for o in 0..RETURN_ORDERS {
        csv.push_str(&format!("RET-{o},a,,2,damaged,,,\n"));
        csv.push_str(&format!(
            "RET-{o},a,,1,Wrong item,,1Z999AA10123456784,\"comma, note\"\n"
        ));
        csv.push_str(&format!("RET-{o},,SKU-B,2,too-small,,,\n"));
        expected.extend([None, None, None]);
        let (row, error): (String, &str) = match o % 6 {
            0 => (format!("NOPE-{o},a,,1,damaged,,,\n"), "was not found"),
            1 => (format!("RET-{o},,SKU-X,1,damaged,,,\n"), "is not on order"),
            // b: 6 fulfilled, 2 returned above: 5 more is too many.
            2 => (format!("RET-{o},,SKU-B,5,damaged,,,\n"), "can be returned"),
            3 => (format!("RET-{o},b,,5,damaged,,,\n"), "returned"),
            4 => (format!("RET-{o},a,,1,lost,,,\n"), "not a return reason"),
            _ => (
                format!("RET-{o},a,,1,damaged,UPS,,\n"),
                "without a tracking number",
            ),
        };
        csv.push_str(&row);
        expected.push(Some(error));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("returns.csv");
    std::fs::write(&file, csv).unwrap();
    let run = || {
        let out = Command::new(BIN)
            .args([
                "import",
                "returns",
                file.to_str().unwrap(),
                "--store",
                &shop.id,
            ])
            .env("WAYBILL_DATABASE_URL", &db.url)
            .env("WAYBILL_LOG", "warn")
            .output()
            .expect("run import");
        assert!(out.status.success(), "{out:?}");
        let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
        let mut reader = csv::Reader::from_path(dir.path().join("returns.report.csv")).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["row", "result", "return_id", "error"]
        );
        let rows: Vec<[String; 4]> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                [0, 1, 2, 3].map(|i| r.get(i).unwrap_or_default().to_owned())
            })
            .collect();
        (summary, rows)
    };
    let good = expected.iter().filter(|e| e.is_none()).count();
    let (summary, first) = run();
    assert_eq!(summary["rows"], expected.len());
    assert_eq!(summary["created"], good, "{summary}");
    assert_eq!(summary["error"], expected.len() - good, "{summary}");
    for (line, want) in first.iter().zip(&expected) {
        match want {
            None => assert_eq!(line[1], "created", "{line:?}"),
            Some(fragment) => {
                assert_eq!(line[1], "error", "{line:?}");
                assert!(line[3].contains(fragment), "{line:?} lacks {fragment}");
            }
        }
    }
    let units = |store: Arc<dyn Store>, shop: String| async move {
        let mut all = Vec::new();
        for o in 0..RETURN_ORDERS {
            let order = store
                .get_order(&shop, &OrderRef::new(format!("RET-{o}")))
                .await
                .unwrap();
            let units = waybill_store::LineUnits::of(&order);
            all.push(units.iter().map(|u| u.returned).collect::<Vec<_>>());
        }
        all
    };
    let returned = units(store.clone(), shop.id.clone()).await;
    assert!(returned.iter().all(|r| r == &vec![3, 2]), "{returned:?}");
    let parcel = store
        .list_returns(&shop.id, waybill_store::ReturnQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| !r.packages.is_empty())
        .expect("a return with a parcel");
    assert_eq!(
        parcel.packages[0].carrier.as_deref(),
        Some("UPS"),
        "detected"
    );
    assert_eq!(parcel.note.as_deref(), Some("comma, note"));

    let (summary, second) = run();
    assert_eq!(summary["created"], 0, "{summary}");
    assert_eq!(summary["duplicate"], good, "{summary}");
    for (before, after) in first.iter().zip(&second) {
        if before[1] == "created" {
            assert_eq!((after[1].as_str(), &after[2]), ("duplicate", &before[2]));
        }
    }
    assert_eq!(units(store.clone(), shop.id.clone()).await, returned);
}
