//! The impression log: every served row item, written in batches off the request path.
//!
//! A page request hands its impressions to a bounded queue and returns; one writer task drains
//! the queue into the store in batches. When the queue is full the page is still served and
//! its impressions are counted as dropped (`marquee_impressions_dropped_total` on /metrics):
//! the request path never waits on the database. On shutdown the writer drains what is queued.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::Store;
use crate::store::logging::PageImpressions;

/// Pages that may wait for the writer. A page has ~100 items, so this is ~800k items.
pub const QUEUE_PAGES: usize = 8192;
/// Row items per database transaction: large batches amortise the commit.
const BATCH_ITEMS: usize = 20_000;

#[derive(Debug, Default)]
pub struct ImpressionStats {
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Debug)]
pub struct ImpressionLog {
    /// `None` once closed for shutdown.
    tx: Mutex<Option<mpsc::Sender<PageImpressions>>>,
    pub stats: Arc<ImpressionStats>,
}

impl ImpressionLog {
    /// Starts the writer; `close` and await the handle to flush at shutdown.
    pub fn start(store: Store) -> (ImpressionLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_PAGES);
        let stats = Arc::new(ImpressionStats::default());
        let writer = tokio::spawn(write_loop(store, rx, stats.clone()));
        let log = ImpressionLog {
            tx: Mutex::new(Some(tx)),
            stats,
        };
        (log, writer)
    }

    /// Stops accepting impressions; the writer drains the queue and ends.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }

    /// Queues a page's impressions without waiting.
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

    /// Items queued but not yet written (or dropped by a failed batch).
    pub fn backlog(&self) -> u64 {
        let s = &self.stats;
        s.queued
            .load(Ordering::Relaxed)
            .saturating_sub(s.written.load(Ordering::Relaxed))
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<PageImpressions>,
    stats: Arc<ImpressionStats>,
) {
    let mut batch: Vec<PageImpressions> = Vec::new();
    while let Some(page) = rx.recv().await {
        let mut items = page.items.len();
        batch.push(page);
        // Take whatever else is already waiting, up to a batch.
        while items < BATCH_ITEMS {
            match rx.try_recv() {
                Ok(page) => {
                    items += page.items.len();
                    batch.push(page);
                }
                Err(_) => break,
            }
        }
        write(&store, &mut batch, &stats).await;
    }
    if !batch.is_empty() {
        write(&store, &mut batch, &stats).await;
    }
}

/// Writes and clears `batch`, retrying transient failures; a batch that keeps failing is
/// counted and logged rather than blocking every later page.
async fn write(store: &Store, batch: &mut Vec<PageImpressions>, stats: &ImpressionStats) {
    let n: u64 = batch.iter().map(|p| p.items.len() as u64).sum();
    for attempt in 0..5u32 {
        match store.write_impressions(batch).await {
            Ok(_) => {
                stats.written.fetch_add(n, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), attempt, "writing impressions failed");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    stats.dropped.fetch_add(n, Ordering::Relaxed);
    // No longer waiting: keep the backlog figure meaningful.
    stats.queued.fetch_sub(n, Ordering::Relaxed);
    tracing::error!(
        items = n,
        "impressions dropped after repeated write failures"
    );
    batch.clear();
}
