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

/// Why units requested by a line key (SKU, variant id) cannot be allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAllocationError {
    /// No line of the order carries this key.
    UnknownKey { key: String },
    /// The lines with this key have fewer units left than requested.
    TooMany {
        key: String,
        fulfillable: u32,
        requested: u32,
    },
    /// A quantity outside 1–1000.
    Invalid(DomainError),
}

/// Turns requests addressed by a line key (a SKU, a variant id) into requests by line id.
/// Repeated keys are summed; when several lines share a key, units fill them in order.
pub fn allocate_by_key<'a>(
    lines: impl Iterator<Item = (&'a str, Option<&'a str>, u32)> + Clone,
    requests: &[(String, u32)],
) -> Result<Vec<(String, Quantity)>, KeyAllocationError> {
    let mut totals: Vec<(String, u32)> = Vec::new();
    for (key, quantity) in requests {
        match totals.iter_mut().find(|(k, _)| k == key) {
            Some((_, total)) => *total = total.saturating_add(*quantity),
            None => totals.push((key.clone(), *quantity)),
        }
    }
    let mut allocation: Vec<(String, u32)> = Vec::new();
    for (key, requested) in totals {
        let candidates: Vec<(&str, u32)> = lines
            .clone()
            .filter(|(_, k, _)| *k == Some(key.as_str()))
            .map(|(id, _, remaining)| (id, remaining))
            .collect();
        if candidates.is_empty() {
            return Err(KeyAllocationError::UnknownKey { key });
        }
        let fulfillable: u32 = candidates.iter().map(|c| c.1).sum();
        if requested > fulfillable {
            return Err(KeyAllocationError::TooMany {
                key,
                fulfillable,
                requested,
            });
        }
        let mut left = requested;
        for (id, remaining) in candidates {
            if left == 0 {
                break;
            }
            let take = left.min(remaining);
            if take > 0 {
                allocation.push((id.to_owned(), take));
                left -= take;
            }
        }
    }
    allocation
        .into_iter()
        .map(|(id, q)| {
            Quantity::new("quantity", i64::from(q))
                .map(|q| (id, q))
                .map_err(KeyAllocationError::Invalid)
        })
        .collect()
}

#[cfg(test)]
mod key_tests {
    use super::*;

    fn lines() -> Vec<(&'static str, Option<&'static str>, u32)> {
        vec![
            ("a", Some("SKU-1"), 2),
            ("b", Some("SKU-1"), 3),
            ("c", None, 5),
        ]
    }

    #[test]
    fn fills_lines_sharing_a_key_in_order() {
        let got = allocate_by_key(lines().into_iter(), &[("SKU-1".into(), 4)]).unwrap();
        let got: Vec<(String, u32)> = got.into_iter().map(|(id, q)| (id, q.get())).collect();
        assert_eq!(got, vec![("a".into(), 2), ("b".into(), 2)]);
    }

    #[test]
    fn sums_repeated_keys_and_reports_what_is_fulfillable() {
        let err = allocate_by_key(
            lines().into_iter(),
            &[("SKU-1".into(), 3), ("SKU-1".into(), 3)],
        )
        .unwrap_err();
        assert_eq!(
            err,
            KeyAllocationError::TooMany {
                key: "SKU-1".into(),
                fulfillable: 5,
                requested: 6
            }
        );
        assert_eq!(
            allocate_by_key(lines().into_iter(), &[("nope".into(), 1)]).unwrap_err(),
            KeyAllocationError::UnknownKey { key: "nope".into() }
        );
    }
}
