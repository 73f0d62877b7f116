//! Exceptions on SQLite (the SQL is shared: `crate::exceptions`).

use rusqlite::Connection;
use rusqlite::types::Value;
use waybill_core::time;

use super::map_err;
use crate::exceptions::{self, Arg, ExceptionKind, ExceptionQuery, ExceptionRow};
use crate::{StoreError, StoreResult};

/// A placeholder binder for SQLite: plain `?`, values in order of appearance.
pub(super) fn binder(args: &mut Vec<Value>) -> impl FnMut(Arg) -> String + '_ {
    move |arg| {
        args.push(match arg {
            Arg::Text(s) => s.into(),
            Arg::Int(n) => n.into(),
        });
        "?".to_owned()
    }
}

pub(super) fn list_exceptions(
    conn: &Connection,
    store_id: &str,
    query: &ExceptionQuery,
) -> StoreResult<Vec<ExceptionRow>> {
    let mut args = Vec::new();
    let sql = exceptions::list_sql(store_id, query, &mut binder(&mut args));
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| map_err("preparing the exceptions list", e))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| map_err("listing exceptions", e))?;
    rows.into_iter()
        .map(|r| {
            let kind = ExceptionKind::parse(&r.0)
                .ok_or_else(|| StoreError::internal("reading an exception", &r.0))?;
            Ok(ExceptionRow {
                reason: r
                    .10
                    .as_deref()
                    .map(super::orders::parse_reason)
                    .transpose()?,
                kind,
                order_id: r.1,
                order_external_id: r.2,
                customer_email: r.3,
                fulfillment_id: r.4,
                status: r.5,
                estimated_delivery: r
                    .6
                    .as_deref()
                    .and_then(|d| time::parse_date_or_datetime("eta", d).ok()),
                since: time::from_millis(r.7),
                carrier: r.8,
                tracking_number: r.9,
            })
        })
        .collect()
}

pub(super) fn count_exceptions(
    conn: &Connection,
    store_id: &str,
    query: &ExceptionQuery,
) -> StoreResult<Vec<(ExceptionKind, u64)>> {
    let mut args = Vec::new();
    let sql = exceptions::count_sql(store_id, query, &mut binder(&mut args));
    let found = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("counting exceptions", e))?;
    let selected = query.selected();
    Ok(exceptions::counts_in_order(found)
        .into_iter()
        .filter(|(k, _)| selected.contains(k))
        .collect())
}
