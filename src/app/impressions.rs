//! The impression log: every served page — its row items and the experiment exposures it
//! caused — written in batches off the request path.
//!
//! A page request hands its page to a bounded queue and returns; one writer task drains the
//! queue into the store in batches. When the database is briefly unavailable the writer keeps
//! its batch and retries with capped exponential backoff, while new pages wait in the queue;
//! only what no longer fits in the queue is dropped (counted in
//! `marquee_impressions_dropped_total` on /metrics): the request path never waits on the
//! database. A batch that fails for another reason (a defect, not an outage) is retried a few
//! times and then dropped and counted, so it cannot block every later page. On shutdown the
//! writer drains the queue, giving a database that is down `SHUTDOWN_GRACE` to come back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::ProfileId;
use crate::store::logging::PageImpressions;
use crate::store::{Store, StoreError};

/// Pages that may wait for the writer. A page has ~100 items, so this is ~800k items, or
/// minutes of a storage outage at a few hundred pages per second.
pub const QUEUE_PAGES: usize = 8192;
/// Row items per database transaction: large batches amortise the commit.
const BATCH_ITEMS: usize = 20_000;
/// How long the writer waits for more pages before writing a batch that is not full. Without
/// it a busy server wrote one or two pages per transaction, and each of a transaction's five
/// or so statements is a hand-off to the database connection's thread and back (context
/// switches that cost more server CPU than the writing); with it a transaction carries every
/// page of the last `LINGER`. A page's impressions reach the database this much later.
const LINGER: Duration = Duration::from_millis(20);
/// Backoff between attempts at a failing batch: doubles from the first to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(2);
/// Attempts at a batch that fails with a non-transient error before it is dropped.
const ATTEMPTS_ON_DEFECT: u32 = 5;
/// How long shutdown waits for an unavailable database before dropping what is queued.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Exposures remembered as stored, to skip rewriting them with every page (forgetting one
/// only costs an idempotent insert).
const SEEN_EXPOSURES: usize = 1_000_000;

/// Counters, all monotonic (Prometheus counters); the backlog is derived from them.
#[derive(Debug, Default)]
pub struct ImpressionStats {
    /// Row items accepted into the queue.
    pub queued: AtomicU64,
    /// Row items written to the database.
    pub written: AtomicU64,
    /// Row items not logged: the queue was full, a batch kept failing with a defect, or the
    /// database stayed down through shutdown.
    pub dropped: AtomicU64,
    /// The part of `dropped` that had been queued (queued = written + abandoned + backlog).
    abandoned: AtomicU64,
    /// Failed attempts to write a batch (each one retried or counted in `dropped`).
    pub write_failures: AtomicU64,
}

impl ImpressionStats {
    /// Items queued and not yet written (nor given up on).
    pub fn backlog(&self) -> u64 {
        let done = self.written.load(Ordering::Relaxed) + self.abandoned.load(Ordering::Relaxed);
        self.queued.load(Ordering::Relaxed).saturating_sub(done)
    }
}

#[derive(Debug)]
pub struct ImpressionLog {
    /// `None` once closed for shutdown.
    tx: Mutex<Option<mpsc::Sender<PageImpressions>>>,
    /// When `close` was called: the writer's retries give up `SHUTDOWN_GRACE` after it.
    closed_at: Arc<OnceLock<Instant>>,
    pub stats: Arc<ImpressionStats>,
}

impl ImpressionLog {
    /// Starts the writer; `close` and await the handle to flush at shutdown.
    pub fn start(store: Store) -> (ImpressionLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_PAGES);
        let stats = Arc::new(ImpressionStats::default());
        let closed_at = Arc::new(OnceLock::new());
        let writer = Writer {
            store,
            stats: stats.clone(),
            closed_at: closed_at.clone(),
            seen_exposures: HashSet::new(),
        };
        let handle = tokio::spawn(writer.run(rx));
        let log = ImpressionLog {
            tx: Mutex::new(Some(tx)),
            closed_at,
            stats,
        };
        (log, handle)
    }

    /// Stops accepting pages; the writer drains the queue and ends.
    pub fn close(&self) {
        let _ = self.closed_at.set(Instant::now());
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }

    /// Queues a page without waiting.
    pub fn offer(&self, page: PageImpressions) {
        let n = page.items.len() as u64;
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().map(|tx| tx.try_send(page).is_ok()),
            Err(_) => Some(false),
        };
        match sent {
            None => {} // shutting down: the page was served after the log closed
            Some(true) => {
                self.stats.queued.fetch_add(n, Ordering::Relaxed);
            }
            Some(false) => {
                self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(items = n, "impression queue full; impressions dropped");
            }
        }
    }

    /// Items queued but not yet written (nor given up on).
    pub fn backlog(&self) -> u64 {
        self.stats.backlog()
    }
}

struct Writer {
    store: Store,
    stats: Arc<ImpressionStats>,
    closed_at: Arc<OnceLock<Instant>>,
    /// (experiment, phase, profile, variation) known to be stored.
    seen_exposures: HashSet<(String, i64, ProfileId, i64)>,
}

/// What became of a batch.
enum Outcome {
    Written,
    /// Given up on (counted as dropped); with `stop`, shutdown's grace is over and nothing
    /// more should be attempted.
    Dropped {
        stop: bool,
    },
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<PageImpressions>) {
        let mut batch: Vec<PageImpressions> = Vec::new();
        let mut giving_up = false;
        while let Some(page) = rx.recv().await {
            let mut items = page.items.len();
            batch.push(page);
            // With nothing else waiting, let `LINGER` of pages gather first. The queue is not
            // watched meanwhile, so each page offered does not wake the writer; a backlog
            // (after an outage, at shutdown) is written without waiting.
            if rx.is_empty() {
                tokio::time::sleep(LINGER).await;
            }
            // Take whatever is waiting, up to a batch.
            while items < BATCH_ITEMS {
                match rx.try_recv() {
                    Ok(page) => {
                        items += page.items.len();
                        batch.push(page);
                    }
                    Err(_) => break,
                }
            }
            if giving_up {
                self.abandon(&mut batch);
                continue;
            }
            if let Outcome::Dropped { stop: true } = self.write(&mut batch).await {
                giving_up = true;
            }
        }
    }

    /// Writes and clears `batch`: retried while the database is unavailable (until shutdown's
    /// grace runs out), and a few times on other errors.
    async fn write(&mut self, batch: &mut Vec<PageImpressions>) -> Outcome {
        self.skip_stored_exposures(batch);
        let mut delay = RETRY_FIRST;
        let mut defects = 0u32;
        loop {
            let started = Instant::now();
            let written = self.store.write_impressions(batch).await;
            crate::telemetry::record_impression_batch(started.elapsed());
            let error = match written {
                Ok(n) => {
                    self.stats.written.fetch_add(n, Ordering::Relaxed);
                    self.remember_exposures(batch);
                    batch.clear();
                    return Outcome::Written;
                }
                Err(e) => e,
            };
            self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
            let items: usize = batch.iter().map(|p| p.items.len()).sum();
            if !error.is_transient() {
                defects += 1;
                tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), attempt = defects, items, "writing impressions failed");
                if defects >= ATTEMPTS_ON_DEFECT {
                    tracing::error!(items, "impressions dropped after repeated write failures");
                    self.abandon(batch);
                    return Outcome::Dropped { stop: false };
                }
            } else {
                log_unavailable(&error, items, delay);
            }
            if let Some(closed) = self.closed_at.get() {
                let left = SHUTDOWN_GRACE.saturating_sub(closed.elapsed());
                if left.is_zero() {
                    tracing::error!(
                        items,
                        "shutting down with the database unavailable; queued impressions dropped"
                    );
                    self.abandon(batch);
                    return Outcome::Dropped { stop: true };
                }
                delay = delay.min(left);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_CAP);
        }
    }

    fn abandon(&self, batch: &mut Vec<PageImpressions>) {
        let n: u64 = batch.iter().map(|p| p.items.len() as u64).sum();
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        self.stats.abandoned.fetch_add(n, Ordering::Relaxed);
        batch.clear();
    }

    fn skip_stored_exposures(&self, batch: &mut [PageImpressions]) {
        for page in batch {
            page.exposures.retain(|e| {
                !self.seen_exposures.contains(&(
                    e.experiment_key.clone(),
                    e.phase,
                    e.profile_id.clone(),
                    e.variation_index,
                ))
            });
        }
    }

    fn remember_exposures(&mut self, batch: &[PageImpressions]) {
        if self.seen_exposures.len() > SEEN_EXPOSURES {
            self.seen_exposures.clear();
        }
        for e in batch.iter().flat_map(|p| &p.exposures) {
            self.seen_exposures.insert((
                e.experiment_key.clone(),
                e.phase,
                e.profile_id.clone(),
                e.variation_index,
            ));
        }
    }
}

/// One line per attempt would flood the log during an outage under load; the backoff keeps
/// attempts (and so lines) to one every `RETRY_CAP` at most.
fn log_unavailable(error: &StoreError, items: usize, retry_in: Duration) {
    tracing::warn!(
        error = %error,
        items,
        retry_in_ms = retry_in.as_millis() as u64,
        "database unavailable; keeping the impression batch and retrying"
    );
}
