//! Online backup of a live SQLite database (`waybill backup PATH`).
//!
//! SQLite's backup API copies the database page by page through a connection of its own. The
//! copy is made in a single step, so it reads one consistent snapshot: in WAL mode a reader
//! never blocks the server's writer, and the writer never forces the copy to restart. Every
//! transaction committed before the snapshot is in the backup; none after it is. The copy is
//! written to a temporary file beside `dest`, checked, synced and then renamed into place, so
//! `dest` is never a half-written database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, StoreResult};

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub pages: u64,
    pub bytes: u64,
}

fn err(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("{context}: {e}"))
}

/// Copies the database at `source` to `dest` while other processes keep using it. Refuses to
/// overwrite an existing `dest` unless `overwrite`.
pub fn backup(source: &Path, dest: &Path, overwrite: bool) -> StoreResult<BackupReport> {
    if !source.is_file() {
        return Err(StoreError::Internal(format!(
            "{} is not a database file",
            source.display()
        )));
    }
    if dest.exists() && !overwrite {
        return Err(StoreError::Internal(format!(
            "{} already exists; choose another path or pass --force",
            dest.display()
        )));
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err("opening the database", e))?;
    src.busy_timeout(Duration::from_secs(10))
        .map_err(|e| err("setting a busy timeout", e))?;

    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let temp = dest.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let result = copy(&src, &temp).and_then(|pages| {
        std::fs::rename(&temp, dest).map_err(|e| err("moving the backup into place", e))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(BackupReport {
            path: dest.to_path_buf(),
            pages,
            bytes,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Copies `src` into a new database at `temp` in one step, checks and syncs it.
fn copy(src: &Connection, temp: &Path) -> StoreResult<u64> {
    let mut dst = Connection::open(temp).map_err(|e| err("creating the backup file", e))?;
    let pages = {
        let backup = Backup::new(src, &mut dst).map_err(|e| err("starting the backup", e))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // -1: every page in one step, from one read snapshot.
            match backup.step(-1).map_err(|e| err("copying pages", e))? {
                StepResult::Done => break,
                StepResult::More => continue,
                // The source is locked (a checkpoint or a migration); wait and try again.
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(StoreError::Internal(
                        "the database stayed locked for 60 s; the backup was abandoned".into(),
                    ));
                }
            }
        }
        backup.progress().pagecount as u64
    };
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|e| err("checking the backup", e))?;
    if check != "ok" {
        return Err(StoreError::Internal(format!(
            "the backup failed its integrity check: {check}"
        )));
    }
    // A self-contained file: no -wal beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| err("finishing the backup", e))?;
    drop(dst);
    std::fs::File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| err("syncing the backup", e))?;
    Ok(pages)
}
