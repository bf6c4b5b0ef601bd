//! Real-time trending per country: plays counted from the event stream into ten-minute
//! buckets, read as a decayed sum over the last six hours (half-life one hour), so "Trending
//! Now" moves within seconds of plays. Counts live in Redis sorted sets in production (one
//! per country and bucket, shared by every replica, each event counted once by the stream's
//! shared consumer) and in memory in the embedded default. `LiveTrending` puts a near cache
//! with a short time to live in front, which the stream also invalidates.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis;

use super::cache::{CacheError, Redis};
use crate::domain::Millis;
use crate::telemetry;

/// Width of one counting bucket.
pub const BUCKET_MS: Millis = 10 * 60 * 1000;
/// How fast a play stops counting: half as much an hour later.
pub const HALF_LIFE_MS: f64 = 60.0 * 60.0 * 1000.0;
/// Buckets read: six hours. Older plays weigh under 2 % and are forgotten.
pub const WINDOW_BUCKETS: i64 = 36;
/// Titles kept per country list.
pub const TOP: usize = 200;
/// The key of plays by profiles without a country.
pub const NO_COUNTRY: &str = "-";

fn bucket_of(at: Millis) -> i64 {
    at.div_euclid(BUCKET_MS)
}

/// The weight of a bucket's plays at `now` (plays "in the future" of a replayed clock weigh 1).
fn weight(bucket: i64, now: Millis) -> f64 {
    let age = (now - (bucket + 1) * BUCKET_MS).max(0) as f64;
    0.5f64.powf(age / HALF_LIFE_MS)
}

fn best_first(scores: HashMap<String, f64>) -> Vec<(String, f64)> {
    let mut list: Vec<(String, f64)> = scores.into_iter().filter(|e| e.1 > 0.0).collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(TOP);
    list
}

/// Decayed play counts per country.
#[async_trait]
pub trait TrendingCounts: Send + Sync {
    async fn add(&self, country: &str, title: &str, at: Millis) -> Result<(), CacheError>;
    /// Best first, at most `TOP`.
    async fn top(&self, country: &str, now: Millis) -> Result<Vec<(String, f64)>, CacheError>;
}

/// One country's plays: bucket → title → plays.
type Buckets = BTreeMap<i64, HashMap<String, f64>>;

/// In process: country → its buckets.
#[derive(Default)]
pub struct MemoryTrending {
    counts: Mutex<HashMap<String, Buckets>>,
}

#[async_trait]
impl TrendingCounts for MemoryTrending {
    async fn add(&self, country: &str, title: &str, at: Millis) -> Result<(), CacheError> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let buckets = counts.entry(country.to_owned()).or_default();
        *buckets
            .entry(bucket_of(at))
            .or_default()
            .entry(title.to_owned())
            .or_default() += 1.0;
        // Forget buckets well behind the newest one.
        if let Some(&newest) = buckets.keys().next_back() {
            buckets.retain(|b, _| *b > newest - 2 * WINDOW_BUCKETS);
        }
        Ok(())
    }

    async fn top(&self, country: &str, now: Millis) -> Result<Vec<(String, f64)>, CacheError> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut scores: HashMap<String, f64> = HashMap::new();
        let current = bucket_of(now);
        if let Some(buckets) = counts.get(country) {
            for (bucket, titles) in buckets.range(current - WINDOW_BUCKETS + 1..) {
                let w = weight(*bucket, now);
                for (title, n) in titles {
                    *scores.entry(title.clone()).or_default() += w * n;
                }
            }
        }
        Ok(best_first(scores))
    }
}

/// In Redis: a sorted set per country and bucket (`<prefix>:trending:<country>:<bucket>`),
/// expiring after the window.
pub struct RedisTrending {
    pub redis: Redis,
}

impl RedisTrending {
    fn key(&self, country: &str, bucket: i64) -> String {
        self.redis.key(&format!("trending:{country}:{bucket}"))
    }
}

#[async_trait]
impl TrendingCounts for RedisTrending {
    async fn add(&self, country: &str, title: &str, at: Millis) -> Result<(), CacheError> {
        let key = self.key(country, bucket_of(at));
        let mut pipe = redis::pipe();
        pipe.cmd("ZINCRBY").arg(&key).arg(1).arg(title).ignore();
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(2 * WINDOW_BUCKETS * BUCKET_MS)
            .ignore();
        self.redis.query::<()>(&pipe).await
    }

    async fn top(&self, country: &str, now: Millis) -> Result<Vec<(String, f64)>, CacheError> {
        let current = bucket_of(now);
        let buckets: Vec<i64> = (current - WINDOW_BUCKETS + 1..=current).collect();
        let mut pipe = redis::pipe();
        for b in &buckets {
            pipe.cmd("ZREVRANGE")
                .arg(self.key(country, *b))
                .arg(0)
                .arg(TOP as i64 - 1)
                .arg("WITHSCORES");
        }
        let lists: Vec<Vec<(String, f64)>> = self.redis.query(&pipe).await?;
        let mut scores: HashMap<String, f64> = HashMap::new();
        for (bucket, list) in buckets.iter().zip(lists) {
            let w = weight(*bucket, now);
            for (title, n) in list {
                *scores.entry(title).or_default() += w * n;
            }
        }
        Ok(best_first(scores))
    }
}

/// The counts behind a near cache: what a page reads.
pub struct LiveTrending {
    pub counts: Arc<dyn TrendingCounts>,
    near: moka::future::Cache<String, Arc<Vec<(String, f64)>>>,
}

impl LiveTrending {
    /// `ttl`: how stale a country's list may be on this replica when no event invalidated it.
    pub fn new(counts: Arc<dyn TrendingCounts>, ttl: Duration) -> Self {
        Self {
            counts,
            near: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub async fn top(
        &self,
        country: &str,
        now: Millis,
    ) -> Result<Arc<Vec<(String, f64)>>, CacheError> {
        if let Some(list) = self.near.get(country).await {
            telemetry::cache_lookup("trending-near", true);
            return Ok(list);
        }
        telemetry::cache_lookup("trending-near", false);
        let list = Arc::new(self.counts.top(country, now).await?);
        self.near.insert(country.to_owned(), list.clone()).await;
        Ok(list)
    }

    /// A play in `country` was counted: its list is read again on the next page.
    pub async fn invalidate(&self, country: &str) {
        self.near.invalidate(country).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recent_plays_outrank_older_ones_and_countries_are_apart() {
        let t = MemoryTrending::default();
        let now = 100 * BUCKET_MS;
        for _ in 0..3 {
            t.add("US", "old", now - 4 * 3_600_000).await.unwrap();
        }
        t.add("US", "new", now - 1).await.unwrap();
        t.add("US", "new", now - 2).await.unwrap();
        t.add("DE", "german", now).await.unwrap();
        let us = t.top("US", now).await.unwrap();
        assert_eq!(us[0].0, "new");
        assert_eq!(us[1].0, "old");
        assert!(us.iter().all(|e| e.0 != "german"));
        // Outside the window: forgotten.
        let later = t.top("US", now + 7 * 3_600_000).await.unwrap();
        assert!(later.is_empty(), "{later:?}");
    }
}
