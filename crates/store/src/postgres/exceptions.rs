//! Exceptions on PostgreSQL (the SQL is shared: `crate::exceptions`).

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use waybill_core::time;

use super::{PgResult, map_err};
use crate::StoreError;
use crate::exceptions::{self, Arg, ExceptionKind, ExceptionQuery, ExceptionRow};

pub(super) type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// A placeholder binder for PostgreSQL: `$n`, numbered after what `args` already holds.
pub(super) fn binder(args: &mut Args) -> impl FnMut(Arg) -> String + '_ {
    move |arg| {
        match arg {
            Arg::Text(s) => args.push(Box::new(s)),
            Arg::Int(n) => args.push(Box::new(n)),
        }
        format!("${}", args.len())
    }
}

fn params(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect()
}

pub(super) async fn list_exceptions(
    tx: &Transaction<'_>,
    store_id: &str,
    query: &ExceptionQuery,
) -> PgResult<Vec<ExceptionRow>> {
    let mut args: Args = Vec::new();
    let sql = exceptions::list_sql(store_id, query, &mut binder(&mut args));
    let rows = tx
        .query(&sql, &params(&args))
        .await
        .map_err(|e| map_err("listing exceptions", e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kind_text: String = r.get(0);
        let kind = ExceptionKind::parse(&kind_text)
            .ok_or_else(|| StoreError::internal("reading an exception", &kind_text))?;
        let eta: Option<String> = r.get(6);
        let reason: Option<String> = r.get(10);
        out.push(ExceptionRow {
            reason: reason
                .as_deref()
                .map(super::orders::parse_reason)
                .transpose()?,
            kind,
            order_id: r.get(1),
            order_external_id: r.get(2),
            customer_email: r.get(3),
            fulfillment_id: r.get(4),
            status: r.get(5),
            estimated_delivery: eta
                .as_deref()
                .and_then(|d| time::parse_date_or_datetime("eta", d).ok()),
            since: time::from_millis(r.get(7)),
            carrier: r.get(8),
            tracking_number: r.get(9),
        });
    }
    Ok(out)
}

pub(super) async fn count_exceptions(
    tx: &Transaction<'_>,
    store_id: &str,
    query: &ExceptionQuery,
) -> PgResult<Vec<(ExceptionKind, u64)>> {
    let mut args: Args = Vec::new();
    let sql = exceptions::count_sql(store_id, query, &mut binder(&mut args));
    let found: Vec<(String, i64)> = tx
        .query(&sql, &params(&args))
        .await
        .map_err(|e| map_err("counting exceptions", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let selected = query.selected();
    Ok(exceptions::counts_in_order(found)
        .into_iter()
        .filter(|(k, _)| selected.contains(k))
        .collect())
}
