//! Which database engine answers on the PostgreSQL protocol, and whether Waybill supports it.
//!
//! Waybill supports PostgreSQL 14 to 17 (CI runs every test on PostgreSQL 15), including
//! managed PostgreSQL such as Amazon RDS and Aurora PostgreSQL, Google Cloud SQL, Azure and
//! Neon, which report themselves as PostgreSQL. It refuses to migrate an engine it knows it does
//! not work on, with the reason, rather than failing later on some statement: CockroachDB
//! (no `COLLATE "C"` text columns, no two-argument `pg_advisory_xact_lock`) and YugabyteDB
//! (PostgreSQL 11 compatible, and not tested). A PostgreSQL newer than 17 is accepted with a
//! warning: it has not been tested.

use tokio_postgres::Transaction;

use super::{PgResult, map_err};
use crate::StoreError;

/// The oldest PostgreSQL major version Waybill supports.
pub const OLDEST_SUPPORTED: i32 = 14;
/// The newest PostgreSQL major version Waybill has been checked against.
pub const NEWEST_SUPPORTED: i32 = 17;

/// What the server said it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL (or a managed service that reports itself as PostgreSQL) of this major
    /// version, within the supported range.
    Supported { major: i32 },
    /// PostgreSQL newer than the supported range: used, with a warning.
    Newer { major: i32 },
}

/// Decides from `version()` and `server_version_num` whether Waybill runs on this engine.
pub fn classify(version: &str, version_num: i32) -> Result<Engine, String> {
    if version.contains("CockroachDB") {
        return Err(format!(
            "the database is CockroachDB ({}), which Waybill does not support: its schema uses \
             COLLATE \"C\" text columns and pg_advisory_xact_lock(int4, int4), which CockroachDB \
             does not implement; use PostgreSQL {OLDEST_SUPPORTED}–{NEWEST_SUPPORTED}",
            first_words(version)
        ));
    }
    if version.contains("-YB-") {
        return Err(format!(
            "the database is YugabyteDB ({}), which Waybill does not support (it is PostgreSQL 11 \
             compatible and untested); use PostgreSQL {OLDEST_SUPPORTED}–{NEWEST_SUPPORTED}",
            first_words(version)
        ));
    }
    let major = version_num / 10_000;
    if major < OLDEST_SUPPORTED {
        return Err(format!(
            "the database is {}, older than PostgreSQL {OLDEST_SUPPORTED}, the oldest Waybill \
             supports; upgrade it",
            first_words(version)
        ));
    }
    if major > NEWEST_SUPPORTED {
        return Ok(Engine::Newer { major });
    }
    Ok(Engine::Supported { major })
}

/// The engine's name and version, without the build details that follow them.
fn first_words(version: &str) -> String {
    version
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks the server what it is and refuses an unsupported engine.
pub(super) async fn check(tx: &Transaction<'_>) -> PgResult<Engine> {
    let row = tx
        .query_one(
            "SELECT version(), current_setting('server_version_num')::int4",
            &[],
        )
        .await
        .map_err(|e| map_err("asking the database for its version", e))?;
    let version: String = row.get(0);
    let version_num: i32 = row.get(1);
    let engine = classify(&version, version_num).map_err(StoreError::Internal)?;
    if let Engine::Newer { major } = engine {
        tracing::warn!(
            major,
            newest_tested = NEWEST_SUPPORTED,
            "PostgreSQL {major} is newer than any version Waybill has been checked against"
        );
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_14_to_17_is_supported_and_older_is_refused() {
        let v15 =
            "PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(classify(v15, 150019), Ok(Engine::Supported { major: 15 }));
        assert_eq!(
            classify("PostgreSQL 14.0 on aarch64", 140000),
            Ok(Engine::Supported { major: 14 })
        );
        assert_eq!(
            classify("PostgreSQL 17.2 on x86_64", 170002),
            Ok(Engine::Supported { major: 17 })
        );
        assert_eq!(
            classify("PostgreSQL 18.1 on x86_64", 180001),
            Ok(Engine::Newer { major: 18 })
        );
        let old = classify("PostgreSQL 13.16 on x86_64-pc-linux-gnu", 130016).unwrap_err();
        assert!(
            old.contains("PostgreSQL 13.16") && old.contains("oldest"),
            "{old}"
        );
    }

    #[test]
    fn cockroachdb_and_yugabytedb_are_refused_with_the_reason() {
        let crdb = "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27)";
        let err = classify(crdb, 130000).unwrap_err();
        assert!(
            err.contains("CockroachDB CCL") && err.contains("COLLATE"),
            "{err}"
        );
        let yb = "PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu";
        let err = classify(yb, 110002).unwrap_err();
        assert!(err.contains("YugabyteDB"), "{err}");
    }

    #[test]
    fn managed_postgresql_reports_itself_as_postgresql() {
        // Aurora, RDS and Neon answer version() like PostgreSQL itself.
        let aurora = "PostgreSQL 16.4 on aarch64-unknown-linux-gnu, compiled by aarch64-unknown-linux-gnu-gcc (GCC) 9.5.0, 64-bit";
        assert_eq!(
            classify(aurora, 160004),
            Ok(Engine::Supported { major: 16 })
        );
    }
}
