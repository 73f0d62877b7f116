//! Returns storage types, shared by every backend.
//!
//! A return's rows (`returns`, `return_lines`, `return_packages`, `return_history`) belong to
//! its order and go with it. Each line item keeps `returned`, its units in live (not rejected)
//! returns. Creating a return and changing its status lock the order as a fulfillment does
//! (SQLite: the single writer; PostgreSQL: the order's row, `FOR UPDATE`), check the core's
//! rule ([`waybill_core::returns::check_returnable`]) on counts read under that lock, apply the
//! same bound again in the conditional update of `returned`, and write the outbox event
//! (`return.created`, `return.updated`) in the same transaction.

use waybill_core::{Order, OrderRef, ReturnStatus};

/// Which returns to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReturnQuery {
    /// Only the returns of this order.
    pub order: Option<OrderRef>,
    /// Only returns in this status.
    pub status: Option<ReturnStatus>,
    /// Only returns with a parcel whose tracking number contains this text, compared without
    /// spaces and case-insensitively (`z999aa` finds `1Z 999 AA1 0123456784`); empty: no filter.
    pub tracking: Option<String>,
    /// Page size, at most [`crate::MAX_PAGE_SIZE`] + 1 (a caller may ask for one more than it
    /// shows, to know whether another page follows; 0: the maximum).
    pub limit: u32,
    /// Keyset paging: returns created after the return with this id (oldest first).
    pub after: Option<String>,
}

impl ReturnQuery {
    /// The tracking filter as the queries compare it: lower case, without whitespace.
    pub(crate) fn tracking_needle(&self) -> Option<String> {
        let needle: String = self
            .tracking
            .as_deref()?
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        (!needle.is_empty()).then_some(needle)
    }

    pub(crate) fn page_size(&self) -> u32 {
        match self.limit {
            0 => crate::MAX_PAGE_SIZE,
            n => n.min(crate::MAX_PAGE_SIZE + 1),
        }
    }
}

/// The units of each line of an order: ordered, in live fulfillments, in live returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineUnits {
    pub line_item_id: String,
    pub ordered: u32,
    pub fulfilled: u32,
    pub returned: u32,
}

impl LineUnits {
    /// Each line of `order` with its units, as the order's line items carry them.
    pub fn of(order: &Order) -> Vec<LineUnits> {
        order
            .line_items
            .iter()
            .map(|l| LineUnits {
                line_item_id: l.id.clone(),
                ordered: l.quantity,
                fulfilled: l.fulfilled,
                returned: l.returned,
            })
            .collect()
    }

    /// Units not yet fulfilled.
    pub fn remaining(&self) -> u32 {
        self.ordered.saturating_sub(self.fulfilled)
    }
}
