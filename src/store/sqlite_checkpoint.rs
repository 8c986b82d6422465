//! Copies SQLite's write-ahead log into the database file on a thread of its own.
//!
//! In WAL mode a commit appends the changed pages to the log; a checkpoint later copies them into
//! the database file and syncs it. SQLite's default runs that checkpoint inside the commit that
//! takes the log past 1,000 pages, so the request that stored a large reconciliation also paid
//! for copying all of it (about half of its commit at 100k matches). Here the writer never
//! checkpoints: after each of its calls it wakes this thread, which checkpoints once the log has
//! grown past the same size. The checkpoint is `PASSIVE`: it never waits for or blocks readers or
//! the writer, and copies what they leave it. What a commit wrote is in the log, so nothing is
//! lost if the process stops before the copy; SQLite finishes the copy when the file is next
//! opened or its last connection closes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The log size past which the thread checkpoints: SQLite's own default (1,000 pages of 4 KiB).
pub const CHECKPOINT_AFTER_BYTES: u64 = 1_000 * 4_096;

/// The checkpointing thread of one database file; stopped (and joined) when dropped.
pub struct Checkpointer {
    /// Taken (closed) when dropped, which ends the thread's loop.
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    done: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts the thread for the database file at `path` (already in WAL mode).
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(StoreError::backend)?;
        let (wake, woken) = channel();
        let done = Arc::new(AtomicU64::new(0));
        let wal = wal_path(path);
        let counter = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &wal, &woken, &counter))
            .map_err(StoreError::backend)?;
        Ok(Checkpointer { wake: Some(wake), thread: Some(thread), done })
    }

    /// Tells the thread the writer has finished a call; cheap, never blocks.
    pub fn nudge(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.send(());
        }
    }

    /// How many checkpoints the thread has run.
    pub fn checkpoints(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn run(conn: &Connection, wal: &Path, woken: &Receiver<()>, done: &AtomicU64) {
    while woken.recv().is_ok() {
        // Calls that finished while the last checkpoint ran need one look, not one each.
        while woken.try_recv().is_ok() {}
        let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
        if size < CHECKPOINT_AFTER_BYTES {
            continue;
        }
        let started = std::time::Instant::now();
        // (busy, frames in the log, frames copied); busy when another checkpoint runs.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((busy, frames, copied)) => {
                done.fetch_add(1, Ordering::AcqRel);
                tracing::debug!(busy, frames, copied, seconds = started.elapsed().as_secs_f64(), "wal checkpoint");
            }
            Err(e) => tracing::warn!(error = %e, "wal checkpoint failed; the next write tries again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::store::{RecordQuery, RecordStore, SqliteStore, StoreError, TenantId};
    use crate::workload::{self, Profile};

    #[tokio::test]
    async fn the_log_is_copied_into_the_database_file_after_the_writes_without_a_commit_doing_it(
    ) -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(StoreError::backend)?;
        let store = SqliteStore::open_dir(dir.path())?;
        let tenant = TenantId::new("t").map_err(StoreError::backend)?;
        let w = workload::generate(&Profile::realistic().with_records(20_000), 1, 1);
        for chunk in w.records.chunks(5_000) {
            store.upsert_records(&tenant, chunk).await?;
        }
        let file = dir.path().join("bankrec.sqlite3");
        let wal = dir.path().join("bankrec.sqlite3-wal");
        let wal_len = std::fs::metadata(&wal).map_err(StoreError::backend)?.len();
        assert!(
            wal_len > super::CHECKPOINT_AFTER_BYTES,
            "the writes fill the log past the threshold ({wal_len} bytes)"
        );
        // The commits leave their pages in the log; the checkpointing thread copies them.
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.wal_checkpoints() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(store.wal_checkpoints() > 0, "no checkpoint ran");
        let deadline = Instant::now() + Duration::from_secs(20);
        let copied = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) * 2 > wal_len;
        while !copied() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(copied(), "the database file did not receive the log's pages");
        // And the data reads back from a store opened afresh.
        drop(store);
        let again = SqliteStore::open_dir(dir.path())?;
        let page = again.list_records(&tenant, &RecordQuery { limit: 10, ..RecordQuery::default() }).await?;
        assert_eq!(page.items.len(), 10);
        Ok(())
    }
}
