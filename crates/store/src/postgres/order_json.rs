//! An order as JSON, built by PostgreSQL from its rows in one expression.
//!
//! The JSON has the shape `serde` gives [`waybill_core::Order`] (snake_case fields, instants as
//! RFC 3339 UTC text with milliseconds), so the same expression serves two purposes:
//!
//! - an outbox event's snapshot of its order ([`crate::events::EventData::order`]) is written by
//!   the statement that writes the event, from the rows the change has written, instead of being
//!   loaded into the process, encoded and sent back; the same statement keeps it on the order's
//!   row (`orders.snapshot`), which reads by external id return;
//! - reading an order that has none, by internal id, or a page of a listing, is one statement,
//!   answered in one round trip and decoded by `serde_json` without a transaction (one
//!   statement sees one snapshot).
//!
//! `each_event_holds_the_order_as_its_write_left_it` (PostgreSQL's unit tests) checks, on an
//! order with every kind of field and child row, that each write's event snapshot is what a read
//! then finds and what the write answered; crates/store/tests/read_order.rs checks the order of
//! every list.

use std::sync::LazyLock;

/// `ms`, an SQL expression of milliseconds since the epoch, as `YYYY-MM-DDTHH:MM:SS.mmmZ` (what
/// `chrono` reads back as the same instant); `NULL` stays `NULL`. Adding an interval to the
/// epoch is exact: timestamps are whole microseconds.
pub(super) fn instant(ms: &str) -> String {
    format!(
        "to_char(TIMESTAMP 'epoch' + ({ms}) * INTERVAL '1 millisecond', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    )
}

/// The JSON flavour built: `json` (text, cheapest to send) or `jsonb` (to store).
#[derive(Clone, Copy)]
pub(super) enum Flavour {
    Json,
    Jsonb,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Json => "json",
            Flavour::Jsonb => "jsonb",
        }
    }
}

/// The fulfillment in the row `f` (of `fulfillments`), with its packages, lines (and their line
/// items' details) and chronological history, each child found on its table's key.
pub(super) fn fulfillment(flavour: Flavour, f: &str) -> String {
    let j = flavour.name();
    format!(
        "{j}_build_object(
            'id', {f}.id, 'order_id', {f}.order_id,
            'created_at', {created}, 'updated_at', {updated},
            'status', {f}.status, 'status_label', {f}.status_label,
            'estimated_delivery', left({f}.estimated_delivery, 10),
            'delivered_at', {delivered},
            'packages', COALESCE((
                SELECT {j}_agg({j}_build_object('carrier', p.carrier,
                                                 'tracking_number', p.tracking_number,
                                                 'tracking_url', p.tracking_url)
                               ORDER BY p.position)
                FROM packages p WHERE p.store_id = {f}.store_id AND p.fulfillment_id = {f}.id),
                '[]'::{j}),
            'lines', COALESCE((
                SELECT {j}_agg({j}_build_object('line_item_id', l.line_item_id,
                                                 'quantity', l.quantity,
                                                 'title', COALESCE(li.title, ''),
                                                 'product_id', li.product_id,
                                                 'variant_id', li.variant_id, 'sku', li.sku)
                               ORDER BY l.position)
                FROM fulfillment_lines l
                LEFT JOIN line_items li ON li.order_id = {f}.order_id AND li.id = l.line_item_id
                WHERE l.store_id = {f}.store_id AND l.fulfillment_id = {f}.id),
                '[]'::{j}),
            'history', COALESCE((
                SELECT {j}_agg({j}_build_object('status', e.status, 'message', e.message,
                                                 'datetime', {happened}, 'location', e.location,
                                                 'reason', e.reason)
                               ORDER BY e.happened_at, e.id)
                FROM tracking_events e
                WHERE e.store_id = {f}.store_id AND e.fulfillment_id = {f}.id),
                '[]'::{j}))",
        created = instant(&format!("{f}.created_at")),
        updated = instant(&format!("{f}.updated_at")),
        delivered = instant(&format!("{f}.delivered_at")),
        happened = instant("e.happened_at"),
    )
}

/// The order in the row `o` (of `orders`), with its line items and fulfillments.
/// `updated_at` is an SQL expression of milliseconds for the order's `updated_at` (a statement
/// that also writes the order's row reads it as it was before).
pub(super) fn order(flavour: Flavour, o: &str, updated_at: &str) -> String {
    let j = flavour.name();
    format!(
        "{j}_build_object(
            'id', {o}.id, 'store_id', {o}.store_id, 'external_id', {o}.external_id,
            'created_at', {created}, 'updated_at', {updated}, 'details', {o}.details,
            'line_items', {line_items},
            'fulfillments', COALESCE((
                SELECT {j}_agg({fulfillment} ORDER BY f.created_at, f.id)
                FROM fulfillments f WHERE f.order_id = {o}.id),
                '[]'::{j}))",
        created = instant(&format!("{o}.created_at")),
        updated = instant(updated_at),
        line_items = line_items(flavour, &format!("{o}.id")),
        fulfillment = fulfillment(flavour, "f"),
    )
}

/// The line items of the order `order_id` (an SQL expression of its internal id), in order.
fn line_items(flavour: Flavour, order_id: &str) -> String {
    let j = flavour.name();
    format!(
        "COALESCE((
            SELECT {j}_agg({j}_build_object('id', li.id, 'product_id', li.product_id,
                                             'variant_id', li.variant_id, 'sku', li.sku,
                                             'title', li.title, 'quantity', li.quantity,
                                             'fulfilled', li.fulfilled,
                                             'returned', li.returned, 'price', li.price,
                                             'extra', li.extra)
                           ORDER BY li.position)
            FROM line_items li WHERE li.order_id = {order_id}),
            '[]'::{j})"
    )
}

/// The order kept on the order's row `row` (its `snapshot`: the order as [`order`] built or
/// this function edited it for the last event) edited for a change that wrote only the
/// fulfillment `fulfillment_id` (its row and children) and its line items' units, as jsonb:
/// `updated_at` set, the line items built again, and the fulfillment built from its rows and
/// put in its place (found by id) or, when new, appended. `store`, `order`, `fulfillment_id`
/// and `updated_at` (milliseconds) are SQL expressions.
///
/// A new fulfillment is appended only if it sorts after the last one (fulfillments are in
/// `created_at`, then id, order; a node whose clock is behind another's can write one that
/// sorts earlier). The kept order is used only if its `updated_at` is the row's (`row`, the
/// order's row as it was): every event writes both, so a write to the order's rows by anything
/// else that moved `updated_at` (a hand-made fix, the bench's pgbench script) sets it aside.
/// Otherwise, or when there is no kept order (`NULL`), or no such fulfillment, the expression
/// is `NULL`, and the caller builds the order from its rows.
///
/// The edit reads one fulfillment's rows and the line items; a build reads every
/// fulfillment's, which grows with the order. (`OFFSET 0` keeps the edited order a value of
/// its own: inlined, the line items would be built again for each of its five uses.)
pub(super) fn with_fulfillment(
    row: &str,
    store: &str,
    order: &str,
    fulfillment_id: &str,
    updated_at: &str,
) -> String {
    format!(
        "(SELECT CASE
                     WHEN found.i IS NOT NULL
                         THEN jsonb_set(base.o, ARRAY['fulfillments', (found.i - 1)::text], nf.j)
                     WHEN base.o->'fulfillments'->-1 IS NULL
                          OR ((base.o->'fulfillments'->-1->>'created_at') COLLATE \"C\",
                              (base.o->'fulfillments'->-1->>'id') COLLATE \"C\")
                             < (nf.created COLLATE \"C\", nf.id)
                         THEN jsonb_set(base.o, '{{fulfillments}}',
                                        (base.o->'fulfillments') || jsonb_build_array(nf.j))
                 END
          FROM (SELECT {row}.snapshot || jsonb_build_object('updated_at', {updated},
                                                            'line_items', {line_items}) AS o
                WHERE {row}.snapshot->>'updated_at' = {kept_at}
                OFFSET 0) AS base,
               (SELECT {built} AS j, {created} AS created, f.id
                FROM fulfillments f
                WHERE f.store_id = {store} AND f.id = {fulfillment_id} AND f.order_id = {order})
                   AS nf
               LEFT JOIN LATERAL (
                   SELECT x.i FROM jsonb_array_elements({row}.snapshot->'fulfillments')
                                       WITH ORDINALITY AS x (e, i)
                   WHERE x.e->>'id' = nf.id) AS found ON true)",
        updated = instant(updated_at),
        kept_at = instant(&format!("{row}.updated_at")),
        line_items = line_items(Flavour::Jsonb, order),
        built = fulfillment(Flavour::Jsonb, "f"),
        created = instant("f.created_at"),
    )
}

/// The statement that reads the orders `$2` (internal ids, of the store `$1`) as JSON text, in
/// the order given.
pub(super) fn by_ids_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}::text
             FROM unnest($2::text[]) WITH ORDINALITY AS wanted (id, n)
             JOIN orders o ON o.id = wanted.id AND o.store_id = $1
             ORDER BY wanted.n",
            order(Flavour::Json, "o", "o.updated_at")
        )
    });
    &SQL
}

/// The statement that reads one fulfillment (`$3`, of the store `$1`) of the order `$2`
/// (internal id), as JSON text.
pub(super) fn fulfillment_by_id_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}::text FROM fulfillments f
             WHERE f.store_id = $1 AND f.id = $3 AND f.order_id = $2",
            fulfillment(Flavour::Json, "f")
        )
    });
    &SQL
}

/// The statement that reads one fulfillment (`$3`, of the store `$1`) of the order the external
/// id `$2` names, as JSON text.
pub(super) fn fulfillment_by_external_order_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}::text FROM fulfillments f
             WHERE f.store_id = $1 AND f.id = $3
               AND f.order_id = (SELECT id FROM orders WHERE store_id = $1 AND external_id = $2)",
            fulfillment(Flavour::Json, "f")
        )
    });
    &SQL
}
