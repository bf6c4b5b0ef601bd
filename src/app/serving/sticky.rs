//! Where sticky-bucket documents live (issue 11): `StickyStore`. The database
//! (`sticky_assignments`) always holds the durable copy; in production mode (`REDIS_URL`)
//! Redis sits in front of it, so a page reads its profile's documents with one `MGET` and the
//! database is asked only for identities Redis does not know (a new profile, or after a Redis
//! restart: Redis here keeps nothing on disk), which are then written back to Redis.
//!
//! A document holds every assignment of one identity, and evaluation saves the whole document
//! back with its new assignment. So a document must never be taken as absent when it may
//! exist: saving over it would lose the assignments it holds. A read answers documents only
//! when the state of every identity asked for is known; otherwise `None`, and the page is
//! assigned without sticky bucketing and saves nothing (as while the database is down).

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis;

use super::cache::Redis;
use crate::domain::Millis;
use crate::store::Store;
use crate::telemetry::Dependency;

/// What a page's read of its sticky documents found.
#[derive(Debug, Default)]
pub struct StickyRead {
    /// `(identity, document JSON)` of the identities that have one; `None` when some
    /// identity's document could not be read (assign without sticky bucketing, save nothing).
    pub docs: Option<Vec<(String, String)>>,
    /// Dependencies that failed on the way: the page is marked degraded.
    pub skipped: Vec<Dependency>,
}

impl StickyRead {
    /// The database could not say: the page assigns without sticky bucketing, degraded.
    fn database_failed(e: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "sticky buckets unavailable; assigning without them");
        Self {
            docs: None,
            skipped: vec![Dependency::Database],
        }
    }
}

/// Sticky-bucket documents by identity (`attributeName||attributeValue`).
#[async_trait]
pub trait StickyStore: Send + Sync {
    /// `database` or `redis`: where documents are read from first.
    fn kind(&self) -> &'static str;
    /// The documents of `identities`. `database`: false when the database is known to be down
    /// (only a cache in front of it may answer).
    async fn load(&self, store: &Store, identities: &[String], database: bool) -> StickyRead;
    /// Creates or replaces documents `(identity, document JSON)`, durably in the database
    /// (and in the cache in front of it). Returns the dependencies that failed.
    async fn save(&self, store: &Store, docs: &[(String, String)], now: Millis) -> Vec<Dependency>;
}

/// The embedded default: documents in the database only (one indexed read per page of a
/// profile in a running experiment, one upsert when it is first assigned).
pub struct DatabaseSticky;

#[async_trait]
impl StickyStore for DatabaseSticky {
    fn kind(&self) -> &'static str {
        "database"
    }

    async fn load(&self, store: &Store, identities: &[String], database: bool) -> StickyRead {
        if !database {
            return StickyRead::default();
        }
        match store.sticky_documents(identities).await {
            Ok(docs) => StickyRead {
                docs: Some(docs),
                skipped: vec![],
            },
            Err(e) => StickyRead::database_failed(&e),
        }
    }

    async fn save(&self, store: &Store, docs: &[(String, String)], now: Millis) -> Vec<Dependency> {
        match store.save_sticky_documents(docs, now).await {
            Ok(()) => vec![],
            Err(e) => {
                tracing::warn!(error = %e, "sticky-bucket assignments not stored");
                vec![Dependency::Database]
            }
        }
    }
}

/// What Redis holds for an identity known to have no document (so that pages of profiles
/// outside every experiment do not ask the database each time). Never a valid document.
const ABSENT: &str = "-";
/// How long Redis keeps a document: bounds its memory; an expired one is read back from the
/// database.
const DOCUMENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long Redis remembers that an identity has no document.
const ABSENT_TTL: Duration = Duration::from_secs(3600);
/// How long this replica distrusts Redis's copy of a document it failed to write there.
const STALE_TTL: Duration = Duration::from_secs(3600);

/// Production mode: Redis in front of the database.
///
/// - Read: one `MGET`; identities Redis does not know are read from the database and written
///   back with `SET NX` (never over a document another replica saved meanwhile), an absent
///   one as `ABSENT`. Redis down (or its breaker open): the database answers alone and the
///   page is degraded. Database known down: Redis answers alone, if it knows every identity.
/// - Save: the database first (the durable copy), then Redis (`SET`). When Redis cannot be
///   written its copy may be older than the database's: this replica then reads those
///   identities from the database until it has rewritten them (another replica may read the
///   older copy meanwhile; it lacks only the assignments made during the outage, which a
///   profile gets again by the same hash unless the weights changed in between).
pub struct RedisSticky {
    pub redis: Redis,
    stale: moka::future::Cache<String, ()>,
}

impl RedisSticky {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            stale: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(STALE_TTL)
                .build(),
        }
    }

    fn key(&self, identity: &str) -> String {
        self.redis.key(&format!("sticky:{identity}"))
    }

    /// Writes database reads back to Redis: documents not already there, `ABSENT` for
    /// identities without one; over whatever is there for identities this replica distrusts.
    async fn backfill(&self, identities: &[&String], found: &[(String, String)]) {
        let mut pipe = redis::pipe();
        for id in identities {
            let (value, ttl) = match found.iter().find(|(i, _)| i == *id) {
                Some((_, doc)) => (doc.as_str(), DOCUMENT_TTL),
                None => (ABSENT, ABSENT_TTL),
            };
            let cmd = pipe
                .cmd("SET")
                .arg(self.key(id))
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            if !self.stale.contains_key(id.as_str()) {
                cmd.arg("NX");
            }
            cmd.ignore();
        }
        match self.redis.query::<()>(&pipe).await {
            Ok(()) => {
                for id in identities {
                    self.stale.invalidate(id.as_str()).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "sticky documents not written back to redis"),
        }
    }
}

#[async_trait]
impl StickyStore for RedisSticky {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn load(&self, store: &Store, identities: &[String], database: bool) -> StickyRead {
        let mut pipe = redis::pipe();
        pipe.cmd("MGET")
            .arg(identities.iter().map(|i| self.key(i)).collect::<Vec<_>>());
        let cached = match self.redis.query::<(Vec<Option<String>>,)>(&pipe).await {
            Ok((values,)) if values.len() == identities.len() => values,
            Ok(_) | Err(_) => {
                // Redis cannot say: the database alone, as in embedded mode.
                let mut read = DatabaseSticky.load(store, identities, database).await;
                read.skipped.insert(0, Dependency::Redis);
                return read;
            }
        };
        let mut docs = Vec::new();
        let mut missing: Vec<&String> = Vec::new();
        for (identity, value) in identities.iter().zip(cached) {
            match value {
                _ if self.stale.contains_key(identity.as_str()) => missing.push(identity),
                Some(v) if v == ABSENT => {}
                Some(doc) => docs.push((identity.clone(), doc)),
                None => missing.push(identity),
            }
        }
        if missing.is_empty() {
            return StickyRead {
                docs: Some(docs),
                skipped: vec![],
            };
        }
        if !database {
            // Identities Redis does not know may well have a document in the database.
            return StickyRead::default();
        }
        let owned: Vec<String> = missing.iter().map(|s| (*s).clone()).collect();
        match store.sticky_documents(&owned).await {
            Ok(found) => {
                self.backfill(&missing, &found).await;
                docs.extend(found);
                StickyRead {
                    docs: Some(docs),
                    skipped: vec![],
                }
            }
            Err(e) => StickyRead::database_failed(&e),
        }
    }

    async fn save(&self, store: &Store, docs: &[(String, String)], now: Millis) -> Vec<Dependency> {
        let mut failed = DatabaseSticky.save(store, docs, now).await;
        let mut pipe = redis::pipe();
        for (identity, doc) in docs {
            pipe.cmd("SET")
                .arg(self.key(identity))
                .arg(doc.as_str())
                .arg("PX")
                .arg(DOCUMENT_TTL.as_millis() as u64)
                .ignore();
        }
        match self.redis.query::<()>(&pipe).await {
            Ok(()) => {
                for (identity, _) in docs {
                    self.stale.invalidate(identity.as_str()).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "sticky documents not written to redis");
                for (identity, _) in docs {
                    self.stale.insert(identity.clone(), ()).await;
                }
                failed.push(Dependency::Redis);
            }
        }
        failed
    }
}
