//! Where candidate lists are kept between pages: `ListCache`, in process (moka; the embedded
//! default) or in Redis (deadpool-redis; shared by every replica). A cache is an optimisation:
//! every failure is a `CacheError` the page treats as a miss (and marks `degraded`), never as
//! a failed request.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis;

use crate::telemetry;

/// Why a cache (or Redis-held counts) could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CacheError(pub String);

/// Byte values under string keys, with a time to live.
#[async_trait]
pub trait ListCache: Send + Sync {
    /// `memory` or `redis`: the `cache` label of the hit-ratio metric.
    fn kind(&self) -> &'static str;
    async fn get(&self, key: &str) -> Result<Option<Arc<Vec<u8>>>, CacheError>;
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    /// `get` of each key, in order (Redis: one round trip).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Arc<Vec<u8>>>>, CacheError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
}

/// The embedded default: a bounded in-process cache (moka, by size in bytes; entries live at
/// most `ttl` of the cache, whatever `put` asks for).
pub struct MemoryCache {
    cache: moka::future::Cache<String, Arc<Vec<u8>>>,
}

impl MemoryCache {
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Arc<Vec<u8>>| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl ListCache for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn get(&self, key: &str) -> Result<Option<Arc<Vec<u8>>>, CacheError> {
        Ok(self.cache.get(key).await)
    }
    async fn put(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), CacheError> {
        self.cache.insert(key.to_owned(), Arc::new(value)).await;
        Ok(())
    }
}

/// How long one Redis command may take before the page goes on without it. Redis answers in
/// well under a millisecond on a private network; waiting longer only delays pages.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, Redis is not asked again for this long (pages are computed in process
/// meanwhile), so an outage costs one timeout, not one per page.
const REDIS_BACKOFF: Duration = Duration::from_millis(500);

/// A small circuit breaker: after a failure the dependency is not asked for `backoff`, so an
/// outage costs one timeout per `backoff`, not one per request; the first requests after it
/// ask again. A failure is ignored when a request succeeded within `backoff`, or after the
/// failing one started: it saw an outage that success ended, or one dead pooled connection
/// (a slow timeout or a stale connection must not reopen a recovered breaker).
#[derive(Clone)]
pub struct Breaker {
    dependency: telemetry::Dependency,
    backoff: Duration,
    state: Arc<Mutex<BreakerState>>,
}

#[derive(Default)]
struct BreakerState {
    down_until: Option<Instant>,
    last_ok: Option<Instant>,
}

impl Breaker {
    pub fn new(dependency: telemetry::Dependency, backoff: Duration) -> Self {
        Self {
            dependency,
            backoff,
            state: Arc::default(),
        }
    }

    /// Whether the dependency may be asked now.
    pub fn allows(&self) -> bool {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.down_until.is_none_or(|until| Instant::now() >= until)
    }

    /// What a request that started at `started` found.
    pub fn record(&self, ok: bool, started: Instant) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if ok {
            guard.down_until = None;
            guard.last_ok = Some(now);
        } else if guard
            .last_ok
            .is_none_or(|last| started >= last && now - last >= self.backoff)
        {
            guard.down_until = Some(now + self.backoff);
        } else {
            return;
        }
        telemetry::dependency_up(self.dependency, ok);
    }
}

/// A Redis server through a deadpool-redis pool, every key under `prefix`, behind a
/// `Breaker` (`REDIS_BACKOFF`).
#[derive(Clone)]
pub struct Redis {
    pool: deadpool_redis::Pool,
    prefix: String,
    breaker: Breaker,
}

impl Redis {
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let mut cfg = deadpool_redis::Config::from_url(url);
        let timeouts = deadpool_redis::Timeouts {
            wait: Some(REDIS_TIMEOUT),
            create: Some(REDIS_TIMEOUT),
            recycle: Some(REDIS_TIMEOUT),
        };
        cfg.pool = Some(deadpool_redis::PoolConfig {
            max_size: 32,
            timeouts,
            ..Default::default()
        });
        let pool = cfg
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            breaker: Breaker::new(telemetry::Dependency::Redis, REDIS_BACKOFF),
        })
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Runs `pipe` (bounded by `REDIS_TIMEOUT`), unless Redis failed a moment ago.
    pub async fn query<T: redis::FromRedisValue + Send>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, CacheError> {
        if !self.breaker.allows() {
            return Err(CacheError("redis: skipped after a recent failure".into()));
        }
        let started = Instant::now();
        let result = tokio::time::timeout(REDIS_TIMEOUT, async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| CacheError(format!("redis: {e}")))?;
            pipe.query_async::<T>(&mut conn)
                .await
                .map_err(|e| CacheError(format!("redis: {e}")))
        })
        .await
        .unwrap_or_else(|_| {
            Err(CacheError(format!(
                "redis: no answer within {REDIS_TIMEOUT:?}"
            )))
        });
        self.breaker.record(result.is_ok(), started);
        result
    }
}

/// Lists in Redis, shared by every replica.
pub struct RedisCache {
    pub redis: Redis,
}

#[async_trait]
impl ListCache for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }
    async fn get(&self, key: &str) -> Result<Option<Arc<Vec<u8>>>, CacheError> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(self.redis.key(key));
        let (value,): (Option<Vec<u8>>,) = self.redis.query(&pipe).await?;
        Ok(value.map(Arc::new))
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Arc<Vec<u8>>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.redis.key(key));
        }
        pipe.add_command(mget);
        let (values,): (Vec<Option<Vec<u8>>>,) = self.redis.query(&pipe).await?;
        Ok(values.into_iter().map(|v| v.map(Arc::new)).collect())
    }
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.redis.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .ignore();
        self.redis.query::<()>(&pipe).await
    }
}
