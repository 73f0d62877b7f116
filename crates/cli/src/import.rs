//! `waybill import fulfillments`: runs `waybill_server::import` over a file with a progress bar
//! and writes the per-row report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use waybill_server::import::{self, REPORT_HEADER, Summary};
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
}

fn default_report(file: &Path) -> PathBuf {
    file.with_extension("report.csv")
}

pub async fn run(store: Arc<dyn Store>, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Fulfillments {
        file,
        store: store_id,
        report,
        concurrency,
    } = command;
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !store.store_exists(&store_id).await? {
        bail!("store '{store_id}' was not found");
    }
    let report_path = report.unwrap_or_else(|| default_report(&file));
    let input =
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
    let rows = import::parse(&store_id, std::io::BufReader::new(input))
        .with_context(|| format!("reading {}", file.display()))?;
    let mut writer = csv::Writer::from_path(&report_path)
        .with_context(|| format!("creating the report {}", report_path.display()))?;
    writer
        .write_record(REPORT_HEADER)
        .context("writing the report")?;

    let progress = ProgressBar::with_draw_target(
        Some(rows.len() as u64),
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
    let mut results = std::pin::pin!(import::execute(store, store_id, rows, concurrency));
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
