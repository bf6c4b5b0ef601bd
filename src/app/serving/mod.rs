//! Production serving (issue 12): the caches in front of page assembly, the event stream
//! behind `recordEvents`, and what a page does when one of them is down. The mode is
//! configuration: with `REDIS_URL` the lists and trending counts live in Redis, with
//! `NATS_URL` events travel over NATS JetStream; without them (the embedded default) an
//! in-process cache and bus do the same jobs with nothing to install. Sticky-bucket documents
//! are read from Redis in front of the database in production mode, from the database alone
//! in the embedded one (`sticky`). The engine sees none of
//! it: it is handed candidate lists and a live trending list (`engine::page::CandidateLists`).

pub mod cache;
pub mod lists;
pub mod segments;
pub mod sticky;
pub mod stream;
pub mod trending;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::domain::{EventAction, Millis, Profile, ProfileId, TitleId};
use crate::engine::history::History;
use crate::store::outbox::StreamEvent;
use crate::store::records::{NewEvent, RecordSummary};
use crate::store::{Store, StoreError};
use cache::{Breaker, CacheError, ListCache, MemoryCache, Redis, RedisCache};
use lists::ProfileLists;
use segments::SegmentCache;
use sticky::{DatabaseSticky, RedisSticky, StickyStore};
use stream::{Consumers, EventStream, InProcessBus, NatsStream, Relay};
use trending::{LiveTrending, MemoryTrending, RedisTrending, TrendingCounts};

/// How production serving is set up (`REDIS_URL`, `NATS_URL`, `MARQUEE_KEY_PREFIX`).
#[derive(Debug, Clone, Default)]
pub struct ServingConfig {
    pub redis_url: Option<String>,
    pub nats_url: Option<String>,
    /// Prefix of Redis keys and of the stream's name and subject (default `marquee`): several
    /// deployments (or test runs) can share one Redis and one NATS.
    pub key_prefix: Option<String>,
    /// Compute segment lists on every page instead of keeping them (`--segment-cache false`).
    pub no_segment_cache: bool,
    /// Compute every profile's candidate lists on every page (`--list-cache false`).
    pub no_list_cache: bool,
}

/// How long a profile's candidate lists are kept (a list is keyed by the history it was made
/// from, so this bounds memory and the drift of "now"-dependent scores, not correctness).
pub const LIST_TTL: Duration = Duration::from_secs(15 * 60);
/// How stale a country's live trending list may be on a replica that heard of no play.
pub const TRENDING_NEAR_TTL: Duration = Duration::from_secs(1);
/// How long a replica remembers a profile (and its history) it served, to serve it a page
/// while the database is down.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(30 * 60);

/// The serving dependencies every request shares.
pub struct Serving {
    /// Per-profile candidate lists: decoded near copies in front of the shared list cache
    /// (the store behind `segments` too).
    pub lists: Arc<ProfileLists>,
    /// Whether pages keep and look up their per-profile lists in `lists`; off, every page
    /// computes them (to measure what the cache saves).
    pub list_cache: bool,
    /// Segment lists (shared by every profile of an audience): a near cache in front of
    /// `lists`' store.
    pub segments: Arc<SegmentCache>,
    /// Live trending per country, behind its near cache.
    pub trending: Arc<LiveTrending>,
    pub stream: Arc<dyn EventStream>,
    /// Sticky-bucket documents: the database, with Redis in front in production mode.
    pub sticky: Arc<dyn StickyStore>,
    /// Wakes the outbox relay after events were committed.
    pub outbox: Arc<Notify>,
    /// The last profile and history served per profile id, kept current by the stream: what
    /// a page falls back to while the database is down.
    pub snapshots: moka::future::Cache<String, Arc<(Profile, History)>>,
    /// Whether the database is worth asking: after a transient failure pages go straight to
    /// their fallback and writes answer `UNAVAILABLE` for `DATABASE_BACKOFF`, instead of each
    /// waiting for the pool's timeout.
    pub database: Breaker,
    /// `embedded` or e.g. `redis+nats`, for the start-up line.
    pub mode: String,
}

/// How long the database is not asked after a transient failure.
pub const DATABASE_BACKOFF: Duration = Duration::from_millis(1000);

impl Serving {
    /// In-process cache, counts and bus: nothing to install.
    pub fn embedded() -> Self {
        Self::assemble(
            Arc::new(MemoryCache::new(64 << 20, LIST_TTL)),
            Arc::new(MemoryTrending::default()),
            Arc::new(InProcessBus::default()),
            Arc::new(DatabaseSticky),
            "embedded".into(),
            true,
            true,
        )
    }

    /// Redis and/or NATS as configured; the embedded part for what is not.
    pub async fn connect(cfg: &ServingConfig) -> anyhow::Result<Self> {
        let prefix = cfg.key_prefix.as_deref().unwrap_or("marquee");
        type Parts = (
            Arc<dyn ListCache>,
            Arc<dyn TrendingCounts>,
            Arc<dyn StickyStore>,
        );
        let (lists, counts, sticky): Parts = match &cfg.redis_url {
            Some(url) => {
                let redis = Redis::connect(url, prefix)?;
                (
                    Arc::new(RedisCache {
                        redis: redis.clone(),
                    }),
                    Arc::new(RedisTrending {
                        redis: redis.clone(),
                    }),
                    Arc::new(RedisSticky::new(redis)),
                )
            }
            None => (
                Arc::new(MemoryCache::new(64 << 20, LIST_TTL)),
                Arc::new(MemoryTrending::default()),
                Arc::new(DatabaseSticky),
            ),
        };
        let stream: Arc<dyn EventStream> = match &cfg.nats_url {
            Some(url) => Arc::new(NatsStream::connect(url, prefix).await?),
            None => Arc::new(InProcessBus::default()),
        };
        let mode = match (&cfg.redis_url, &cfg.nats_url) {
            (None, None) => "embedded".to_owned(),
            _ => format!(
                "lists in {}, sticky buckets from {}, events over {}",
                lists.kind(),
                sticky.kind(),
                stream.kind()
            ),
        };
        Ok(Self::assemble(
            lists,
            counts,
            stream,
            sticky,
            mode,
            !cfg.no_segment_cache,
            !cfg.no_list_cache,
        ))
    }

    fn assemble(
        lists: Arc<dyn ListCache>,
        counts: Arc<dyn TrendingCounts>,
        stream: Arc<dyn EventStream>,
        sticky: Arc<dyn StickyStore>,
        mode: String,
        segment_cache: bool,
        list_cache: bool,
    ) -> Self {
        Self {
            segments: Arc::new(SegmentCache::new(lists.clone(), segment_cache)),
            lists: Arc::new(ProfileLists::new(lists)),
            list_cache,
            trending: Arc::new(LiveTrending::new(counts, TRENDING_NEAR_TTL)),
            stream,
            sticky,
            outbox: Arc::new(Notify::new()),
            snapshots: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(SNAPSHOT_TTL)
                .build(),
            database: Breaker::new(crate::telemetry::Dependency::Database, DATABASE_BACKOFF),
            mode,
        }
    }

    /// Starts the stream's consumers and the outbox relay; the relay stops when `stop` is
    /// notified (then `relay.drain()` flushes what is left).
    pub fn start(&self, store: Store, stop: Arc<Notify>) -> Relay {
        self.stream.start(Arc::new(StreamConsumers {
            trending: self.trending.clone(),
            snapshots: self.snapshots.clone(),
        }));
        let relay = Relay {
            store,
            stream: self.stream.clone(),
            wake: self.outbox.clone(),
        };
        tokio::spawn(relay.clone().run(stop));
        relay
    }
}

/// The trending key of a profile's country.
pub fn country_key(country: Option<&str>) -> &str {
    country.unwrap_or(trending::NO_COUNTRY)
}

/// What serving does with an event it hears of.
struct StreamConsumers {
    trending: Arc<LiveTrending>,
    snapshots: moka::future::Cache<String, Arc<(Profile, History)>>,
}

/// Plays are what trending counts.
fn is_play(kind: &str) -> bool {
    matches!(kind, "PLAY" | "COMPLETE")
}

#[async_trait]
impl Consumers for StreamConsumers {
    async fn every_replica(&self, e: &StreamEvent) {
        if is_play(&e.kind) {
            self.trending
                .invalidate(country_key(e.country.as_deref()))
                .await;
        }
        // The snapshot follows the stored history, so a page served from it while the
        // database is down still honours, say, a thumbs-down given on another replica.
        if let Some(snapshot) = self.snapshots.get(&e.profile_id).await {
            let action = e
                .kind
                .parse()
                .ok()
                .and_then(|kind| EventAction::from_parts(kind, e.value).ok());
            match (action, TitleId::parse(&e.title_id)) {
                (Some(action), Ok(title)) => {
                    let (profile, mut history) = (*snapshot).clone();
                    history.apply(&title, action, e.occurred_at);
                    self.snapshots
                        .insert(e.profile_id.clone(), Arc::new((profile, history)))
                        .await;
                }
                _ => self.snapshots.invalidate(&e.profile_id).await,
            }
        }
    }

    async fn once(&self, e: &StreamEvent) -> Result<(), CacheError> {
        if is_play(&e.kind) {
            self.trending
                .counts
                .add(
                    country_key(e.country.as_deref()),
                    &e.title_id,
                    e.occurred_at,
                )
                .await?;
            self.trending
                .invalidate(country_key(e.country.as_deref()))
                .await;
        }
        Ok(())
    }
}

impl super::AppState {
    /// `UNAVAILABLE` at once while the database is known to be down (the breaker), so a write
    /// does not wait for the pool's timeout.
    pub fn check_database(&self) -> Result<(), StoreError> {
        if self.serving.database.allows() {
            Ok(())
        } else {
            Err(StoreError::not_asked())
        }
    }

    /// Stores a profile's events with their outbox rows (committed together: the
    /// acknowledgement), then wakes the outbox relay.
    pub async fn record_events(
        &self,
        profile: &ProfileId,
        events: &[NewEvent],
        now: Millis,
    ) -> Result<RecordSummary, StoreError> {
        let started = std::time::Instant::now();
        let result = self.store.record_events(profile, events, now).await;
        match &result {
            Ok(summary) => {
                self.serving.database.record(true, started);
                if summary.accepted > 0 {
                    self.serving.outbox.notify_one();
                }
            }
            Err(e) if e.is_transient() => self.serving.database.record(false, started),
            Err(_) => {}
        }
        result
    }
}
