//! `waybill import fulfillments` and `waybill import returns`: run `waybill_server::import` (or
//! `import::returns`) over a file with a progress bar and write the per-row report.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use waybill_server::import::{self, REPORT_HEADER, ReportRow, Summary};
use waybill_store::Store;

#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// Create fulfillments from a CSV file (order id, line item id or SKU, quantity, carrier,
    /// tracking number), one per row. Bad rows are reported, not fatal; importing the same
    /// file again creates nothing twice.
    Fulfillments {
        /// The CSV file, with a header row.
        file: PathBuf,
        /// The store the orders belong to.
        #[arg(long)]
        store: String,
        /// Where to write the per-row report [default: FILE with `.report.csv` for its
        /// extension]
        #[arg(long, value_name = "REPORT.csv")]
        report: Option<PathBuf>,
        /// Rows in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Create returns from a CSV file (order id, line item id or SKU, quantity, reason, and
    /// optionally carrier, tracking number and note), one per row. Bad rows are reported, not
    /// fatal; importing the same file again creates nothing twice.
    Returns {
        /// The CSV file, with a header row.
        file: PathBuf,
        /// The store the orders belong to.
        #[arg(long)]
        store: String,
        /// Where to write the per-row report [default: FILE with `.report.csv` for its
        /// extension]
        #[arg(long, value_name = "REPORT.csv")]
        report: Option<PathBuf>,
        /// Rows in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

fn default_report(file: &Path) -> PathBuf {
    file.with_extension("report.csv")
}

pub async fn run(store: Arc<dyn Store>, command: ImportCommand) -> anyhow::Result<()> {
    let (returns, file, store_id, report, concurrency) = match command {
        ImportCommand::Fulfillments {
            file,
            store,
            report,
            concurrency,
        } => (false, file, store, report, concurrency),
        ImportCommand::Returns {
            file,
            store,
            report,
            concurrency,
        } => (true, file, store, report, concurrency),
    };
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !store.store_exists(&store_id).await? {
        bail!("store '{store_id}' was not found");
    }
    let report_path = report.unwrap_or_else(|| default_report(&file));
    let input =
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
    let input = std::io::BufReader::new(input);
    let reading = || format!("reading {}", file.display());
    type Results = Pin<Box<dyn Stream<Item = ReportRow> + Send>>;
    let (count, results, header): (usize, Results, [&str; 4]) = if returns {
        let rows = import::returns::parse(&store_id, input).with_context(reading)?;
        let count = rows.len();
        let results = import::returns::execute(store, store_id, rows, concurrency);
        (count, Box::pin(results), import::returns::REPORT_HEADER)
    } else {
        let rows = import::parse(&store_id, input).with_context(reading)?;
        let count = rows.len();
        let results = import::execute(store, store_id, rows, concurrency);
        (count, Box::pin(results), REPORT_HEADER)
    };
    let mut writer = csv::Writer::from_path(&report_path)
        .with_context(|| format!("creating the report {}", report_path.display()))?;
    writer.write_record(header).context("writing the report")?;

    let progress = ProgressBar::with_draw_target(
        Some(count as u64),
        // Drawn only when stderr is a terminal (and TERM is not `dumb`); hidden otherwise.
        ProgressDrawTarget::stderr(),
    );
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}")
            .context("the progress bar template")?,
    );
    // Log lines are written around the bar, not through it.
    let shown = crate::logging::show_progress(&progress);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut results = results;
    while let Some(row) = results.next().await {
        summary.add(&row);
        writer
            .write_record(row.record())
            .context("writing the report")?;
        progress.inc(1);
        if row.result == import::RowResult::Error {
            progress.set_message(format!("{} error(s)", summary.error));
        }
    }
    progress.finish_and_clear();
    drop(shown);
    writer.flush().context("writing the report")?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "rows": summary.rows,
            "created": summary.created,
            "duplicate": summary.duplicate,
            "error": summary.error,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "rowsPerSecond": if seconds > 0.0 { (summary.rows as f64 / seconds).round() } else { 0.0 },
            "report": report_path.display().to_string(),
        })
    );
    tracing::info!(
        rows = summary.rows,
        created = summary.created,
        duplicate = summary.duplicate,
        error = summary.error,
        "import finished"
    );
    Ok(())
}
