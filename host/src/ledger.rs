//! The usage ledger: one row per request, written to the state database by a single
//! writer thread behind a bounded queue.
//!
//! ```text
//! request path ─ record() ─► [bounded queue] ─► ledger-writer ─► one transaction per batch
//! ```
//!
//! Invariant: `record` never blocks and never touches disk. A full queue drops the row,
//! counts it and logs it (at most once a second); a slow disk costs usage rows, never
//! request latency.

mod writer;

pub mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::state::{self, StateError, now_ms};

pub use writer::prune_payloads;

/// How long stored payloads are kept unless configured otherwise.
pub const DEFAULT_PAYLOAD_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Rows the queue holds before `record` starts dropping them.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// Longest a row waits in the queue before its batch is committed.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What a plugin did to a request, e.g. `("pii-redact", "redacted 2")`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PluginNote {
    pub plugin: String,
    pub action: String,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    Completed,
    BudgetExceeded,
    Broken,
    ClientGone,
}

impl StreamOutcome {
    /// The `requests.stream_outcome` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamOutcome::Completed => "completed",
            StreamOutcome::BudgetExceeded => "budget_exceeded",
            StreamOutcome::Broken => "broken",
            StreamOutcome::ClientGone => "client_gone",
        }
    }
}

/// A request and its answer, stored only when `store_payloads` is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    pub request: String,
    pub response: Option<String>,
}

/// One request's usage: a `requests` row (see `state` for the columns).
#[derive(Debug, Clone, Default)]
pub struct LedgerRow {
    /// Request start, unix milliseconds.
    pub ts_ms: i64,
    pub request_id: String,
    pub key_name: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
    /// The deployment that answered.
    pub deployment: Option<String>,
    /// Deployments tried, in order.
    pub tried: Vec<String>,
    pub plugins: Vec<PluginNote>,
    pub stream: bool,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cached_tokens: u32,
    pub reasoning_tokens: u32,
    /// Counted by the gateway because the provider reported no usage.
    pub tokens_estimated: bool,
    pub cost_micros: i64,
    pub latency_us: u64,
    pub ttft_us: Option<u64>,
    pub status: u16,
    pub error_code: Option<String>,
    /// `None` when the request was not a stream.
    pub stream_outcome: Option<StreamOutcome>,
    /// Ignored unless the ledger stores payloads.
    pub payload: Option<Payload>,
    /// A router's shadow call: a mirrored copy whose answer was discarded. It has the
    /// primary's `request_id`, is not billed to the caller's budget and is left out of
    /// usage reports; it is there to compare deployments.
    pub shadow: bool,
}

/// Where the ledger writes and what it keeps.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    pub path: PathBuf,
    pub store_payloads: bool,
    pub payload_retention: Duration,
    pub queue_capacity: usize,
    pub flush_every: Duration,
}

impl LedgerSettings {
    /// The defaults, writing to `path`, payloads off.
    pub fn new(path: impl Into<PathBuf>) -> LedgerSettings {
        LedgerSettings {
            path: path.into(),
            store_payloads: false,
            payload_retention: DEFAULT_PAYLOAD_RETENTION,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            flush_every: DEFAULT_FLUSH_EVERY,
        }
    }
}

/// The ledger's health, for metrics and `/admin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerCounters {
    /// Rows waiting in the queue now.
    pub queued: u64,
    /// Rows committed (usage and audit).
    pub written: u64,
    /// Rows lost: queue full, ledger closed, or a failed batch.
    pub dropped: u64,
}

/// An audit-log entry.
#[derive(Debug)]
struct AuditRow {
    ts_ms: i64,
    actor: String,
    action: String,
    subject: String,
    detail: String,
}

/// What travels from the request path to the writer.
#[derive(Debug)]
enum Msg {
    Row(Box<LedgerRow>),
    Audit(AuditRow),
    /// Answered once everything before it is committed.
    Flush(mpsc::Sender<()>),
    Stop,
}

/// Counters shared with the writer.
#[derive(Debug, Default)]
struct Shared {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    /// When a drop was last logged, unix ms: drops are logged at most once a second.
    last_drop_log_ms: AtomicI64,
}

impl Shared {
    fn dropped(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let now = now_ms();
        let last = self.last_drop_log_ms.load(Ordering::Relaxed);
        if now - last >= 1000
            && self
                .last_drop_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(dropped_total = total, "usage ledger rows dropped: {why}");
        }
    }
}

/// The usage ledger. Share it as `Arc<Ledger>`; dropping the last one closes it.
#[derive(Debug)]
pub struct Ledger {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, to wake it early (it sleeps between batches).
    thread: Option<std::thread::Thread>,
    /// Queued rows past which a send wakes the writer instead of leaving it to its timer.
    wake_at: u64,
}

impl Ledger {
    /// Opens the state database and starts the writer thread.
    pub fn open(settings: LedgerSettings) -> Result<Ledger, StateError> {
        let conn = state::open(&settings.path)?;
        // A zero capacity would be a rendezvous channel, dropping nearly every row.
        let (tx, rx) = mpsc::sync_channel(settings.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let writer = writer::Writer::new(conn, rx, shared.clone(), &settings);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run())
            .map_err(StateError::Spawn)?;
        Ok(Ledger {
            tx,
            shared,
            thread: Some(handle.thread().clone()),
            writer: Mutex::new(Some(handle)),
            wake_at: wake_at(settings.queue_capacity),
        })
    }

    /// Queues a usage row. Never blocks: a full queue drops the row (counted and logged).
    pub fn record(&self, row: LedgerRow) {
        self.send(Msg::Row(Box::new(row)));
    }

    /// Queues an audit-log entry, stamped now; same queue and rules as `record`.
    pub fn audit(&self, actor: &str, action: &str, subject: &str, detail: &str) {
        self.send(Msg::Audit(AuditRow {
            ts_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
        }));
    }

    fn send(&self, msg: Msg) {
        // Counted before the send so the writer's decrement never runs first.
        let queued = self.shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        let why = match self.tx.try_send(msg) {
            Ok(()) => {
                if queued >= self.wake_at {
                    self.wake();
                }
                return;
            }
            Err(TrySendError::Full(_)) => "the queue is full (the disk is slower than traffic)",
            Err(TrySendError::Disconnected(_)) => "the ledger is closed",
        };
        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
        self.shared.dropped(1, why);
    }

    fn wake(&self) {
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }

    pub fn counters(&self) -> LedgerCounters {
        LedgerCounters {
            queued: self.shared.queued.load(Ordering::Relaxed),
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// Blocks until everything queued so far is committed (or given up on as dropped).
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        self.wake();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            self.wake();
            // An error means the writer is gone; nothing more will be committed anyway.
            let _ = done.recv();
        }
    }

    /// Commits what is queued and stops the writer. Idempotent; later rows are dropped.
    pub fn close(&self) {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(handle) = handle else { return };
        // Blocks while the queue is full: the writer, woken, is draining it.
        self.wake();
        let _ = self.tx.send(Msg::Stop);
        self.wake();
        if handle.join().is_err() {
            tracing::error!("the ledger writer panicked");
        }
    }

    /// A ledger with no writer, handing back the queue's far end.
    #[cfg(test)]
    fn detached(capacity: usize) -> (Ledger, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let ledger = Ledger {
            tx,
            shared: Arc::new(Shared::default()),
            writer: Mutex::new(None),
            thread: None,
            wake_at: wake_at(capacity),
        };
        (ledger, rx)
    }
}

/// A quarter full: early enough that a burst between two timer wake-ups never fills
/// the queue, late enough that steady traffic never wakes the writer.
fn wake_at(capacity: usize) -> u64 {
    (capacity as u64 / 4).max(1)
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn row(i: usize) -> LedgerRow {
        LedgerRow {
            ts_ms: now_ms(),
            request_id: format!("req-{i}"),
            key_name: Some("alice".into()),
            model: Some("gpt".into()),
            deployment: Some("east".into()),
            tried: vec!["west".into(), "east".into()],
            plugins: vec![PluginNote {
                plugin: "pii-redact".into(),
                action: "redacted 2".into(),
            }],
            stream: true,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_micros: 42,
            latency_us: 1_000,
            ttft_us: Some(200),
            status: 200,
            stream_outcome: Some(StreamOutcome::Completed),
            payload: Some(Payload {
                request: format!("{{\"n\":{i}}}"),
                response: None,
            }),
            ..LedgerRow::default()
        }
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    /// Polls until `written` reaches `n`; false after 5 s.
    fn written_reaches(ledger: &Ledger, n: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if ledger.counters().written >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn rows_are_committed_on_the_writers_timer_without_a_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = LedgerSettings::new(dir.path().join("state.db"));
        settings.flush_every = Duration::from_millis(20);
        let ledger = Ledger::open(settings).expect("open");
        ledger.record(row(1));
        assert!(written_reaches(&ledger, 1), "{:?}", ledger.counters());
    }

    #[test]
    fn a_filling_queue_wakes_the_sleeping_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = LedgerSettings::new(dir.path().join("state.db"));
        // The timer alone would not fire during the test.
        settings.flush_every = Duration::from_secs(3600);
        settings.queue_capacity = 8;
        let ledger = Ledger::open(settings).expect("open");
        for i in 0..4 {
            ledger.record(row(i));
        }
        assert!(written_reaches(&ledger, 2), "{:?}", ledger.counters());
        assert_eq!(ledger.counters().dropped, 0);
    }

    #[test]
    fn rows_from_many_threads_are_all_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let ledger = Arc::new(Ledger::open(LedgerSettings::new(&path)).expect("open"));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    for i in 0..2_500 {
                        ledger.record(row(t * 2_500 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        ledger.flush();
        let conn = state::open(&path).expect("reopen");
        assert_eq!(count(&conn, "requests"), 10_000);
        assert_eq!(
            ledger.counters(),
            LedgerCounters {
                queued: 0,
                written: 10_000,
                dropped: 0
            }
        );
        let (tried, plugins, outcome): (String, String, String) = conn
            .query_row(
                "SELECT tried, plugins, stream_outcome FROM requests LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("row");
        assert_eq!(tried, r#"["west","east"]"#);
        assert_eq!(
            plugins,
            r#"[{"plugin":"pii-redact","action":"redacted 2"}]"#
        );
        assert_eq!(outcome, "completed");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let (ledger, _rx) = Ledger::detached(8);
        for i in 0..20 {
            ledger.record(row(i));
        }
        ledger.audit("cli", "revoke", "alice", "");
        assert_eq!(
            ledger.counters(),
            LedgerCounters {
                queued: 8,
                written: 0,
                dropped: 13
            }
        );
    }

    #[test]
    fn close_commits_pending_rows_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let ledger = Ledger::open(LedgerSettings::new(&path)).expect("open");
        for i in 0..100 {
            ledger.record(row(i));
        }
        ledger.audit("cli", "create", "alice", "team=a");
        ledger.close();
        ledger.close();
        ledger.record(row(100));
        assert_eq!(ledger.counters().dropped, 1);
        drop(ledger);
        let conn = state::open(&path).expect("reopen");
        assert_eq!(count(&conn, "requests"), 100);
        assert_eq!(count(&conn, "audit"), 1);
    }

    #[test]
    fn a_failed_batch_is_counted_and_the_writer_carries_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let ledger = Ledger::open(LedgerSettings::new(&path)).expect("open");
        let other = state::open(&path).expect("second connection");
        other
            .execute_batch("ALTER TABLE requests RENAME TO hidden")
            .expect("hide table");
        ledger.record(row(1));
        ledger.flush();
        assert_eq!(ledger.counters().dropped, 1);
        other
            .execute_batch("ALTER TABLE hidden RENAME TO requests")
            .expect("restore table");
        ledger.record(row(2));
        ledger.flush();
        assert_eq!(ledger.counters().written, 1);
        assert_eq!(count(&other, "requests"), 1);
    }

    #[test]
    fn payloads_are_stored_only_when_enabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        for store in [false, true] {
            let path = dir.path().join(format!("state-{store}.db"));
            let mut settings = LedgerSettings::new(&path);
            settings.store_payloads = store;
            let ledger = Ledger::open(settings).expect("open");
            ledger.record(row(1));
            ledger.close();
            let conn = state::open(&path).expect("reopen");
            assert_eq!(count(&conn, "requests"), 1);
            assert_eq!(count(&conn, "payloads"), i64::from(store));
        }
    }

    #[test]
    fn retention_deletes_only_old_payloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = state::open(&dir.path().join("state.db")).expect("open");
        for (id, ts) in [("old", 1_000), ("edge", 2_000), ("new", 3_000)] {
            conn.execute(
                "INSERT INTO payloads (request_id, ts_ms, request) VALUES (?1, ?2, '{}')",
                (id, ts),
            )
            .expect("insert");
        }
        assert_eq!(prune_payloads(&conn, 2_000).expect("prune"), 1);
        let left: Vec<String> = conn
            .prepare("SELECT request_id FROM payloads ORDER BY ts_ms")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(left, ["edge", "new"]);
    }
}
