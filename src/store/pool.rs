//! The store's connection pools, and which of their connections may be reused after storage
//! faults; write transactions report their end to that policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{AnyConnection, Connection};

use super::StoreResult;

/// Options shared by both pools: a connection is only handed out, and only goes back to the
/// pool, if `ConnectionHealth` says its state is known.
///
/// Only a PostgreSQL connection is pinged before it is handed out: a network connection can
/// die while idle, and the ping replaces it. A SQLite connection is a file handle in this
/// process, which nothing breaks while idle (what a failed write breaks is retired by
/// `ConnectionHealth`), and its ping is a round trip to the connection's worker thread — two
/// context switches for every statement. (sqlx still pings every connection it takes back,
/// which is why a page's own reads on SQLite go around it: `sqlite_reads`.)
pub(super) fn pool_options(
    max_connections: u32,
    acquire_timeout: Duration,
    health: &Arc<ConnectionHealth>,
) -> AnyPoolOptions {
    let on_release = health.clone();
    let on_acquire = health.clone();
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(!health.sweep_on_fault)
        .after_release(move |conn, meta| {
            let reusable = on_release.reusable(conn, &meta);
            Box::pin(async move { Ok(reusable) })
        })
        .before_acquire(move |conn, meta| {
            let reusable = on_acquire.reusable(conn, &meta);
            Box::pin(async move { Ok(reusable) })
        })
}

/// Which pooled connections may be reused, after storage faults.
///
/// A write transaction that did not commit (an error, or a cancelled request) returns its
/// connection with a rollback still queued; if that rollback fails — after an I/O error SQLite
/// has already rolled back, so `ROLLBACK` errors out — sqlx still counts the connection as
/// inside a transaction, and every later `BEGIN` on it fails ("begin_with at non-zero
/// transaction depth"). Such a connection is closed, never reused, on either backend.
///
/// SQLite connections can be broken by the same fault in a way no check sees: SQLite opens a
/// database file it cannot write read-only, for good. So on SQLite, when a write fails, no
/// connection that existed then is reused (each is closed when next released or acquired),
/// and when writes commit again after failures, none opened while they failed is. Reopening
/// a SQLite connection is cheap, and the pool churns only while writes fail. PostgreSQL needs
/// none of this — a connection a fault broke fails sqlx's ping and is replaced — and there a
/// sweep would turn every cancelled request into reconnections.
#[derive(Debug)]
pub(super) struct ConnectionHealth {
    base: Instant,
    /// Whether failed writes retire the pool's connections (SQLite).
    sweep_on_fault: bool,
    /// Connections created before this (nanoseconds after `base`; 0: none) are closed
    /// instead of reused.
    retire_before: AtomicU64,
    /// A write failed and none has committed since.
    faulted: AtomicBool,
}

impl ConnectionHealth {
    pub(super) fn new(sweep_on_fault: bool) -> Self {
        ConnectionHealth {
            base: Instant::now(),
            sweep_on_fault,
            retire_before: AtomicU64::new(0),
            faulted: AtomicBool::new(false),
        }
    }

    fn retire_existing(&self) {
        if self.sweep_on_fault {
            let now = self.base.elapsed().as_nanos() as u64;
            self.retire_before.fetch_max(now + 1, Ordering::Relaxed);
        }
    }

    pub(super) fn write_failed(&self) {
        self.faulted.store(true, Ordering::Relaxed);
        self.retire_existing();
    }

    fn write_committed(&self) {
        if self.faulted.swap(false, Ordering::Relaxed) {
            self.retire_existing();
        }
    }

    fn reusable(&self, conn: &AnyConnection, meta: &PoolConnectionMetadata) -> bool {
        if conn.is_in_transaction() {
            return false;
        }
        let created = self.base.elapsed().saturating_sub(meta.age).as_nanos() as u64;
        created >= self.retire_before.load(Ordering::Relaxed)
    }
}

/// A write transaction (see `Store::begin_write`). Derefs to the connection, for statements;
/// ends with `commit` or `rollback`. Dropped without either — an error returned early, a
/// request cancelled — it counts as a failed write for `ConnectionHealth`.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    outcome: WriteOutcome,
}

impl WriteTx {
    pub(super) fn new(
        tx: sqlx::Transaction<'static, sqlx::Any>,
        health: Arc<ConnectionHealth>,
    ) -> Self {
        WriteTx {
            tx,
            outcome: WriteOutcome {
                health,
                settled: false,
            },
        }
    }
}

/// Reports a write transaction's end to `ConnectionHealth`; a failure unless settled.
struct WriteOutcome {
    health: Arc<ConnectionHealth>,
    settled: bool,
}

impl Drop for WriteOutcome {
    fn drop(&mut self) {
        if !self.settled {
            self.health.write_failed();
        }
    }
}

impl WriteTx {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        let WriteTx { tx, mut outcome } = self;
        tx.commit().await?;
        outcome.settled = true;
        outcome.health.write_committed();
        Ok(())
    }

    /// Ends the transaction without writing, leaving the connection in a known state.
    pub(crate) async fn rollback(self) -> StoreResult<()> {
        let WriteTx { tx, mut outcome } = self;
        tx.rollback().await?;
        outcome.settled = true;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}
