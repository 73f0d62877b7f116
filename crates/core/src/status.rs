//! The ten shipment statuses and the three automation events.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Where a parcel is, as carriers report it. The same ten values EasyPost trackers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    PreTransit,
    Unknown,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    Delivered,
    ReturnToSender,
    Failure,
    Cancelled,
    Error,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 10] = [
        Self::PreTransit,
        Self::Unknown,
        Self::InTransit,
        Self::OutForDelivery,
        Self::AvailableForPickup,
        Self::Delivered,
        Self::ReturnToSender,
        Self::Failure,
        Self::Cancelled,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreTransit => "pre_transit",
            Self::Unknown => "unknown",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::AvailableForPickup => "available_for_pickup",
            Self::Delivered => "delivered",
            Self::ReturnToSender => "return_to_sender",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }

    /// A short human description, used as the history message when the caller gives none.
    pub fn description(self) -> &'static str {
        match self {
            Self::PreTransit => "Label created, awaiting carrier pickup",
            Self::Unknown => "Status unknown",
            Self::InTransit => "In transit",
            Self::OutForDelivery => "Out for delivery",
            Self::AvailableForPickup => "Available for pickup",
            Self::Delivered => "Delivered",
            Self::ReturnToSender => "Returning to sender",
            Self::Failure => "Delivery failed",
            Self::Cancelled => "Shipment cancelled",
            Self::Error => "Carrier error",
        }
    }

    /// Whether a shipment in this status counts towards the ledger. A cancelled shipment's units
    /// are free to be fulfilled again.
    pub fn is_live(self) -> bool {
        self != Self::Cancelled
    }

    /// Whether the parcel has left the shipper (for the derived order status).
    pub fn is_shipped(self) -> bool {
        matches!(
            self,
            Self::InTransit
                | Self::OutForDelivery
                | Self::AvailableForPickup
                | Self::ReturnToSender
                | Self::Failure
                | Self::Delivered
        )
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShipmentStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "'{s}' is not a shipment status; expected one of {}",
                    list(Self::ALL.iter().map(|s| s.as_str()))
                ))
            })
    }
}

/// Something that happened to a shipment without changing where it is. Raised to trigger
/// automations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentEvent {
    StalledInTransit,
    Delayed,
    ArrivingEarly,
}

impl ShipmentEvent {
    pub const ALL: [ShipmentEvent; 3] =
        [Self::StalledInTransit, Self::Delayed, Self::ArrivingEarly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StalledInTransit => "stalled_in_transit",
            Self::Delayed => "delayed",
            Self::ArrivingEarly => "arriving_early",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::StalledInTransit => "Shipment has stalled in transit",
            Self::Delayed => "Shipment is delayed",
            Self::ArrivingEarly => "Shipment is arriving early",
        }
    }
}

impl fmt::Display for ShipmentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a shipment-status update carries: a new status, or an event that leaves it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusOrEvent {
    Status(ShipmentStatus),
    Event(ShipmentEvent),
}

impl StatusOrEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status(s) => s.as_str(),
            Self::Event(e) => e.as_str(),
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Status(s) => s.description(),
            Self::Event(e) => e.description(),
        }
    }

    /// Parses any of the ten statuses or three events.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if let Some(event) = ShipmentEvent::ALL.into_iter().find(|e| e.as_str() == s) {
            return Ok(Self::Event(event));
        }
        if let Some(status) = ShipmentStatus::ALL.into_iter().find(|st| st.as_str() == s) {
            return Ok(Self::Status(status));
        }
        Err(DomainError::invalid(format!(
            "'{s}' is neither a shipment status nor an event; expected one of {}",
            list(
                ShipmentStatus::ALL
                    .iter()
                    .filter(|s| **s != ShipmentStatus::Unknown)
                    .map(|s| s.as_str())
                    .chain(ShipmentEvent::ALL.iter().map(|e| e.as_str()))
            )
        )))
    }
}

impl fmt::Display for StatusOrEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for status in ShipmentStatus::ALL {
            assert_eq!(status.as_str().parse::<ShipmentStatus>().unwrap(), status);
            assert_eq!(
                StatusOrEvent::parse(status.as_str()).unwrap(),
                StatusOrEvent::Status(status)
            );
        }
        for event in ShipmentEvent::ALL {
            assert_eq!(
                StatusOrEvent::parse(event.as_str()).unwrap(),
                StatusOrEvent::Event(event)
            );
        }
    }

    #[test]
    fn events_are_not_statuses() {
        assert!("delayed".parse::<ShipmentStatus>().is_err());
        assert!(StatusOrEvent::parse("IN_TRANSIT").is_err());
    }

    #[test]
    fn only_cancelled_is_not_live() {
        for status in ShipmentStatus::ALL {
            assert_eq!(status.is_live(), status != ShipmentStatus::Cancelled);
        }
    }
}
