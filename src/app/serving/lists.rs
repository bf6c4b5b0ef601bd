//! A profile's candidate lists between its pages (`engine::page::KeptLists`). Two tiers, as
//! for segment lists: a near cache in this process holding the decoded lists, in front of the
//! shared `ListCache` (Redis in production, where any replica's page can use them; the
//! in-process byte cache in the embedded default).
//!
//! The near tier is what makes a kept list cheap: a page reads its candidates in place and
//! copies the few it places, where decoding the bytes made every candidate (its reason, its
//! evidence) anew on every page. Nothing is invalidated for correctness: a key names the
//! profile, its history's version, the model and the page variant (`home::lists_key`), so a
//! changed history or a new model never finds an older page's lists, on any replica.

use std::sync::Arc;
use std::time::Duration;

use super::cache::{CacheError, ListCache};
use crate::engine::page::KeptLists;
use crate::telemetry;

/// How long a replica keeps a profile's decoded lists without asking the shared cache again.
/// Short, as it bounds memory for profiles that are not browsing now; the key rules out
/// staleness.
pub const LISTS_NEAR_TTL: Duration = Duration::from_secs(60);
/// Near-cache capacity in (estimated) bytes of decoded lists.
const NEAR_BYTES: u64 = 64 << 20;
/// `telemetry::cache_lookup`'s `cache` label of a near-tier hit.
const NEAR: &str = "near";

/// The two tiers.
pub struct ProfileLists {
    near: moka::future::Cache<String, Arc<KeptLists>>,
    shared: Arc<dyn ListCache>,
}

impl ProfileLists {
    pub fn new(shared: Arc<dyn ListCache>) -> Self {
        Self {
            near: moka::future::Cache::builder()
                .max_capacity(NEAR_BYTES)
                .weigher(|k: &String, v: &Arc<KeptLists>| {
                    u32::try_from(k.len() + decoded_size(v)).unwrap_or(u32::MAX)
                })
                .time_to_live(LISTS_NEAR_TTL)
                .build(),
            shared,
        }
    }

    /// The lists kept under `key` by either tier; `Err` when the shared cache failed (the page
    /// computes its lists and is marked degraded). Lists that cannot be decoded are a miss.
    pub async fn get(&self, key: &str) -> Result<Option<Arc<KeptLists>>, CacheError> {
        if let Some(lists) = self.near.get(key).await {
            telemetry::cache_lookup(NEAR, true);
            return Ok(Some(lists));
        }
        telemetry::cache_lookup(NEAR, false);
        let kind = self.shared.kind();
        let Some(bytes) = self.shared.get(key).await? else {
            telemetry::cache_lookup(kind, false);
            return Ok(None);
        };
        match postcard::from_bytes::<KeptLists>(&bytes) {
            Ok(lists) => {
                telemetry::cache_lookup(kind, true);
                let lists = Arc::new(lists);
                self.near.insert(key.to_owned(), lists.clone()).await;
                Ok(Some(lists))
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cached lists; recomputing");
                telemetry::cache_lookup(kind, false);
                Ok(None)
            }
        }
    }

    /// Keeps `lists` under `key` in both tiers (the shared one written when this returns).
    pub async fn put(&self, key: String, lists: KeptLists) -> Result<(), CacheError> {
        let bytes =
            postcard::to_allocvec(&lists).map_err(|e| CacheError(format!("not encodable: {e}")))?;
        self.near.insert(key.clone(), Arc::new(lists)).await;
        self.shared.put(&key, bytes, super::LIST_TTL).await
    }

    /// `put`, off the request path.
    pub fn keep(self: &Arc<Self>, key: String, lists: KeptLists) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.put(key, lists).await {
                tracing::debug!(error = %e, "candidate lists not kept");
            }
        });
    }

    /// Forgets this replica's near copies (the engine was swapped: no page asks for the old
    /// model's lists any more).
    pub fn clear(&self) {
        self.near.invalidate_all();
    }
}

/// About how much memory decoded lists take: the near tier's weigher.
fn decoded_size(lists: &KeptLists) -> usize {
    lists
        .iter()
        .map(|(id, rows)| {
            id.len()
                + rows
                    .iter()
                    .map(|row| {
                        64 + row
                            .candidates
                            .iter()
                            .map(|c| {
                                std::mem::size_of_val(c)
                                    + c.reason.as_ref().map_or(0, |r| r.len())
                                    + 4 * c.evidence.len()
                            })
                            .sum::<usize>()
                    })
                    .sum::<usize>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::serving::cache::MemoryCache;
    use crate::engine::sources::{Candidate, SourcedRow};

    fn lists(titles: &[u32]) -> KeptLists {
        let row = SourcedRow {
            key: None,
            title: None,
            anchor: None,
            candidates: titles
                .iter()
                .map(|&t| Candidate {
                    title: t,
                    score: 1.0,
                    reason: Some(format!("because {t}")),
                    evidence: vec![t + 1],
                    progress: None,
                })
                .collect(),
        };
        KeptLists::from([("top-picks".to_owned(), Arc::new(vec![row]))])
    }

    #[tokio::test]
    async fn lists_come_back_from_either_tier() {
        let shared: Arc<dyn ListCache> =
            Arc::new(MemoryCache::new(1 << 20, Duration::from_secs(60)));
        let kept = ProfileLists::new(shared.clone());
        assert!(kept.get("p1").await.unwrap().is_none());
        kept.put("p1".into(), lists(&[3, 1, 2])).await.unwrap();
        assert_eq!(*kept.get("p1").await.unwrap().unwrap(), lists(&[3, 1, 2]));
        // Another replica (a second near tier over the same shared cache) decodes them.
        let other = ProfileLists::new(shared.clone());
        assert_eq!(*other.get("p1").await.unwrap().unwrap(), lists(&[3, 1, 2]));
        // A near copy outlives nothing it should not: cleared, the shared tier answers.
        kept.clear();
        assert_eq!(*kept.get("p1").await.unwrap().unwrap(), lists(&[3, 1, 2]));
    }

    #[tokio::test]
    async fn unreadable_bytes_are_a_miss() {
        let shared: Arc<dyn ListCache> =
            Arc::new(MemoryCache::new(1 << 20, Duration::from_secs(60)));
        shared
            .put("p1", vec![0xff; 7], Duration::from_secs(60))
            .await
            .unwrap();
        let kept = ProfileLists::new(shared);
        assert!(kept.get("p1").await.unwrap().is_none());
    }
}
