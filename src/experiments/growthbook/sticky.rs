//! Sticky bucketing: once a user is assigned a variation it is persisted, so later changes
//! to weights, coverage or targeting do not move them to another variation.
//!
//! Assignments are stored per identity (`attributeName||attributeValue`) in a
//! [`StickyAssignmentsDocument`], keyed by `{experimentKey}__{bucketVersion}`. Bumping an
//! experiment's `bucketVersion` therefore starts fresh assignments, and `minBucketVersion`
//! excludes users who still hold an assignment from an older version.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use super::types::StickyAssignmentsDocument;

/// Persistence for sticky-bucket documents (a database, a cookie, a cache, ...).
///
/// Methods take `&self` so one store can be shared across requests; implementations use
/// interior mutability. Storage errors are the implementation's to log: evaluation must
/// go on without sticky buckets rather than fail.
pub trait StickyBucketService: Send + Sync {
    /// The document for one identity, if any.
    fn get_assignments(
        &self,
        attribute_name: &str,
        attribute_value: &str,
    ) -> Option<StickyAssignmentsDocument>;

    /// Create or replace the document for `doc.attribute_name||doc.attribute_value`.
    fn save_assignments(&self, doc: &StickyAssignmentsDocument);

    /// All documents for the given identities (attribute name -> value), keyed by
    /// [`sticky_attribute_key`]. Override to batch the lookups.
    fn get_all_assignments(
        &self,
        attributes: &BTreeMap<String, String>,
    ) -> HashMap<String, StickyAssignmentsDocument> {
        attributes
            .iter()
            .filter_map(|(name, value)| {
                self.get_assignments(name, value)
                    .map(|doc| (sticky_attribute_key(name, value), doc))
            })
            .collect()
    }
}

/// An in-process [`StickyBucketService`], for tests and single-node setups.
#[derive(Debug, Default)]
pub struct InMemoryStickyBucketService {
    docs: Mutex<HashMap<String, StickyAssignmentsDocument>>,
}

impl InMemoryStickyBucketService {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every stored document, keyed by [`sticky_attribute_key`].
    pub fn documents(&self) -> HashMap<String, StickyAssignmentsDocument> {
        self.docs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl StickyBucketService for InMemoryStickyBucketService {
    fn get_assignments(
        &self,
        attribute_name: &str,
        attribute_value: &str,
    ) -> Option<StickyAssignmentsDocument> {
        // A panic elsewhere while holding the lock cannot leave a half-written map
        // (inserts are atomic), so a poisoned lock is safe to keep using.
        self.docs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&sticky_attribute_key(attribute_name, attribute_value))
            .cloned()
    }

    fn save_assignments(&self, doc: &StickyAssignmentsDocument) {
        self.docs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                sticky_attribute_key(&doc.attribute_name, &doc.attribute_value),
                doc.clone(),
            );
    }
}

/// `attributeName||attributeValue`: the key of one identity's document.
pub fn sticky_attribute_key(attribute_name: &str, attribute_value: &str) -> String {
    format!("{attribute_name}||{attribute_value}")
}

/// `{experimentKey}__{bucketVersion}`: the key of one assignment inside a document.
pub fn sticky_experiment_key(experiment_key: &str, bucket_version: u32) -> String {
    format!("{experiment_key}__{bucket_version}")
}
