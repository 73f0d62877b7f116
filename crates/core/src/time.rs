//! Instants. Stored as milliseconds since the Unix epoch, shown as RFC 3339 in UTC.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

use crate::DomainError;

pub type Timestamp = DateTime<Utc>;

/// Milliseconds since the Unix epoch, the form every store keeps instants in.
pub fn to_millis(ts: Timestamp) -> i64 {
    ts.timestamp_millis()
}

/// The inverse of [`to_millis`]. Out-of-range values (which no store writes) clamp to the epoch.
pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The current instant, truncated to whole milliseconds so that what is returned equals what is
/// stored.
pub fn now() -> Timestamp {
    from_millis(Utc::now().timestamp_millis())
}

/// RFC 3339 in UTC with millisecond precision, e.g. `2024-03-20T12:00:00.000Z`.
pub fn format(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO 8601 / RFC 3339 date-time with an offset. `field` names the field in errors.
pub fn parse_datetime(field: &str, value: &str) -> Result<Timestamp, DomainError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|dt| from_millis(dt.timestamp_millis()))
        .map_err(|_| {
            DomainError::invalid(format!(
                "{field} must be an ISO 8601 date-time with a time zone, e.g. 2024-03-20T12:00:00Z; got '{value}'"
            ))
        })
}

/// Parses an estimated delivery date. A date-time keeps the calendar date in its own offset (the
/// carrier's local date), a plain `YYYY-MM-DD` is taken as it is.
pub fn parse_date_or_datetime(field: &str, value: &str) -> Result<NaiveDate, DomainError> {
    let value = value.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return Ok(dt.date_naive());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        DomainError::invalid(format!(
            "{field} must be an ISO 8601 date-time (e.g. 2024-03-25T00:00:00Z) or a date (2024-03-25); got '{value}'"
        ))
    })
}

/// `YYYY-MM-DD`.
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trips_through_millis() {
        let ts = parse_datetime("t", "2024-03-20T12:00:00.123+02:00").unwrap();
        assert_eq!(format(ts), "2024-03-20T10:00:00.123Z");
        assert_eq!(from_millis(to_millis(ts)), ts);
    }

    #[test]
    fn eta_keeps_the_local_calendar_date() {
        let d = parse_date_or_datetime("eta", "2024-03-25T23:30:00-05:00").unwrap();
        assert_eq!(format_date(d), "2024-03-25");
        let d = parse_date_or_datetime("eta", "2024-03-26").unwrap();
        assert_eq!(format_date(d), "2024-03-26");
        assert!(parse_date_or_datetime("eta", "next tuesday").is_err());
    }

    #[test]
    fn datetime_without_zone_is_refused() {
        let err = parse_datetime("datetime", "2024-03-20T12:00:00").unwrap_err();
        assert!(err.to_string().contains("datetime must be"));
    }
}
