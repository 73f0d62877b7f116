//! The quantity ledger: for every line item, the units in live fulfillments never exceed the
//! units ordered.
//!
//! Stores call [`check_allocation`] on the rows they loaded inside the write transaction and
//! then apply the same bound again in the database (a conditional update), so no interleaving
//! of concurrent requests can break the invariant.

use crate::{DomainError, Quantity};

/// One line item as the ledger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    pub id: String,
    pub ordered: u32,
    pub fulfilled: u32,
}

impl LedgerLine {
    pub fn remaining(&self) -> u32 {
        self.ordered.saturating_sub(self.fulfilled)
    }
}

/// What a change does to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEffect {
    /// Nothing moves.
    None,
    /// The fulfillment's units become live (counted) again.
    Reserve,
    /// The fulfillment's units stop counting and can be fulfilled elsewhere.
    Release,
}

/// Checks that every requested line exists and has enough units left. `request` must not name a
/// line twice (see [`crate::NewFulfillment::new`]).
pub fn check_allocation(
    lines: &[LedgerLine],
    request: &[(String, Quantity)],
) -> Result<(), DomainError> {
    for (line_id, quantity) in request {
        let line = lines.iter().find(|l| &l.id == line_id).ok_or_else(|| {
            DomainError::UnknownLineItem {
                line_item_id: line_id.clone(),
            }
        })?;
        if quantity.get() > line.remaining() {
            return Err(DomainError::OverFulfillment {
                line_item_id: line_id.clone(),
                requested: quantity.get(),
                remaining: line.remaining(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64) -> Quantity {
        Quantity::new("q", n).unwrap()
    }

    fn lines() -> Vec<LedgerLine> {
        vec![
            LedgerLine {
                id: "a".into(),
                ordered: 10,
                fulfilled: 7,
            },
            LedgerLine {
                id: "b".into(),
                ordered: 1,
                fulfilled: 0,
            },
        ]
    }

    #[test]
    fn allows_up_to_the_remaining_units() {
        assert!(check_allocation(&lines(), &[("a".into(), q(3)), ("b".into(), q(1))]).is_ok());
    }

    #[test]
    fn refuses_over_fulfillment_naming_what_remains() {
        let err = check_allocation(&lines(), &[("a".into(), q(4))]).unwrap_err();
        assert_eq!(
            err,
            DomainError::OverFulfillment {
                line_item_id: "a".into(),
                requested: 4,
                remaining: 3
            }
        );
        assert!(err.to_string().contains("3 unit(s) left"));
    }

    #[test]
    fn refuses_unknown_lines() {
        let err = check_allocation(&lines(), &[("zzz".into(), q(1))]).unwrap_err();
        assert!(matches!(err, DomainError::UnknownLineItem { .. }));
    }
}
