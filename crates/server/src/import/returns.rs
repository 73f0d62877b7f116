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

use std::io::Read;
use std::sync::Arc;

use futures_util::stream::Stream;
use waybill_core::ledger::{KeyAllocationError, allocate_by_key};
use waybill_core::returns::ReturnFieldNames;
use waybill_core::{
    DomainError, NewReturn, NewReturnLine, OrderRef, Package, Quantity, ReturnReason,
};
use waybill_store::{Store, StoreError};

use super::{
    CARRIER_NAMES, Header, ImportError, ImportRequest, LineTarget, ORDER_NAMES, ParsedRow,
    QUANTITY_NAMES, ReportRow, RowError, RowResult, TRACKING_NAMES, cell, derived_id, execute_rows,
    read_rows,
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
    pub fn from_header(record: &csv::StringRecord) -> Result<Columns, ImportError> {
        let header = Header::new(record);
        let (line_item_id, sku) = header.line_or_sku()?;
        Ok(Columns {
            order: header.required("order id", ORDER_NAMES)?,
            line_item_id,
            sku,
            quantity: header.required("quantity", QUANTITY_NAMES)?,
            reason: header.required("reason", REASON_NAMES)?,
            carrier: header.find("carrier", CARRIER_NAMES)?,
            tracking_number: header.find("tracking number", TRACKING_NAMES)?,
            note: header.find("note", NOTE_NAMES)?,
        })
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

impl ImportRequest for ReturnRowRequest {
    fn order(&self) -> &str {
        &self.order
    }

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

    async fn run(
        &self,
        store: &dyn Store,
        store_id: &str,
        id: &str,
    ) -> Result<RowResult, RowError> {
        // A domain error is the row's fault (refused, with its reason); anything else the
        // database's or Waybill's.
        try_row(store, store_id, self, id)
            .await
            .map_err(RowError::from)
    }
}

/// One data row: its number (1 is the first after the header) and the request with the return
/// id it will get, or why it cannot be imported.
pub type ParsedReturnRow = ParsedRow<ReturnRowRequest>;

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

/// The return id of the `occurrence`-th (from 0) row with this content in a file imported into
/// `store_id`.
pub fn return_id(store_id: &str, request: &ReturnRowRequest, occurrence: u32) -> String {
    let canonical = request.canonical();
    derived_id(
        "imr_",
        b"waybill.import.returns",
        store_id,
        &canonical,
        occurrence,
    )
}

/// Reads a whole CSV file (with a header row) into numbered rows, deriving each good row's
/// return id (see [`super::read_rows`]).
pub fn parse(store_id: &str, input: impl Read) -> Result<Vec<ParsedReturnRow>, ImportError> {
    read_rows(
        input,
        Columns::from_header,
        parse_record,
        |request, occurrence| return_id(store_id, request, occurrence),
    )
}

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
    execute_rows(store, store_id, rows, concurrency)
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
            let units = waybill_store::LineUnits::of(&order);
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
