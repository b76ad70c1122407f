//! The embedded state database: one SQLite file holding keys, the usage ledger, stored
//! payloads and the audit log.
//!
//! The CLI and a running gateway open the same file, so `open` is safe to call from
//! several processes at once: WAL lets readers run beside the one writer, a busy timeout
//! turns lock contention into waiting, and migrations run in an `IMMEDIATE` transaction
//! that re-reads the schema version once it holds the write lock.
//!
//! `requests` has one index, on time: every row is written on the request path's
//! behalf and each index is another b-tree insert per row (measured: the ledger with
//! four indexes cost the full chain ~40 µs of CPU per request on one core), while the
//! reports and the budgets' start-up sums read a time range anyway.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, TransactionBehavior};

/// How long a connection waits for another's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; `MIGRATIONS[i]` takes `user_version` from `i` to `i + 1`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
     CREATE TABLE keys (
       name TEXT PRIMARY KEY,
       hash BLOB NOT NULL UNIQUE,
       prefix TEXT NOT NULL,
       team TEXT,
       models TEXT NOT NULL DEFAULT '[]',
       rpm INTEGER, tpm INTEGER,
       budget_micros INTEGER, budget_period TEXT,
       expires_at INTEGER,
       created_at INTEGER NOT NULL,
       revoked_at INTEGER
     );
     CREATE TABLE requests (
       id INTEGER PRIMARY KEY,
       ts_ms INTEGER NOT NULL,
       request_id TEXT NOT NULL,
       key_name TEXT, team TEXT, model TEXT,
       deployment TEXT,
       tried TEXT NOT NULL DEFAULT '[]',
       plugins TEXT NOT NULL DEFAULT '[]',
       stream INTEGER NOT NULL,
       prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
       cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
       tokens_estimated INTEGER NOT NULL,
       cost_micros INTEGER NOT NULL,
       latency_us INTEGER NOT NULL, ttft_us INTEGER,
       status INTEGER NOT NULL, error_code TEXT,
       stream_outcome TEXT
     );
     CREATE INDEX requests_ts ON requests (ts_ms);
     CREATE TABLE payloads (
       request_id TEXT PRIMARY KEY,
       ts_ms INTEGER NOT NULL,
       request TEXT NOT NULL,
       response TEXT
     );
     CREATE INDEX payloads_ts ON payloads (ts_ms);
     CREATE TABLE audit (
       id INTEGER PRIMARY KEY,
       ts_ms INTEGER NOT NULL,
       actor TEXT NOT NULL,
       action TEXT NOT NULL,
       subject TEXT NOT NULL,
       detail TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX audit_ts ON audit (ts_ms);",
    // v2: caller tags on stored keys (`keys create --tags`).
    "ALTER TABLE keys ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';",
    // v3: rows of a router's shadow calls, beside their primary's.
    "ALTER TABLE requests ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A state database error.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    /// A newer build migrated the file; writing to it could corrupt what it added.
    #[error("{path}: schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    TooNew { path: String, found: i64 },
    #[error("cannot start the ledger writer: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Opens (creating if missing) the state database at `path` and brings its schema up to
/// date.
pub fn open(path: &Path) -> Result<Connection, StateError> {
    let shown = path.display().to_string();
    create_private(path).map_err(|source| StateError::Create {
        path: shown.clone(),
        source,
    })?;
    let at = |source| StateError::Open {
        path: shown.clone(),
        source,
    };
    let mut conn = Connection::open(path).map_err(at)?;
    // First, so that the journal-mode switch and the migration wait for other openers.
    conn.busy_timeout(BUSY_TIMEOUT).map_err(at)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(at)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %shown, mode, "state database is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(at)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(at)?;
    migrate(&mut conn, &shown)?;
    Ok(conn)
}

/// Creates the file owner-only before SQLite does, so usage data and key hashes are never
/// readable by others, not even for a moment. SQLite gives the `-wal` and `-shm` files
/// the database file's permissions.
fn create_private(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        // Another opener won the race; its file is as good as ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn migrate(conn: &mut Connection, path: &str) -> Result<(), StateError> {
    let too_new = |found| StateError::TooNew {
        path: path.to_owned(),
        found,
    };
    let current = user_version(conn)?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    if current > SCHEMA_VERSION {
        return Err(too_new(current));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let current = user_version(&tx)?;
    if current > SCHEMA_VERSION {
        return Err(too_new(current));
    }
    let from = usize::try_from(current).unwrap_or(0);
    for step in MIGRATIONS.iter().skip(from) {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Now, in unix milliseconds, the unit of every `ts_ms` column.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_connections_share_one_migrated_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state.db");
        let a = open(&path).expect("first open");
        let b = open(&path).expect("second open");
        assert_eq!(user_version(&a).expect("version"), SCHEMA_VERSION);
        assert_eq!(user_version(&b).expect("version"), SCHEMA_VERSION);
        a.execute(
            "INSERT INTO audit (ts_ms, actor, action, subject) VALUES (1, 'cli', 'create', 'k')",
            [],
        )
        .expect("insert");
        let n: i64 = b
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1);
        let mode: String = b
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn concurrent_first_opens_all_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || open(&path).map(drop))
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("open");
        }
    }

    #[cfg(unix)]
    #[test]
    fn file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let _conn = open(&path).expect("open");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let conn = open(&path).expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(conn);
        assert!(matches!(open(&path), Err(StateError::TooNew { .. })));
    }
}
