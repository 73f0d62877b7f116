//! The delivery log's SQL, written once for both backends.
//!
//! A [`DeliveryQuery`] becomes one statement whose WHERE clause names only the filters that
//! are set, so each combination is a statement of its own (cached as such) whose plan walks
//! one index range newest first:
//!
//! - one subscription: `webhook_deliveries_log (subscription_id, id)`; with a status,
//!   `webhook_deliveries_log_status (subscription_id, status, id)` or, for pending/disabled,
//!   the partial `webhook_deliveries_log_open (subscription_id, id)`;
//! - every subscription of a flavour: `webhook_deliveries_store_log (store_id, id)`, skipping
//!   other flavours' rows;
//! - an order: `webhook_deliveries_order (order_id, seq)` and, for an external id,
//!   `webhook_deliveries_external_order (store_id, order_external_id)`;
//! - an event: `webhook_deliveries_event (event_id)`.
//!
//! The last response code is read from the delivery's latest attempt
//! (`webhook_attempts_delivery (delivery_id, id)`).

use crate::webhooks::{DeliveryQuery, DeliveryState, topic_match};

/// Which SQL the statement is written in: placeholders and booleans differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A statement with its parameters, in placeholder order.
#[derive(Debug)]
pub(crate) struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

/// The columns [`list`] selects, in order.
pub(crate) const COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.type, d.order_id, \
     d.order_external_id, d.seq, d.status, s.enabled, d.attempts, \
     CASE WHEN d.attempts > 0 THEN (SELECT a.status_code FROM webhook_attempts a \
     WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1) END, \
     d.last_error, d.next_attempt_at, d.event_at, d.created_at";

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn text(&mut self, value: &str) -> String {
        let placeholder = self.bind(Param::Text(value.to_owned()));
        match self.dialect {
            Dialect::Sqlite => placeholder,
            Dialect::Postgres => format!("{placeholder}::text"),
        }
    }

    fn enabled(&self, yes: bool) -> &'static str {
        match (self.dialect, yes) {
            (Dialect::Sqlite, true) => "s.enabled = 1",
            (Dialect::Sqlite, false) => "s.enabled = 0",
            (Dialect::Postgres, true) => "s.enabled",
            (Dialect::Postgres, false) => "NOT s.enabled",
        }
    }

    /// The FROM and WHERE clauses shared by the listing and the count.
    fn filters_sql(&mut self, store_id: &str, q: &DeliveryQuery, with_cursor: bool) -> String {
        let mut clauses = Vec::new();
        let store = self.text(store_id);
        clauses.push(format!("s.store_id = {store}"));
        let flavor = self.text(q.flavor.as_str());
        clauses.push(format!("s.flavor = {flavor}"));
        // With an order, SQLite is steered (a unary `+` keeps a column out of index choice)
        // to the order's few deliveries rather than a walk of the whole subscription.
        let steer = if q.order.is_some() && self.dialect == Dialect::Sqlite {
            "+"
        } else {
            ""
        };
        match &q.webhook_id {
            Some(id) => {
                let id = self.text(id);
                clauses.push(format!("{steer}d.subscription_id = {id}"));
            }
            None => clauses.push(format!("{steer}d.store_id = {store}")),
        }
        match q.status {
            None => {}
            Some(DeliveryState::Delivered) => clauses.push("d.status = 'delivered'".into()),
            Some(DeliveryState::Failed) => clauses.push("d.status = 'failed'".into()),
            Some(state) => {
                clauses.push("d.status IN ('pending', 'in_flight')".into());
                clauses.push(self.enabled(state == DeliveryState::Pending).into());
            }
        }
        if let Some(order) = &q.order {
            let order = self.text(order);
            // One IN list (the id as given, and the ids of orders with that external id), so
            // the plan looks the order's deliveries up by `order_id`.
            let as_given = match self.dialect {
                Dialect::Sqlite => order.clone(),
                Dialect::Postgres => format!("{order} COLLATE \"C\""),
            };
            clauses.push(format!(
                "d.order_id IN (SELECT {as_given} UNION SELECT x.order_id \
                 FROM webhook_deliveries x WHERE x.store_id = {store} \
                 AND x.order_external_id = {order})"
            ));
        }
        if let Some(event_id) = &q.event_id {
            let event_id = self.text(event_id);
            clauses.push(format!("d.event_id = {event_id}"));
        }
        if let Some(topic) = &q.topic {
            let selects = topic_match(q.flavor, topic);
            let mut terms = Vec::new();
            for exact in selects.exact {
                let value = self.text(exact);
                terms.push(format!("d.type = {value}"));
            }
            for prefix in selects.prefixes {
                let value = self.text(&format!("{prefix}%"));
                terms.push(format!("d.type LIKE {value}"));
            }
            if terms.is_empty() {
                clauses.push("1 = 0".into());
            } else {
                clauses.push(format!("({})", terms.join(" OR ")));
            }
        }
        if with_cursor && let Some(before) = q.before {
            let before = self.bind(Param::Int(before));
            clauses.push(format!("d.id < {before}"));
        }
        // CROSS JOIN: SQLite keeps the deliveries as the outer loop, walking the index the
        // filters name (PostgreSQL plans the join freely).
        format!(
            "FROM webhook_deliveries d CROSS JOIN webhook_subscriptions s \
             WHERE s.id = d.subscription_id AND {}",
            clauses.join(" AND ")
        )
    }
}

/// The page `q` asks for, newest first; columns as [`COLUMNS`].
pub(crate) fn list(dialect: Dialect, store_id: &str, q: &DeliveryQuery) -> Statement {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let filters = b.filters_sql(store_id, q, true);
    let limit = b.bind(Param::Int(i64::from(q.limit)));
    let offset = b.bind(Param::Int(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    Statement {
        sql: format!("SELECT {COLUMNS} {filters} ORDER BY d.id DESC LIMIT {limit} OFFSET {offset}"),
        params: b.params,
    }
}

/// How many deliveries match `q`'s filters (its cursor, offset and limit aside).
pub(crate) fn count(dialect: Dialect, store_id: &str, q: &DeliveryQuery) -> Statement {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let filters = b.filters_sql(store_id, q, false);
    Statement {
        sql: format!("SELECT count(*) {filters}"),
        params: b.params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::WebhookFlavor;

    #[test]
    fn only_the_filters_set_are_written() {
        let q = DeliveryQuery::new(WebhookFlavor::Redo, 10);
        let s = list(Dialect::Postgres, "st", &q);
        assert!(s.sql.contains("d.store_id = $1::text"), "{}", s.sql);
        let filters = &s.sql[s.sql.find("WHERE").unwrap_or(0)..];
        assert!(!filters.contains("d.status"), "{}", s.sql);
        assert_eq!(s.params.len(), 4);
        let q = DeliveryQuery {
            webhook_id: Some("wh_1".into()),
            status: Some(DeliveryState::Disabled),
            order: Some("1001".into()),
            topic: Some("nope".into()),
            before: Some(7),
            ..DeliveryQuery::new(WebhookFlavor::Redo, 10)
        };
        let s = list(Dialect::Sqlite, "st", &q);
        assert!(s.sql.contains("d.subscription_id = ?3"), "{}", s.sql);
        assert!(s.sql.contains("s.enabled = 0"), "{}", s.sql);
        assert!(s.sql.contains("1 = 0"), "{}", s.sql);
        assert!(s.sql.contains("d.id < ?5"), "{}", s.sql);
        let c = count(Dialect::Sqlite, "st", &q);
        assert!(!c.sql.contains("d.id <"), "{}", c.sql);
    }
}
