//! The order status derived from where its units are (Fourthwall's order statuses).

use crate::{Order, ShipmentStatus};

/// An order's fulfillment progress, derived from its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Confirmed,
    PartiallyInProduction,
    InProduction,
    PartiallyShipped,
    Shipped,
    PartiallyDelivered,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        Self::Confirmed,
        Self::PartiallyInProduction,
        Self::InProduction,
        Self::PartiallyShipped,
        Self::Shipped,
        Self::PartiallyDelivered,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "CONFIRMED",
            Self::PartiallyInProduction => "PARTIALLY_IN_PRODUCTION",
            Self::InProduction => "IN_PRODUCTION",
            Self::PartiallyShipped => "PARTIALLY_SHIPPED",
            Self::Shipped => "SHIPPED",
            Self::PartiallyDelivered => "PARTIALLY_DELIVERED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Units of an order by how far they have gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitCounts {
    pub ordered: u64,
    /// In a live fulfillment, whatever its status.
    pub in_fulfillment: u64,
    /// Shipped or beyond: in transit, out for delivery, available for pickup, returning,
    /// failed, or delivered.
    pub shipped: u64,
    pub delivered: u64,
}

impl UnitCounts {
    /// Counts the units of an order's live fulfillments.
    pub fn of(order: &Order) -> UnitCounts {
        let mut counts = UnitCounts {
            ordered: order.line_items.iter().map(|l| u64::from(l.quantity)).sum(),
            ..UnitCounts::default()
        };
        for f in &order.fulfillments {
            let units: u64 = f.lines.iter().map(|l| u64::from(l.quantity)).sum();
            counts.add_fulfillment(f.status, units);
        }
        counts
    }

    /// Counts a fulfillment of `units` units in `status` (nothing if it is not live).
    pub fn add_fulfillment(&mut self, status: ShipmentStatus, units: u64) {
        if !status.is_live() {
            return;
        }
        self.in_fulfillment += units;
        if status.is_shipped() {
            self.shipped += units;
        }
        if status == ShipmentStatus::Delivered {
            self.delivered += units;
        }
    }

    /// Takes back a fulfillment of `units` units in `status` that [`UnitCounts::add_fulfillment`]
    /// counted (nothing if it is not live): with both, a status change moves its units.
    pub fn remove_fulfillment(&mut self, status: ShipmentStatus, units: u64) {
        if !status.is_live() {
            return;
        }
        self.in_fulfillment = self.in_fulfillment.saturating_sub(units);
        if status.is_shipped() {
            self.shipped = self.shipped.saturating_sub(units);
        }
        if status == ShipmentStatus::Delivered {
            self.delivered = self.delivered.saturating_sub(units);
        }
    }

    /// The rule: the furthest stage any unit has reached, qualified by whether every unit has.
    pub fn status(&self) -> OrderStatus {
        let all = |n: u64| self.ordered > 0 && n >= self.ordered;
        if all(self.delivered) {
            OrderStatus::Delivered
        } else if self.delivered > 0 {
            OrderStatus::PartiallyDelivered
        } else if all(self.shipped) {
            OrderStatus::Shipped
        } else if self.shipped > 0 {
            OrderStatus::PartiallyShipped
        } else if all(self.in_fulfillment) {
            OrderStatus::InProduction
        } else if self.in_fulfillment > 0 {
            OrderStatus::PartiallyInProduction
        } else {
            OrderStatus::Confirmed
        }
    }
}

/// The derived status of an order.
pub fn derive(order: &Order) -> OrderStatus {
    UnitCounts::of(order).status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfillment::{Fulfillment, FulfillmentLine};
    use crate::order::LineItemExtra;
    use crate::{LineItem, OrderDetails, time};
    use uuid::Uuid;

    fn order(quantities: &[u32], fulfillments: &[(ShipmentStatus, &[(usize, u32)])]) -> Order {
        let now = time::now();
        Order {
            id: Uuid::nil(),
            store_id: "s".into(),
            external_id: "o".into(),
            created_at: now,
            updated_at: now,
            line_items: quantities
                .iter()
                .enumerate()
                .map(|(i, q)| LineItem {
                    id: format!("l{i}"),
                    product_id: None,
                    variant_id: None,
                    sku: None,
                    title: String::new(),
                    quantity: *q,
                    fulfilled: 0,
                    returned: 0,
                    price: None,
                    extra: LineItemExtra::default(),
                })
                .collect(),
            details: OrderDetails::default(),
            fulfillments: fulfillments
                .iter()
                .enumerate()
                .map(|(n, (status, lines))| Fulfillment {
                    id: format!("f{n}"),
                    order_id: Uuid::nil(),
                    created_at: now,
                    updated_at: now,
                    status: *status,
                    status_label: None,
                    packages: vec![],
                    estimated_delivery: None,
                    delivered_at: None,
                    lines: lines
                        .iter()
                        .map(|(line, q)| FulfillmentLine {
                            line_item_id: format!("l{line}"),
                            quantity: *q,
                            title: String::new(),
                            product_id: None,
                            variant_id: None,
                            sku: None,
                        })
                        .collect(),
                    history: vec![],
                })
                .collect(),
        }
    }

    use OrderStatus::*;
    use ShipmentStatus as S;

    #[test]
    fn moving_a_fulfillment_between_statuses_counts_as_a_recount() {
        for from in S::ALL {
            for to in S::ALL {
                let before = order(
                    &[3, 2],
                    &[(S::InTransit, &[(0, 1)]), (from, &[(0, 2), (1, 1)])],
                );
                let mut moved = UnitCounts::of(&before);
                moved.remove_fulfillment(from, 3);
                moved.add_fulfillment(to, 3);
                let after = order(
                    &[3, 2],
                    &[(S::InTransit, &[(0, 1)]), (to, &[(0, 2), (1, 1)])],
                );
                assert_eq!(moved, UnitCounts::of(&after), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn nothing_fulfilled_is_confirmed() {
        assert_eq!(derive(&order(&[2, 1], &[])), Confirmed);
    }

    #[test]
    fn in_production_stages() {
        assert_eq!(
            derive(&order(&[2, 1], &[(S::PreTransit, &[(0, 1)])])),
            PartiallyInProduction
        );
        assert_eq!(
            derive(&order(
                &[2, 1],
                &[(S::PreTransit, &[(0, 2)]), (S::Unknown, &[(1, 1)])]
            )),
            InProduction
        );
        assert_eq!(
            derive(&order(&[2], &[(S::Error, &[(0, 2)])])),
            InProduction,
            "a tracker error has not shipped"
        );
    }

    #[test]
    fn shipped_stages_count_every_shipped_status() {
        for shipped in [
            S::InTransit,
            S::OutForDelivery,
            S::AvailableForPickup,
            S::ReturnToSender,
            S::Failure,
        ] {
            assert_eq!(
                derive(&order(&[2], &[(shipped, &[(0, 1)])])),
                PartiallyShipped,
                "{shipped}"
            );
            assert_eq!(
                derive(&order(
                    &[2],
                    &[(shipped, &[(0, 1)]), (S::InTransit, &[(0, 1)])]
                )),
                Shipped,
                "{shipped}"
            );
        }
        assert_eq!(
            derive(&order(
                &[2, 1],
                &[(S::InTransit, &[(0, 2)]), (S::PreTransit, &[(1, 1)])]
            )),
            PartiallyShipped
        );
    }

    #[test]
    fn delivered_stages() {
        assert_eq!(
            derive(&order(&[2, 1], &[(S::Delivered, &[(0, 1)])])),
            PartiallyDelivered
        );
        assert_eq!(
            derive(&order(
                &[2, 1],
                &[(S::Delivered, &[(0, 2)]), (S::InTransit, &[(1, 1)])]
            )),
            PartiallyDelivered
        );
        assert_eq!(
            derive(&order(&[2, 1], &[(S::Delivered, &[(0, 2), (1, 1)])])),
            Delivered
        );
    }

    #[test]
    fn cancelled_fulfillments_do_not_count() {
        assert_eq!(
            derive(&order(&[2], &[(S::Cancelled, &[(0, 2)])])),
            Confirmed
        );
        assert_eq!(
            derive(&order(
                &[2],
                &[(S::Cancelled, &[(0, 2)]), (S::InTransit, &[(0, 1)])]
            )),
            PartiallyShipped
        );
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }
}
