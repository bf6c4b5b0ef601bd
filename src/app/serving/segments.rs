//! Segment lists between pages and replicas (`engine::segments`: New Releases and the genre
//! rows, per audience). Two tiers: a near cache in this process (moka; decoded lists, short time
//! to live), in front of the shared `ListCache` — Redis in production, where one replica computes
//! a list and the others read it; the in-process list cache in the embedded default.
//!
//! Nothing is ever invalidated for correctness: a key names everything its list depends on
//! (model version, catalogue fingerprint, audience, genre or window of years), so a new model or
//! catalogue finds no old list, on any replica, whatever message it missed. No event on the
//! stream changes a segment (a thumbs-down is a per-request filter applied on top), so the
//! stream has nothing to say to them; the near cache is emptied when this replica swaps its
//! engine (`clear`), which only frees the old model's lists early.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::cache::{CacheError, ListCache};
use crate::engine::segments::{Segment, SegmentKey};
use crate::telemetry::{self, SegmentOutcome};

/// How long a replica keeps a segment list without asking the shared cache again. Short: it
/// bounds memory for lists nobody asks for any more (old models, rare audiences), not
/// staleness, which the keys rule out.
pub const SEGMENT_NEAR_TTL: Duration = Duration::from_secs(30);
/// How long the shared cache keeps a segment list.
pub const SEGMENT_TTL: Duration = Duration::from_secs(60 * 60);
/// Near-cache capacity in bytes (a 1,000-title list is about 8 KB).
const NEAR_BYTES: u64 = 32 << 20;

/// The two tiers.
pub struct SegmentCache {
    near: moka::future::Cache<SegmentKey, Arc<Segment>>,
    shared: Arc<dyn ListCache>,
    /// False: pages compute every segment list themselves (`MARQUEE_SEGMENT_CACHE=false`, to
    /// measure what the cache saves).
    enabled: bool,
}

/// The key of a segment in the shared cache (beside `lists:` of the per-profile lists).
fn shared_key(key: &SegmentKey) -> String {
    format!("seg:{key}")
}

impl SegmentCache {
    pub fn new(shared: Arc<dyn ListCache>, enabled: bool) -> Self {
        Self {
            near: moka::future::Cache::builder()
                .max_capacity(NEAR_BYTES)
                .weigher(|k: &SegmentKey, v: &Arc<Segment>| {
                    u32::try_from(k.as_str().len() + 8 * v.entries.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(SEGMENT_NEAR_TTL)
                .build(),
            shared,
            enabled,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The lists of `keys` that either tier holds; `Err` (with what was found before) when the
    /// shared cache failed — the page computes the others and is marked degraded.
    pub async fn fetch(
        &self,
        keys: Vec<SegmentKey>,
    ) -> (HashMap<SegmentKey, Arc<Segment>>, Result<(), CacheError>) {
        let mut found = HashMap::new();
        if !self.enabled {
            return (found, Ok(()));
        }
        let mut missing = Vec::new();
        for key in keys {
            match self.near.get(&key).await {
                Some(segment) => {
                    telemetry::segment_lookup(key.kind(), SegmentOutcome::Near);
                    found.insert(key, segment);
                }
                None => missing.push(key),
            }
        }
        if missing.is_empty() {
            return (found, Ok(()));
        }
        let names: Vec<String> = missing.iter().map(shared_key).collect();
        let values = match self.shared.get_many(&names).await {
            Ok(values) => values,
            Err(e) => {
                for key in &missing {
                    telemetry::segment_lookup(key.kind(), SegmentOutcome::Error);
                }
                return (found, Err(e));
            }
        };
        for (key, value) in missing.into_iter().zip(values) {
            let decoded = value.and_then(|bytes| match postcard::from_bytes::<Segment>(&bytes) {
                Ok(segment) => Some(Arc::new(segment)),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "unreadable segment list; recomputing");
                    None
                }
            });
            match decoded {
                Some(segment) => {
                    telemetry::segment_lookup(key.kind(), SegmentOutcome::Shared);
                    self.near.insert(key.clone(), segment.clone()).await;
                    found.insert(key, segment);
                }
                None => telemetry::segment_lookup(key.kind(), SegmentOutcome::Miss),
            }
        }
        (found, Ok(()))
    }

    /// Keeps the lists a page computed, in both tiers, off the request path.
    pub fn keep(self: &Arc<Self>, computed: HashMap<SegmentKey, Arc<Segment>>) {
        if !self.enabled || computed.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            for (key, segment) in computed {
                this.near.insert(key.clone(), segment.clone()).await;
                match postcard::to_allocvec(&*segment) {
                    Ok(bytes) => {
                        if let Err(e) = this.shared.put(&shared_key(&key), bytes, SEGMENT_TTL).await
                        {
                            tracing::debug!(error = %e, "segment list not shared");
                            // The shared cache is down: the rest would fail the same way.
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "segment list not encodable"),
                }
            }
        });
    }

    /// Forgets this replica's near copies (the engine was swapped: its lists are the old
    /// model's, which no page asks for any more).
    pub fn clear(&self) {
        self.near.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::serving::cache::MemoryCache;
    use crate::domain::{AccountId, Profile, ProfileId, Title, TitleId};
    use crate::engine::catalog::Catalog;
    use crate::engine::filters::Audience;
    use crate::engine::model::{ARTIFACT_FORMAT, Model, ModelArtifact, TrainParams};
    use crate::engine::segments::SegmentKind;

    fn key(version: &str) -> SegmentKey {
        let catalog = Catalog::new(vec![Title::new(TitleId::parse("1").unwrap(), "t")]);
        let artifact = ModelArtifact {
            format: ARTIFACT_FORMAT,
            trained_at: 0,
            params: TrainParams::default(),
            interactions: 0,
            popularity: vec![],
            trending: Default::default(),
            item_weights: Default::default(),
            neighbors: Default::default(),
            content_neighbors: Default::default(),
            embeddings: None,
            popular_now: None,
        };
        let model = Model::load(version, &artifact, &catalog);
        let profile = Profile {
            id: ProfileId::parse("p").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "p".into(),
            is_kids: true,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        };
        SegmentKey::new(
            SegmentKind::Genre,
            &model,
            &catalog,
            Audience::of(&profile),
            "Animation",
        )
    }

    fn list() -> Arc<Segment> {
        Arc::new(Segment {
            entries: vec![(0, 1.0)],
            complete: true,
        })
    }

    /// A list one "replica" kept is read by another through the shared tier (then near), and
    /// the shared key names the whole segment key.
    #[tokio::test]
    async fn a_list_kept_by_one_replica_is_read_by_another() {
        let shared: Arc<dyn ListCache> = Arc::new(MemoryCache::new(1 << 20, SEGMENT_TTL));
        let a = Arc::new(SegmentCache::new(shared.clone(), true));
        let b = Arc::new(SegmentCache::new(shared.clone(), true));
        let k = key("m1");
        assert_eq!(shared_key(&k), format!("seg:{k}"));
        let (found, ok) = b.fetch(vec![k.clone()]).await;
        assert!(found.is_empty() && ok.is_ok());
        a.keep(HashMap::from([(k.clone(), list())]));
        let mut found = HashMap::new();
        for _ in 0..100 {
            found = b.fetch(vec![k.clone()]).await.0;
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(found.get(&k), Some(&list()));
        // Another model's key finds nothing: no invalidation needed.
        assert!(b.fetch(vec![key("m2")]).await.0.is_empty());
        // Cleared near copies come back from the shared tier.
        b.clear();
        assert_eq!(b.fetch(vec![k.clone()]).await.0.len(), 1);
        // Disabled: nothing is read or kept.
        let off = Arc::new(SegmentCache::new(shared, false));
        assert!(off.fetch(vec![k]).await.0.is_empty());
    }
}
