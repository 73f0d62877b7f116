//! Bulk import of fulfillments from CSV: header mapping, row parsing, per-row execution through
//! the core, and the per-row report. The `waybill import fulfillments` command drives it with a
//! progress bar and files; a dashboard upload could drive it the same way.
//!
//! Each good row becomes one [`Store::create_fulfillment`] with an id derived from the store, the
//! row's normalised content and how many identical rows came before it in the file. Importing
//! the same file again therefore finds every fulfillment it created and reports the row as
//! [`RowResult::Duplicate`] instead of creating it twice.
//!
//! [`returns`] imports returns the same way (`waybill import returns`).

pub mod returns;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use uuid::Uuid;
use waybill_core::ledger::{KeyAllocationError, allocate_by_key};
use waybill_core::{DomainError, NewFulfillment, OrderRef, Package, Quantity, ShipmentStatus};
use waybill_store::{Store, StoreError};

/// Why a whole file cannot be imported (as opposed to one bad row, which is reported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV header {0}")]
    Header(String),
    #[error("reading the CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// The columns found in the header, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub order: usize,
    pub line_item_id: Option<usize>,
    pub sku: Option<usize>,
    pub quantity: usize,
    pub carrier: Option<usize>,
    pub tracking_number: usize,
}

/// Header names accepted for each column, compared after trimming, lower-casing and turning
/// `-` and spaces into `_`.
const ORDER_NAMES: &[&str] = &[
    "order_id",
    "order",
    "order_number",
    "order_no",
    "order_name",
];
const LINE_NAMES: &[&str] = &["line_item_id", "line_id", "line_item", "line"];
const SKU_NAMES: &[&str] = &["sku", "variant_sku", "line_item_sku"];
const QUANTITY_NAMES: &[&str] = &["quantity", "qty", "units"];
const CARRIER_NAMES: &[&str] = &["carrier", "courier", "shipping_carrier", "tracking_company"];
const TRACKING_NAMES: &[&str] = &[
    "tracking_number",
    "tracking",
    "tracking_code",
    "tracking_no",
    "tracking_id",
];

fn normalise_header(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// A header row's names, normalised, for finding the columns an import reads.
struct Header<'a> {
    record: &'a csv::StringRecord,
    names: Vec<String>,
}

impl<'a> Header<'a> {
    fn new(record: &'a csv::StringRecord) -> Header<'a> {
        Header {
            record,
            names: record.iter().map(normalise_header).collect(),
        }
    }

    /// The one column named by any of `accepted`, if there is one; two are an error.
    fn find(&self, column: &str, accepted: &[&str]) -> Result<Option<usize>, ImportError> {
        let found: Vec<usize> = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| accepted.contains(&n.as_str()))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(ImportError::Header(format!(
                "has more than one {column} column ({})",
                found
                    .iter()
                    .map(|i| format!("'{}'", self.record.get(*i).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The column named by any of `accepted`, which must be there.
    fn required(&self, column: &str, accepted: &[&str]) -> Result<usize, ImportError> {
        self.find(column, accepted)?.ok_or_else(|| {
            ImportError::Header(format!(
                "has no {column} column (accepted names: {})",
                accepted.join(", ")
            ))
        })
    }

    /// The line item id and SKU columns, at least one of which names each row's line.
    fn line_or_sku(&self) -> Result<(Option<usize>, Option<usize>), ImportError> {
        let line = self.find("line item id", LINE_NAMES)?;
        let sku = self.find("SKU", SKU_NAMES)?;
        if line.is_none() && sku.is_none() {
            return Err(ImportError::Header(format!(
                "has neither a line item id column ({}) nor a SKU column ({})",
                LINE_NAMES.join(", "),
                SKU_NAMES.join(", ")
            )));
        }
        Ok((line, sku))
    }
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
            carrier: header.find("carrier", CARRIER_NAMES)?,
            tracking_number: header.required("tracking number", TRACKING_NAMES)?,
        })
    }
}

/// How a row names the line to fulfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineTarget {
    Id(String),
    Sku(String),
}

/// A row that parsed: one fulfillment request.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRequest {
    pub order: String,
    pub line: LineTarget,
    pub quantity: Quantity,
    pub carrier: Option<String>,
    pub tracking_number: String,
}

impl ImportRequest for RowRequest {
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
            self.carrier.as_deref().unwrap_or(""),
            self.tracking_number.as_str(),
        ]
        .join("\u{1f}")
    }

    async fn run(
        &self,
        store: &dyn Store,
        store_id: &str,
        id: &str,
    ) -> Result<RowResult, RowError> {
        try_row(store, store_id, self, id).await
    }
}

/// One data row of a file: its number (1 is the first row after the header) and either the
/// request it makes, with the id of what it will create, or why it cannot be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow<R = RowRequest> {
    pub row: u64,
    pub request: Result<(R, String), String>,
}

/// What the import machinery shared by fulfillments and returns needs of one kind of row.
pub(crate) trait ImportRequest: Send + Sync + 'static {
    /// The order the row names: rows of one order run one after another, in file order.
    fn order(&self) -> &str;
    /// The row's content in one canonical string: what makes two rows "the same row".
    fn canonical(&self) -> String;
    /// Creates what the row describes under `id`, or finds it there from an earlier import.
    fn run(
        &self,
        store: &dyn Store,
        store_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<RowResult, RowError>> + Send;
}

/// Reads a whole CSV file (with a header row) into numbered rows: `columns` maps the header,
/// `parse_record` reads each row, and `id_of` derives a good row's id from its content and how
/// many identical rows came before it. A row with the wrong number of fields is reported, not
/// fatal.
fn read_rows<C, R: ImportRequest>(
    input: impl Read,
    columns: impl FnOnce(&csv::StringRecord) -> Result<C, ImportError>,
    parse_record: impl Fn(&C, &csv::StringRecord) -> Result<R, String>,
    id_of: impl Fn(&R, u32) -> String,
) -> Result<Vec<ParsedRow<R>>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(input);
    let columns = columns(reader.headers()?)?;
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
                let id = id_of(&request, *occurrence);
                *occurrence += 1;
                (request, id)
            }),
        };
        rows.push(ParsedRow { row, request });
    }
    Ok(rows)
}

fn cell(record: &csv::StringRecord, column: Option<usize>) -> Option<&str> {
    column
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_record(columns: &Columns, record: &csv::StringRecord) -> Result<RowRequest, String> {
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
    let tracking_number = cell(record, Some(columns.tracking_number))
        .ok_or("the tracking number is empty")?
        .to_owned();
    Ok(RowRequest {
        order: order.to_owned(),
        line,
        quantity,
        carrier: cell(record, columns.carrier).map(str::to_owned),
        tracking_number,
    })
}

/// The id of the `occurrence`-th (from 0) row with this canonical content in a file imported
/// into `store_id`: `prefix` and a UUIDv5 in the namespace `kind` names, so the same file
/// imported again derives the same ids.
fn derived_id(
    prefix: &str,
    kind: &[u8],
    store_id: &str,
    canonical: &str,
    occurrence: u32,
) -> String {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_OID, kind);
    let name = format!("{store_id}\u{1e}{canonical}\u{1e}{occurrence}");
    format!(
        "{prefix}{}",
        Uuid::new_v5(&namespace, name.as_bytes()).simple()
    )
}

/// The fulfillment id of the `occurrence`-th (from 0) row with this content in a file imported
/// into `store_id`.
pub fn fulfillment_id(store_id: &str, request: &RowRequest, occurrence: u32) -> String {
    let canonical = request.canonical();
    derived_id(
        "imp_",
        b"waybill.import.fulfillments",
        store_id,
        &canonical,
        occurrence,
    )
}

/// Reads a whole CSV file (with a header row) into rows, numbering them and deriving each good
/// row's fulfillment id (see [`read_rows`]).
pub fn parse(store_id: &str, input: impl Read) -> Result<Vec<ParsedRow>, ImportError> {
    read_rows(
        input,
        Columns::from_header,
        parse_record,
        |request, occurrence| fulfillment_id(store_id, request, occurrence),
    )
}

/// What became of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowResult {
    Created,
    Duplicate,
    Error,
}

impl RowResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RowResult::Created => "created",
            RowResult::Duplicate => "duplicate",
            RowResult::Error => "error",
        }
    }
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub row: u64,
    pub result: RowResult,
    /// The fulfillment created, or found from an earlier import.
    pub fulfillment_id: Option<String>,
    pub error: Option<String>,
}

impl ReportRow {
    fn error(row: u64, message: impl Into<String>) -> ReportRow {
        ReportRow {
            row,
            result: RowResult::Error,
            fulfillment_id: None,
            error: Some(message.into()),
        }
    }
}

/// The report's CSV header, matching [`ReportRow::record`].
pub const REPORT_HEADER: [&str; 4] = ["row", "result", "fulfillment_id", "error"];

impl ReportRow {
    /// The row as report CSV fields.
    pub fn record(&self) -> [String; 4] {
        [
            self.row.to_string(),
            self.result.as_str().to_owned(),
            self.fulfillment_id.clone().unwrap_or_default(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// Counts of a finished import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub created: u64,
    pub duplicate: u64,
    pub error: u64,
}

impl Summary {
    pub fn add(&mut self, row: &ReportRow) {
        self.rows += 1;
        match row.result {
            RowResult::Created => self.created += 1,
            RowResult::Duplicate => self.duplicate += 1,
            RowResult::Error => self.error += 1,
        }
    }
}

/// How many times a row is tried while the database reports itself unavailable.
const ATTEMPTS: u32 = 4;

/// Runs the rows against `store_id`, up to `concurrency` at once, and yields one report row per
/// input row, in input order. Rows of the same order run one after another, in file order, so a
/// row resolved by SKU sees what the rows before it fulfilled.
pub fn execute(
    store: Arc<dyn Store>,
    store_id: String,
    rows: Vec<ParsedRow>,
    concurrency: usize,
) -> impl Stream<Item = ReportRow> {
    execute_rows(store, store_id, rows, concurrency)
}

/// [`execute`] for any kind of row.
fn execute_rows<R: ImportRequest>(
    store: Arc<dyn Store>,
    store_id: String,
    rows: Vec<ParsedRow<R>>,
    concurrency: usize,
) -> impl Stream<Item = ReportRow> {
    let store_id: Arc<str> = store_id.into();
    let mut last_of_order: HashMap<String, tokio::sync::oneshot::Receiver<()>> = HashMap::new();
    stream::iter(rows)
        .map(move |parsed| {
            let (done, after) = match &parsed.request {
                Ok((request, _)) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let previous = last_of_order.insert(request.order().to_owned(), rx);
                    (Some(tx), previous)
                }
                Err(_) => (None, None),
            };
            let (store, store_id) = (store.clone(), store_id.clone());
            async move {
                if let Some(previous) = after {
                    // An error only means the earlier row's future is gone; either way it ran.
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

/// One row, tried again while the database reports itself unavailable.
async fn run_row<R: ImportRequest>(
    store: &dyn Store,
    store_id: &str,
    parsed: ParsedRow<R>,
) -> ReportRow {
    let row = parsed.row;
    let (request, id) = match parsed.request {
        Ok(ok) => ok,
        Err(message) => return ReportRow::error(row, message),
    };
    let mut attempt = 1;
    loop {
        match request.run(store, store_id, &id).await {
            Ok(result) => {
                return ReportRow {
                    row,
                    result,
                    fulfillment_id: Some(id),
                    error: None,
                };
            }
            Err(RowError::Refused(message)) => return ReportRow::error(row, message),
            Err(RowError::Store(StoreError::Unavailable(detail))) if attempt < ATTEMPTS => {
                tracing::debug!(row, attempt, %detail, "database unavailable; retrying the row");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
            Err(RowError::Store(e)) => {
                tracing::warn!(row, error = %e, "an import row failed in the store");
                let message = match e {
                    StoreError::Unavailable(_) => {
                        "the database was unavailable; run the import again"
                    }
                    _ => "an internal error occurred; the log has the details",
                };
                return ReportRow::error(row, message);
            }
        }
    }
}

/// Why a row was not imported.
pub(crate) enum RowError {
    /// The row breaks a rule: reported with its reason.
    Refused(String),
    /// A fault of the database or of Waybill: logged, reported in general terms.
    Store(StoreError),
}

impl From<StoreError> for RowError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => RowError::Refused(d.to_string()),
            other => RowError::Store(other),
        }
    }
}

async fn try_row(
    store: &dyn Store,
    store_id: &str,
    request: &RowRequest,
    id: &str,
) -> Result<RowResult, RowError> {
    let order_ref = OrderRef::new(request.order.clone());
    let order = store.get_order(store_id, &order_ref).await?;
    // An earlier import of this row: the store checks the ledger before the id, so look first
    // (a re-run must not be refused as over-fulfilling the units it fulfilled itself).
    if order.fulfillments.iter().any(|f| f.id == id) {
        return Ok(RowResult::Duplicate);
    }
    let lines = match &request.line {
        LineTarget::Id(line) => vec![(line.clone(), request.quantity)],
        LineTarget::Sku(sku) => allocate_by_key(
            order
                .line_items
                .iter()
                .map(|l| (l.id.as_str(), l.sku.as_deref(), l.remaining())),
            &[(sku.clone(), request.quantity.get())],
        )
        .map_err(|e| {
            RowError::Refused(match e {
                KeyAllocationError::UnknownKey { key } => {
                    format!("SKU '{key}' is not on order '{}'", request.order)
                }
                KeyAllocationError::TooMany {
                    key,
                    fulfillable,
                    requested,
                } => format!(
                    "SKU '{key}' has {fulfillable} unit(s) left to fulfill; {requested} requested"
                ),
                KeyAllocationError::Invalid(d) => d.to_string(),
            })
        })?,
    };
    let package = Package {
        carrier: request.carrier.clone(),
        tracking_number: request.tracking_number.clone(),
        tracking_url: None,
    };
    let fulfillment = NewFulfillment::new(
        Some(id.to_owned()),
        lines,
        vec![package],
        ShipmentStatus::PreTransit,
    )
    .map_err(|e| RowError::Refused(e.to_string()))?;
    match store
        .create_fulfillment(
            store_id,
            &order_ref,
            crate::carriers::normalize(fulfillment),
        )
        .await
    {
        Ok(_) => Ok(RowResult::Created),
        Err(StoreError::Domain(DomainError::DuplicateFulfillment(_))) => Ok(RowResult::Duplicate),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn header_variants_map_case_insensitively() {
        let c = Columns::from_header(&header(&[
            "Order ID",
            "SKU",
            "Qty",
            "Shipping Carrier",
            "Tracking Number",
            "notes",
        ]))
        .unwrap();
        assert_eq!(
            c,
            Columns {
                order: 0,
                line_item_id: None,
                sku: Some(1),
                quantity: 2,
                carrier: Some(3),
                tracking_number: 4
            }
        );
        let c = Columns::from_header(&header(&[
            "\u{feff}order_number",
            "line_id",
            "quantity",
            "tracking_code",
        ]))
        .unwrap();
        assert_eq!((c.order, c.line_item_id, c.carrier), (0, Some(1), None));
    }

    #[test]
    fn headers_missing_or_ambiguous_columns_are_refused() {
        let e = Columns::from_header(&header(&["order", "sku", "qty"])).unwrap_err();
        assert!(e.to_string().contains("no tracking number column"), "{e}");
        let e = Columns::from_header(&header(&["order", "qty", "tracking"])).unwrap_err();
        assert!(e.to_string().contains("neither a line item id"), "{e}");
        let e = Columns::from_header(&header(&["order", "Order ID", "sku", "qty", "tracking"]))
            .unwrap_err();
        assert!(e.to_string().contains("more than one order id"), "{e}");
    }

    #[test]
    fn rows_parse_with_reasons_and_identical_rows_get_distinct_ids() {
        let csv = "order,sku,qty,carrier,tracking\n\
                   A,S1,2,UPS,T1\n\
                   A,S1,2,UPS,T1\n\
                   A,S1,0,UPS,T2\n\
                   A,S1,x,UPS,T3\n\
                   A,S1,1,UPS,\n\
                   ,S1,1,UPS,T4\n";
        let rows = parse("store-1", csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 6);
        let (first, id1) = rows[0].request.clone().unwrap();
        let (_, id2) = rows[1].request.clone().unwrap();
        assert_eq!(first.line, LineTarget::Sku("S1".into()));
        assert_ne!(id1, id2, "identical rows are distinct fulfillments");
        assert_eq!(id1, fulfillment_id("store-1", &first, 0));
        assert_ne!(id1, fulfillment_id("store-2", &first, 0));
        let errors: Vec<String> = rows[2..]
            .iter()
            .map(|r| r.request.clone().unwrap_err())
            .collect();
        assert!(errors[0].contains("between 1 and 1000"), "{errors:?}");
        assert!(errors[1].contains("not a whole number"), "{errors:?}");
        assert!(errors[2].contains("tracking number is empty"), "{errors:?}");
        assert!(errors[3].contains("order id is empty"), "{errors:?}");
        assert_eq!(rows[5].row, 6);
    }
}
