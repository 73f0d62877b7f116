//! The PostgreSQL side of `waybill bench`: preparing a large number of orders quickly, and
//! waiting for the server's background work between measured phases.
//!
//! Through the store, preparation runs at a few hundred orders per second (each order and its
//! fulfillment are two write transactions), so a million orders would take more than an hour.
//! Here the store makes the first orders, and the rest are copies of one of them made in SQL,
//! set-based, a bounded chunk of orders per transaction. A copy takes every column of every row
//! the store wrote for the template order (read as JSON and written back with the ids
//! replaced), so nothing of the store's row layout is written down here; what this module has to
//! know is which tables hold an order's rows and which columns are ids (and that an outbox event
//! of a store without webhook subscriptions is as good as fanned out, see `copy_orders`). A
//! check before copying fails if a table it does not copy grew with the orders the store made
//! (the write path grew a table); after copying, the row counts, the last copy's events and (in
//! `bench.rs`) copies read through the store are checked against the template.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_postgres::{Client, NoTls};
use waybill_core::Order;

/// Orders copied per transaction: each chunk's statements take seconds, not minutes, and the
/// progress is printed between them.
const CHUNK: u64 = 100_000;

/// A fresh UUIDv7 as text (48-bit Unix milliseconds, version 7, then random bits): the shape of
/// the ids the store hands out, so copies sort after the orders made before them as store-made
/// ones do. Volatile: evaluated once per row.
const UUID_V7: &str = "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) \
     placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) \
     FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid::text";

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A connection to the bench's schema, outside the store's pool.
pub(crate) struct BenchSql {
    client: Client,
    schema: String,
    task: tokio::task::JoinHandle<()>,
    /// Set once the outbox backlog was seen not to go down.
    no_fan_out: AtomicBool,
}

/// How long an outbox backlog may stay the same before [`BenchSql::settle`] stops waiting.
const STALLED: Duration = Duration::from_secs(30);

impl Drop for BenchSql {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One table holding rows of an order, and how a copy's row differs from the template's.
struct CopiedTable {
    table: &'static str,
    /// Selects the template's rows (`src` is the table, the template's ids are bound).
    filter: String,
    /// `jsonb_build_object` arguments replacing id columns (`m` is the copy: `m.i`, `m.oid`,
    /// `m.fid`).
    overrides: String,
}

/// What the copies are made from: the order `B-{index}` as the store wrote it.
pub(crate) struct Template {
    pub index: u64,
    pub order: Order,
}

impl BenchSql {
    /// The connection, for other benches' own queries.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The bench's schema.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    pub(crate) async fn connect(server: &str, schema: &str) -> anyhow::Result<BenchSql> {
        let (client, connection) = tokio_postgres::connect(server, NoTls)
            .await
            .context("connecting to PostgreSQL for the bench")?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .context("selecting the bench schema")?;
        Ok(BenchSql {
            client,
            schema: schema.to_owned(),
            task,
            no_fan_out: AtomicBool::new(false),
        })
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let row = self
            .client
            .query_one(sql, &[])
            .await
            .with_context(|| format!("running {sql}"))?;
        Ok(row.get(0))
    }

    /// The base tables of the bench schema.
    async fn tables(&self) -> anyhow::Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
                &[&self.schema],
            )
            .await
            .context("listing the bench schema's tables")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The base tables of the bench schema with their row counts: taken before the store makes
    /// the orders, to pass to [`BenchSql::copy_orders`].
    pub(crate) async fn table_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let mut counts = Vec::new();
        for table in self.tables().await? {
            let n = self
                .count(&format!("SELECT count(*) FROM \"{table}\""))
                .await?;
            counts.push((table, n));
        }
        Ok(counts)
    }

    /// The columns a copy writes: all but identity and generated ones, which the table fills.
    async fn insertable_columns(&self, table: &str) -> anyhow::Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2
                   AND is_identity = 'NO' AND is_generated = 'NEVER'
                 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .await
            .with_context(|| format!("listing the columns of {table}"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The outbox events not yet fanned out (the server's dispatcher marks them).
    async fn fan_out_backlog(&self) -> anyhow::Result<i64> {
        self.count("SELECT count(*) FROM outbox WHERE NOT fanned_out")
            .await
    }

    /// Waits (at most `limit`) until the server has fanned out every outbox event, so that a
    /// measured phase does not share the database with the fan-out of the events written
    /// before it. Returns how many events it saw fanned out, and how long it waited. If the
    /// backlog stops going down (a server configured without its dispatcher), says so and stops
    /// waiting, then and for the rest of the run: no phase then has fan-out beside it.
    pub(crate) async fn settle(&self, limit: Duration) -> anyhow::Result<(i64, Duration)> {
        let started = Instant::now();
        if self.no_fan_out.load(Ordering::Relaxed) {
            return Ok((0, started.elapsed()));
        }
        let first = self.fan_out_backlog().await?;
        let (mut left, mut progress) = (first, Instant::now());
        while left > 0 {
            if started.elapsed() > limit {
                bail!(
                    "the server still had {left} outbox events to fan out after {:.0} s",
                    limit.as_secs_f64()
                );
            }
            if progress.elapsed() > STALLED {
                eprintln!(
                    "warning: {left} outbox events are not being fanned out (is the server's \
                     dispatcher off?); measuring without waiting for them"
                );
                self.no_fan_out.store(true, Ordering::Relaxed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.fan_out_backlog().await?;
            if now < left {
                progress = Instant::now();
            }
            left = now;
        }
        Ok((first - left, started.elapsed()))
    }

    /// Copies the template into orders `B-{from}` .. `B-{to - 1}`, each with its fulfillment
    /// `F-{i}`. `made` orders (`B-0` .. `B-{made - 1}`) were made by the store, the template
    /// among them: what they added to the tables since `before` (the [`BenchSql::table_counts`]
    /// before them) shows which tables hold an order's rows.
    pub(crate) async fn copy_orders(
        &mut self,
        store_id: &str,
        template: &Template,
        before: &[(String, i64)],
        made: u64,
        to: u64,
    ) -> anyhow::Result<()> {
        let t = template.index;
        let order = &template.order;
        let [fulfillment] = order.fulfillments.as_slice() else {
            bail!("the template order B-{t} has not exactly one fulfillment");
        };
        let (oid, fid) = (order.id.to_string(), fulfillment.id.clone());
        let (store, oid_lit, fid_lit) = (lit(store_id), lit(&oid), lit(&fid));
        // The server's dispatcher fans out every outbox event: for a store with no webhook
        // subscription (the bench's) that only marks it `fanned_out`, and a subscription made
        // later never gets events written before it. Copies are written marked, as the
        // dispatcher would leave them, rather than have the server mark two million rows (nearly
        // four minutes at a million orders, and as many dead rows for autovacuum) before the
        // first phase. With a subscription they are left for the dispatcher, which then has
        // deliveries to make. (Were the column renamed, jsonb_populate_record would ignore the
        // key and leave the events to the dispatcher, which the bench waits for.)
        let subscriptions = self
            .count("SELECT count(*) FROM webhook_subscriptions")
            .await?;
        let fanned_out = if subscriptions == 0 {
            ", 'fanned_out', true"
        } else {
            ""
        };
        let ext_json = lit(&format!("\"{}\"", order.external_id));
        let fid_json = lit(&format!("\"{fid}\""));
        let for_fulfillment = format!("src.store_id = {store} AND src.fulfillment_id = {fid_lit}");
        let tables = [
            // The order's row keeps the order as JSON (what reads return), ids included: the
            // same replacements inside it as in the events' data below.
            CopiedTable {
                table: "orders",
                filter: format!("src.id = {oid_lit}"),
                overrides: format!(
                    "'id', m.oid, 'external_id', 'B-' || m.i,
                     'snapshot', replace(replace(replace(src.snapshot::text, {oid_lit}, m.oid),
                                                 {ext_json}, '\"B-' || m.i || '\"'),
                                         {fid_json}, '\"F-' || m.i || '\"')::jsonb"
                ),
            },
            CopiedTable {
                table: "line_items",
                filter: format!("src.order_id = {oid_lit}"),
                overrides: "'order_id', m.oid".into(),
            },
            CopiedTable {
                table: "fulfillments",
                filter: format!("src.store_id = {store} AND src.id = {fid_lit}"),
                overrides: "'id', m.fid, 'order_id', m.oid".into(),
            },
            CopiedTable {
                table: "fulfillment_lines",
                filter: for_fulfillment.clone(),
                overrides: "'fulfillment_id', m.fid".into(),
            },
            CopiedTable {
                table: "packages",
                filter: for_fulfillment.clone(),
                overrides: "'fulfillment_id', m.fid".into(),
            },
            CopiedTable {
                table: "tracking_events",
                filter: for_fulfillment,
                overrides: "'fulfillment_id', m.fid".into(),
            },
            // An event's data is the order as the write left it, ids included: the same
            // replacements inside it, on its JSON text (each id is matched whole: the order's
            // UUID, and the external and fulfillment ids as quoted JSON strings).
            CopiedTable {
                table: "outbox",
                filter: format!("src.order_id = {oid_lit}"),
                overrides: format!(
                    "'event_id', {UUID_V7}, 'order_id', m.oid,
                     'fulfillment_id', CASE WHEN src.fulfillment_id IS NULL THEN NULL
                                            ELSE m.fid END,
                     'data', replace(replace(replace(src.data::text, {oid_lit}, m.oid),
                                             {ext_json}, '\"B-' || m.i || '\"'),
                                     {fid_json}, '\"F-' || m.i || '\"')::jsonb{fanned_out}"
                ),
            },
        ];

        // Every table that grew with the store's orders must be one copied here, with as many
        // rows for each of those orders as for the template.
        let per_template = {
            let mut v = Vec::new();
            for ct in &tables {
                let n = self
                    .count(&format!(
                        "SELECT count(*) FROM {} src WHERE {}",
                        ct.table, ct.filter
                    ))
                    .await?;
                v.push((ct.table, n));
            }
            v
        };
        let made_i = i64::try_from(made)?;
        for (table, rows) in self.table_counts().await? {
            let added = rows - count_in(before, &table);
            match per_template.iter().find(|(t, _)| *t == table) {
                Some((_, per)) if added != per * made_i => bail!(
                    "the store added {added} rows to {table} for {made} orders, but the \
                     template B-{t} has {per}: the orders differ, the copies would not match"
                ),
                None if added >= made_i => bail!(
                    "the store added {added} rows to {table} for {made} orders, and the bench \
                     does not copy that table: add it to bench_pg::copy_orders"
                ),
                _ => {}
            }
        }

        let mut statements = Vec::new();
        for ct in &tables {
            let columns = self.insertable_columns(ct.table).await?;
            if columns.is_empty() {
                bail!("no table {} in the bench schema", ct.table);
            }
            let list = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let values = columns
                .iter()
                .map(|c| format!("r.\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            statements.push(format!(
                "INSERT INTO {table} ({list})
                 SELECT {values}
                 FROM {table} src
                 CROSS JOIN bench_copies m
                 CROSS JOIN LATERAL jsonb_populate_record(
                     NULL::{table}, to_jsonb(src) || jsonb_build_object({overrides})) r
                 WHERE {filter}",
                table = ct.table,
                overrides = ct.overrides,
                filter = ct.filter,
            ));
        }

        let started = Instant::now();
        let mut from = made;
        while from < to {
            let end = (from + CHUNK).min(to);
            let tx = self
                .client
                .transaction()
                .await
                .context("starting a copy transaction")?;
            // The bench's data: nothing is lost if the machine fails before it is flushed.
            tx.batch_execute(&format!(
                "SET LOCAL synchronous_commit = off;
                 CREATE TEMP TABLE bench_copies (i BIGINT PRIMARY KEY, oid TEXT, fid TEXT)
                     ON COMMIT DROP;
                 INSERT INTO bench_copies
                     SELECT i, {UUID_V7}, 'F-' || i FROM generate_series({from}, {last}) i
                     ORDER BY i",
                last = end - 1,
            ))
            .await
            .context("numbering the copies")?;
            for (ct, sql) in tables.iter().zip(&statements) {
                tx.execute(sql.as_str(), &[])
                    .await
                    .with_context(|| format!("copying the template's rows of {}", ct.table))?;
            }
            tx.commit().await.context("committing copies")?;
            println!(
                "  copied orders B-{from} .. B-{} ({:.1} s so far)",
                end - 1,
                started.elapsed().as_secs_f64()
            );
            from = end;
        }

        // Every table now holds the template's rows once per order more than before.
        let total = i64::try_from(to)?;
        for (table, per) in per_template {
            let expected = count_in(before, table) + per * total;
            let rows = self.count(&format!("SELECT count(*) FROM {table}")).await?;
            if rows != expected {
                bail!("table {table} has {rows} rows after copying, not {expected}");
            }
        }
        // The last copy's events name the copy, never the template, wherever the template's
        // name it.
        let last = lit(&format!("B-{}", to - 1));
        let wrong = self
            .count(&format!(
                "SELECT count(*) FROM outbox e JOIN orders c ON c.id = e.order_id
                 JOIN outbox t ON t.order_id = {oid_lit} AND t.seq = e.seq
                 WHERE c.store_id = {store} AND c.external_id = {last}
                   AND (strpos(e.data::text, {oid_lit}) > 0
                        OR strpos(e.data::text, {ext_json}) > 0
                        OR strpos(e.data::text, {fid_json}) > 0
                        OR (strpos(t.data::text, {oid_lit}) > 0) <> (strpos(e.data::text, c.id) > 0))"
            ))
            .await?;
        if wrong > 0 {
            bail!("{wrong} outbox event(s) of the copy {last} still name the template B-{t}");
        }
        // The planner's statistics for the tables as they now are, and the vacuum that
        // autovacuum would otherwise start on the inserted rows during the first measured
        // phases (store-made orders would have been vacuumed while they were being made). This
        // schema's tables only: a bare VACUUM would go through every schema of the database.
        let analyzed = Instant::now();
        for table in self.tables().await? {
            self.client
                .batch_execute(&format!("VACUUM (ANALYZE) \"{table}\""))
                .await
                .with_context(|| format!("vacuuming and analyzing {table}"))?;
        }
        println!(
            "  vacuumed and analyzed the bench schema in {:.1} s",
            analyzed.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// A table's row count in a [`BenchSql::table_counts`] (0 if the table was not there).
fn count_in(counts: &[(String, i64)], table: &str) -> i64 {
    counts
        .iter()
        .find_map(|(t, n)| (t == table).then_some(*n))
        .unwrap_or(0)
}

/// Whether `copy`, read through the store, is the template with the copy's ids: its own order
/// id, external id `B-{i}` and fulfillment id `F-{i}`. Everything else (lines, ledger, status,
/// timestamps, history) must be equal.
pub(crate) fn check_copy(template: &Template, i: u64, copy: &Order) -> anyhow::Result<()> {
    let mut expected = template.order.clone();
    expected.id = copy.id;
    expected.external_id = format!("B-{i}");
    for f in &mut expected.fulfillments {
        f.id = format!("F-{i}");
        f.order_id = copy.id;
    }
    if copy.id == template.order.id {
        bail!("the copy B-{i} has the template's order id");
    }
    if *copy != expected {
        bail!(
            "the copy B-{i} differs from the template B-{} beyond its ids:\n\
             expected {expected:?}\n\
             read     {copy:?}",
            template.index
        );
    }
    Ok(())
}
