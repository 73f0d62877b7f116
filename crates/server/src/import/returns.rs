//! Bulk import of returns from CSV (`waybill import returns`, and the dashboard's import page):
//! one return per good row, through the core's checks ([`NewReturn::new`],
//! [`waybill_core::returns::check_returnable`] in the store) and [`Store::create_return`], so
//! each one raises its `return.created` event as the API's would.
//!
//! Columns: order id, line item id or SKU, quantity, reason (Waybill's vocabulary: `damaged`,
//! `wrong_item`, …; `Wrong item` and `wrong-item` are read the same), and optionally carrier,
//! tracking number and note. A SKU names the order's lines with that SKU that still have units
//! to return, filled in order. Each return's id is derived from the store, the row's
//! normalised content and how many identical rows came before it, so importing the same file
//! again reports every row it created as a duplicate instead of returning the units twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use uuid::Uuid;
use waybill_core::ledger::{KeyAllocationError, allocate_by_key};
use waybill_core::returns::ReturnFieldNames;
use waybill_core::{
    DomainError, NewReturn, NewReturnLine, OrderRef, Package, Quantity, ReturnReason,
};
use waybill_store::{Store, StoreError};

use super::{
    CARRIER_NAMES, ImportError, LINE_NAMES, LineTarget, ORDER_NAMES, QUANTITY_NAMES, ReportRow,
    RowResult, SKU_NAMES, TRACKING_NAMES, cell, normalise_header,
};

const REASON_NAMES: &[&str] = &["reason", "return_reason", "reason_code"];
const NOTE_NAMES: &[&str] = &["note", "notes", "comment", "customer_comment"];

/// The report's CSV header: as the fulfillments import's, with the return's id.
pub const REPORT_HEADER: [&str; 4] = ["row", "result", "return_id", "error"];

const NAMES: ReturnFieldNames<'static> = ReturnFieldNames {
    id: "return id",
    lines: "lines",
    line_id: "line item id",
    note: "note",
};

/// The columns found in the header, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub order: usize,
    pub line_item_id: Option<usize>,
    pub sku: Option<usize>,
    pub quantity: usize,
    pub reason: usize,
    pub carrier: Option<usize>,
    pub tracking_number: Option<usize>,
    pub note: Option<usize>,
}

impl Columns {
    /// Maps a header row onto the columns; unknown columns are ignored.
    pub fn from_header(header: &csv::StringRecord) -> Result<Columns, ImportError> {
        let names: Vec<String> = header.iter().map(normalise_header).collect();
        let find = |column: &str, accepted: &[&str]| -> Result<Option<usize>, ImportError> {
            let found: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| accepted.contains(&n.as_str()))
                .map(|(i, _)| i)
                .collect();
            match found.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(*one)),
                _ => Err(ImportError::Header(format!(
                    "has more than one {column} column"
                ))),
            }
        };
        let required = |column: &str, accepted: &[&str]| -> Result<usize, ImportError> {
            find(column, accepted)?.ok_or_else(|| {
                ImportError::Header(format!(
                    "has no {column} column (accepted names: {})",
                    accepted.join(", ")
                ))
            })
        };
        let columns = Columns {
            order: required("order id", ORDER_NAMES)?,
            line_item_id: find("line item id", LINE_NAMES)?,
            sku: find("SKU", SKU_NAMES)?,
            quantity: required("quantity", QUANTITY_NAMES)?,
            reason: required("reason", REASON_NAMES)?,
            carrier: find("carrier", CARRIER_NAMES)?,
            tracking_number: find("tracking number", TRACKING_NAMES)?,
            note: find("note", NOTE_NAMES)?,
        };
        if columns.line_item_id.is_none() && columns.sku.is_none() {
            return Err(ImportError::Header(format!(
                "has neither a line item id column ({}) nor a SKU column ({})",
                LINE_NAMES.join(", "),
                SKU_NAMES.join(", ")
            )));
        }
        Ok(columns)
    }
}

/// A row that parsed: one return request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnRowRequest {
    pub order: String,
    pub line: LineTarget,
    pub quantity: Quantity,
    pub reason: ReturnReason,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub note: Option<String>,
}

impl ReturnRowRequest {
    fn canonical(&self) -> String {
        let line = match &self.line {
            LineTarget::Id(id) => format!("id:{id}"),
            LineTarget::Sku(sku) => format!("sku:{sku}"),
        };
        [
            self.order.as_str(),
            line.as_str(),
            &self.quantity.get().to_string(),
            self.reason.as_str(),
            self.carrier.as_deref().unwrap_or(""),
            self.tracking_number.as_deref().unwrap_or(""),
            self.note.as_deref().unwrap_or(""),
        ]
        .join("\u{1f}")
    }
}

/// One data row: its number (1 is the first after the header) and the request with the return
/// id it will get, or why it cannot be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReturnRow {
    pub row: u64,
    pub request: Result<(ReturnRowRequest, String), String>,
}

/// A reason as people write it: `Wrong item`, `wrong-item` and `WRONG_ITEM` are `wrong_item`.
fn parse_reason(text: &str) -> Result<ReturnReason, String> {
    let normalised: String = text
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    normalised.parse().map_err(|e: DomainError| e.to_string())
}

fn parse_record(columns: &Columns, record: &csv::StringRecord) -> Result<ReturnRowRequest, String> {
    let order = cell(record, Some(columns.order)).ok_or("the order id is empty")?;
    let line = match (
        cell(record, columns.line_item_id),
        cell(record, columns.sku),
    ) {
        (Some(id), _) => LineTarget::Id(id.to_owned()),
        (None, Some(sku)) => LineTarget::Sku(sku.to_owned()),
        (None, None) => return Err("neither a line item id nor a SKU is given".into()),
    };
    let quantity = cell(record, Some(columns.quantity)).ok_or("the quantity is empty")?;
    let quantity: i64 = quantity
        .parse()
        .map_err(|_| format!("the quantity '{quantity}' is not a whole number"))?;
    let quantity = Quantity::new("quantity", quantity).map_err(|e| e.to_string())?;
    let reason = parse_reason(cell(record, Some(columns.reason)).ok_or("the reason is empty")?)?;
    let carrier = cell(record, columns.carrier).map(str::to_owned);
    let tracking_number = cell(record, columns.tracking_number).map(str::to_owned);
    if carrier.is_some() && tracking_number.is_none() {
        return Err("a carrier is given without a tracking number".into());
    }
    Ok(ReturnRowRequest {
        order: order.to_owned(),
        line,
        quantity,
        reason,
        carrier,
        tracking_number,
        note: cell(record, columns.note).map(str::to_owned),
    })
}

fn id_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"waybill.import.returns")
}

/// The return id of the `occurrence`-th (from 0) row with this content in a file imported into
/// `store_id`.
pub fn return_id(store_id: &str, request: &ReturnRowRequest, occurrence: u32) -> String {
    let name = format!("{store_id}\u{1e}{}\u{1e}{occurrence}", request.canonical());
    format!(
        "imr_{}",
        Uuid::new_v5(&id_namespace(), name.as_bytes()).simple()
    )
}

/// Reads a whole CSV file (with a header row) into numbered rows, deriving each good row's
/// return id. A row with the wrong number of fields is reported, not fatal.
pub fn parse(store_id: &str, input: impl Read) -> Result<Vec<ParsedReturnRow>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(input);
    let columns = Columns::from_header(reader.headers()?)?;
    let width = reader.headers()?.len();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index as u64 + 1;
        let request = match record {
            Err(e) => Err(format!("the row cannot be read as CSV: {e}")),
            Ok(record) if record.iter().all(|f| f.trim().is_empty()) => {
                Err("the row is empty".into())
            }
            Ok(record) if record.len() > width => Err(format!(
                "the row has {} fields; the header has {width}",
                record.len()
            )),
            Ok(record) => parse_record(&columns, &record).map(|request| {
                let occurrence = seen.entry(request.canonical()).or_insert(0);
                let id = return_id(store_id, &request, *occurrence);
                *occurrence += 1;
                (request, id)
            }),
        };
        rows.push(ParsedReturnRow { row, request });
    }
    Ok(rows)
}

const ATTEMPTS: u32 = 4;

/// Runs the rows against `store_id`, up to `concurrency` at once, yielding one report row per
/// input row in input order (the report's id column holds the return's id). Rows of the same
/// order run one after another, in file order, so a row resolved by SKU sees what the rows
/// before it returned.
pub fn execute(
    store: Arc<dyn Store>,
    store_id: String,
    rows: Vec<ParsedReturnRow>,
    concurrency: usize,
) -> impl Stream<Item = ReportRow> {
    let store_id: Arc<str> = store_id.into();
    let mut last_of_order: HashMap<String, tokio::sync::oneshot::Receiver<()>> = HashMap::new();
    stream::iter(rows)
        .map(move |parsed| {
            let (done, after) = match &parsed.request {
                Ok((request, _)) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let previous = last_of_order.insert(request.order.clone(), rx);
                    (Some(tx), previous)
                }
                Err(_) => (None, None),
            };
            let (store, store_id) = (store.clone(), store_id.clone());
            async move {
                if let Some(previous) = after {
                    let _ = previous.await;
                }
                let report = run_row(store.as_ref(), &store_id, parsed).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                report
            }
        })
        .buffered(concurrency.max(1))
}

fn error_row(row: u64, message: impl Into<String>) -> ReportRow {
    ReportRow {
        row,
        result: RowResult::Error,
        fulfillment_id: None,
        error: Some(message.into()),
    }
}

async fn run_row(store: &dyn Store, store_id: &str, parsed: ParsedReturnRow) -> ReportRow {
    let row = parsed.row;
    let (request, id) = match parsed.request {
        Ok(ok) => ok,
        Err(message) => return error_row(row, message),
    };
    let mut attempt = 1;
    loop {
        match try_row(store, store_id, &request, &id).await {
            Ok(result) => {
                return ReportRow {
                    row,
                    result,
                    fulfillment_id: Some(id),
                    error: None,
                };
            }
            Err(StoreError::Domain(e)) => return error_row(row, e.to_string()),
            Err(StoreError::Unavailable(detail)) if attempt < ATTEMPTS => {
                tracing::debug!(row, attempt, %detail, "database unavailable; retrying the row");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::warn!(row, error = %e, "a returns import row failed in the store");
                let message = match e {
                    StoreError::Unavailable(_) => {
                        "the database was unavailable; run the import again"
                    }
                    _ => "an internal error occurred; the log has the details",
                };
                return error_row(row, message);
            }
        }
    }
}

async fn try_row(
    store: &dyn Store,
    store_id: &str,
    request: &ReturnRowRequest,
    id: &str,
) -> Result<RowResult, StoreError> {
    // An earlier import of this row: look first, as the store checks the units before the id.
    match store.get_return(store_id, id).await {
        Ok(_) => return Ok(RowResult::Duplicate),
        Err(StoreError::Domain(DomainError::ReturnNotFound(_))) => {}
        Err(e) => return Err(e),
    }
    let order_ref = OrderRef::new(request.order.clone());
    let order = store.get_order(store_id, &order_ref).await?;
    let lines = match &request.line {
        LineTarget::Id(line) => vec![(line.clone(), request.quantity)],
        LineTarget::Sku(sku) => {
            let units = store
                .order_units(store_id, &OrderRef::new(order.id.to_string()))
                .await?;
            let returnable = |line_id: &str| {
                units
                    .iter()
                    .find(|u| u.line_item_id == line_id)
                    .map(|u| u.fulfilled.saturating_sub(u.returned))
                    .unwrap_or(0)
            };
            allocate_by_key(
                order
                    .line_items
                    .iter()
                    .map(|l| (l.id.as_str(), l.sku.as_deref(), returnable(&l.id))),
                &[(sku.clone(), request.quantity.get())],
            )
            .map_err(|e| {
                StoreError::Domain(DomainError::invalid(match e {
                    KeyAllocationError::UnknownKey { key } => {
                        format!("SKU '{key}' is not on order '{}'", request.order)
                    }
                    KeyAllocationError::TooMany {
                        key,
                        fulfillable,
                        requested,
                    } => format!(
                        "SKU '{key}' has {fulfillable} unit(s) that can be returned; {requested} requested"
                    ),
                    KeyAllocationError::Invalid(d) => d.to_string(),
                }))
            })?
        }
    };
    let packages = request
        .tracking_number
        .as_ref()
        .map(|number| Package {
            carrier: request.carrier.clone(),
            tracking_number: number.clone(),
            tracking_url: None,
        })
        .into_iter()
        .collect();
    let mut new = NewReturn::new(
        Some(id.to_owned()),
        lines
            .into_iter()
            .map(|(line_item_id, quantity)| NewReturnLine {
                line_item_id,
                quantity,
                reason: request.reason,
                note: None,
            })
            .collect(),
        packages,
        request.note.clone(),
        NAMES,
    )?;
    crate::carriers::normalize_packages(&mut new.packages);
    match store
        .create_return(store_id, &OrderRef::new(order.id.to_string()), new)
        .await
    {
        Ok(_) => Ok(RowResult::Created),
        Err(StoreError::Domain(DomainError::DuplicateReturn(_))) => Ok(RowResult::Duplicate),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_reasons_and_identical_rows_get_distinct_ids() {
        let csv = "Order ID,SKU,Qty,Reason,Carrier,Tracking Number,Notes\n\
                   A,S1,1,Wrong item,UPS,1Z1,too big\n\
                   A,S1,1,wrong-item,UPS,1Z1,too big\n\
                   A,S1,1,lost,,,\n\
                   A,S1,1,damaged,UPS,,\n\
                   A,,1,damaged,,,\n";
        let rows = parse("store-1", csv.as_bytes()).unwrap();
        let (first, id1) = rows[0].request.clone().unwrap();
        let (_, id2) = rows[1].request.clone().unwrap();
        assert_eq!(first.reason, ReturnReason::WrongItem);
        assert_eq!(first.tracking_number.as_deref(), Some("1Z1"));
        assert_ne!(id1, id2);
        assert_eq!(id1, return_id("store-1", &first, 0));
        assert_ne!(id1, return_id("store-2", &first, 0));
        let errors: Vec<String> = rows[2..]
            .iter()
            .map(|r| r.request.clone().unwrap_err())
            .collect();
        assert!(errors[0].contains("not a return reason"), "{errors:?}");
        assert!(
            errors[1].contains("without a tracking number"),
            "{errors:?}"
        );
        assert!(errors[2].contains("neither a line item id"), "{errors:?}");
    }

    #[test]
    fn headers_need_a_reason_and_a_line() {
        let header = |f: &[&str]| csv::StringRecord::from(f.to_vec());
        let e = Columns::from_header(&header(&["order", "sku", "qty"])).unwrap_err();
        assert!(e.to_string().contains("no reason column"), "{e}");
        let e = Columns::from_header(&header(&["order", "qty", "reason"])).unwrap_err();
        assert!(e.to_string().contains("neither a line item id"), "{e}");
        let c = Columns::from_header(&header(&["order", "line_item_id", "qty", "reason"])).unwrap();
        assert_eq!((c.tracking_number, c.carrier, c.note), (None, None, None));
    }
}
