//! The evaluation context: who the user is, what the payload says, and per-user state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::experiment::resolve_hash_attribute;
use super::js;
use super::sticky::StickyBucketService;
use super::types::{
    ContextualBanditDefinition, Experiment, ExperimentResult, FeatureDefinition, FeatureResult,
    SavedGroups, StickyAssignmentsDocument,
};

/// Called once per distinct exposure (user, experiment, variation) when a user is put in
/// an experiment, so the caller can log it to its analytics pipeline.
pub type TrackingCallback = Arc<dyn Fn(&Experiment, &ExperimentResult) + Send + Sync>;

/// Everything evaluation needs for one user. Deserializes from the JSON context shape used
/// by the GrowthBook SDKs (`attributes`, `features`, `savedGroups`, `forcedVariations`,
/// `qaMode`, `enabled`, `url`, `contextualBandits`, `stickyBucketAssignmentDocs`); the
/// sticky-bucket service and tracking callback are set in code.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Context {
    /// User attributes (a JSON object), targeted by conditions and hashed for bucketing.
    pub attributes: Value,
    pub features: HashMap<String, FeatureDefinition>,
    pub saved_groups: SavedGroups,
    /// Experiment key -> variation index, bypassing targeting and hashing (QA, previews).
    pub forced_variations: HashMap<String, i64>,
    /// Feature key -> value, bypassing all rules (source `override`).
    pub forced_feature_values: HashMap<String, Value>,
    /// In QA mode nobody is put into an experiment unless a variation is forced.
    pub qa_mode: bool,
    /// When false, no experiment assigns anyone (features still evaluate).
    pub enabled: bool,
    /// The current page URL; its query string can force variations (`?exp-key=1`).
    pub url: String,
    pub contextual_bandits: HashMap<String, ContextualBanditDefinition>,
    /// Sticky-bucket documents loaded for this user, keyed `attributeName||attributeValue`.
    /// Filled by [`Context::refresh_sticky_buckets`] and updated as users are bucketed.
    pub sticky_bucket_assignment_docs: HashMap<String, StickyAssignmentsDocument>,
    /// Enables sticky bucketing when set.
    #[serde(skip)]
    pub sticky_bucket_service: Option<Arc<dyn StickyBucketService>>,
    #[serde(skip)]
    pub tracking_callback: Option<TrackingCallback>,
    /// Exposures already reported, so a callback fires once per distinct exposure.
    #[serde(skip)]
    tracked_experiments: HashSet<String>,
}

impl Default for Context {
    fn default() -> Self {
        Self {
            attributes: Value::Object(serde_json::Map::new()),
            features: HashMap::new(),
            saved_groups: SavedGroups::new(),
            forced_variations: HashMap::new(),
            forced_feature_values: HashMap::new(),
            qa_mode: false,
            enabled: true,
            url: String::new(),
            contextual_bandits: HashMap::new(),
            sticky_bucket_assignment_docs: HashMap::new(),
            sticky_bucket_service: None,
            tracking_callback: None,
            tracked_experiments: HashSet::new(),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("attributes", &self.attributes)
            .field("features", &self.features.len())
            .field("qa_mode", &self.qa_mode)
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("sticky_bucketing", &self.sticky_bucket_service.is_some())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Parse a context from its JSON form.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Evaluate a feature for this user (see [`eval_feature`](super::eval_feature)).
    pub fn eval_feature(&mut self, key: &str) -> FeatureResult {
        self.evaluator().eval_feature(key, &HashSet::new())
    }

    /// Run an experiment for this user (see [`run_experiment`](super::run_experiment)).
    pub fn run(&mut self, experiment: &Experiment) -> ExperimentResult {
        self.evaluator()
            .run_experiment(experiment, None, &HashSet::new())
    }

    /// Load this user's sticky-bucket documents from the service, replacing
    /// [`Context::sticky_bucket_assignment_docs`].
    ///
    /// Call it after setting attributes and features (and again if they change): which
    /// documents are relevant depends on the hash and fallback attributes of the
    /// experiment rules and on the user's values for them.
    pub fn refresh_sticky_buckets(&mut self) {
        let Some(service) = self.sticky_bucket_service.clone() else {
            return;
        };
        let identities = self.sticky_bucket_identities();
        self.sticky_bucket_assignment_docs = service.get_all_assignments(&identities);
    }

    fn sticky_bucket_identities(&self) -> BTreeMap<String, String> {
        sticky_bucket_identities(&self.features, &self.attributes)
    }

    /// Borrow the context as an evaluator: read-only payload plus the mutable per-user
    /// state (sticky documents, tracked exposures) as disjoint borrows.
    pub(crate) fn evaluator(&mut self) -> Evaluator<'_> {
        Evaluator {
            attributes: &self.attributes,
            features: &self.features,
            saved_groups: &self.saved_groups,
            forced_variations: &self.forced_variations,
            forced_feature_values: &self.forced_feature_values,
            qa_mode: self.qa_mode,
            enabled: self.enabled,
            url: &self.url,
            contextual_bandits: &self.contextual_bandits,
            sticky: self.sticky_bucket_service.as_deref().map(|service| Sticky {
                service,
                docs: &mut self.sticky_bucket_assignment_docs,
            }),
            tracking_callback: self.tracking_callback.as_ref(),
            tracked_experiments: &mut self.tracked_experiments,
        }
    }
}

/// Evaluates features for one user from a payload it borrows rather than copies into a
/// [`Context`] (which owns its features): for a server that evaluates every feature on every
/// request. Evaluates exactly as a `Context` with the same attributes, features, saved groups,
/// forced variations and sticky bucketing (`with_sticky`) and everything else at its default
/// (no tracking callback, QA mode, URL, forced feature values or contextual bandits).
pub struct BorrowedContext<'a> {
    attributes: &'a Value,
    features: &'a HashMap<String, FeatureDefinition>,
    saved_groups: &'a SavedGroups,
    forced_variations: &'a HashMap<String, i64>,
    /// Empty: borrowed as a `Context`'s defaults would be.
    no_values: HashMap<String, Value>,
    no_bandits: HashMap<String, ContextualBanditDefinition>,
    tracked_experiments: HashSet<String>,
    /// Sticky bucketing, when the caller loaded the user's documents (`with_sticky`).
    sticky: Option<(
        &'a dyn StickyBucketService,
        HashMap<String, StickyAssignmentsDocument>,
    )>,
}

impl<'a> BorrowedContext<'a> {
    pub fn new(
        attributes: &'a Value,
        features: &'a HashMap<String, FeatureDefinition>,
        saved_groups: &'a SavedGroups,
        forced_variations: &'a HashMap<String, i64>,
    ) -> Self {
        Self {
            attributes,
            features,
            saved_groups,
            forced_variations,
            no_values: HashMap::new(),
            no_bandits: HashMap::new(),
            tracked_experiments: HashSet::new(),
            sticky: None,
        }
    }

    /// Sticky bucketing with the user's documents already loaded (keyed
    /// `attributeName||attributeValue`, as `Context::sticky_bucket_assignment_docs`); new
    /// assignments go to `service.save_assignments`. As a `Context` with the service set and
    /// `refresh_sticky_buckets` called.
    pub fn with_sticky(
        mut self,
        service: &'a dyn StickyBucketService,
        docs: HashMap<String, StickyAssignmentsDocument>,
    ) -> Self {
        self.sticky = Some((service, docs));
        self
    }

    /// As [`Context::eval_feature`].
    pub fn eval_feature(&mut self, key: &str) -> FeatureResult {
        Evaluator {
            attributes: self.attributes,
            features: self.features,
            saved_groups: self.saved_groups,
            forced_variations: self.forced_variations,
            forced_feature_values: &self.no_values,
            qa_mode: false,
            enabled: true,
            url: "",
            contextual_bandits: &self.no_bandits,
            sticky: self.sticky.as_mut().map(|(service, docs)| Sticky {
                service: *service,
                docs,
            }),
            tracking_callback: None,
            tracked_experiments: &mut self.tracked_experiments,
        }
        .eval_feature(key, &HashSet::new())
    }
}

/// Sticky bucketing is on exactly when a service is configured.
pub(crate) struct Sticky<'a> {
    pub(crate) service: &'a dyn StickyBucketService,
    pub(crate) docs: &'a mut HashMap<String, StickyAssignmentsDocument>,
}

/// The evaluation engine's view of a [`Context`]; the feature and experiment logic is
/// implemented on it in `feature.rs` and `experiment.rs`.
pub(crate) struct Evaluator<'a> {
    pub(crate) attributes: &'a Value,
    pub(crate) features: &'a HashMap<String, FeatureDefinition>,
    pub(crate) saved_groups: &'a SavedGroups,
    pub(crate) forced_variations: &'a HashMap<String, i64>,
    pub(crate) forced_feature_values: &'a HashMap<String, Value>,
    pub(crate) qa_mode: bool,
    pub(crate) enabled: bool,
    pub(crate) url: &'a str,
    pub(crate) contextual_bandits: &'a HashMap<String, ContextualBanditDefinition>,
    pub(crate) sticky: Option<Sticky<'a>>,
    pub(crate) tracking_callback: Option<&'a TrackingCallback>,
    pub(crate) tracked_experiments: &'a mut HashSet<String>,
}

/// attribute name -> user's value, for every attribute an experiment rule of `features` may
/// bucket on: the identities whose sticky-bucket documents evaluation may read.
pub fn sticky_bucket_identities(
    features: &HashMap<String, FeatureDefinition>,
    attributes: &Value,
) -> BTreeMap<String, String> {
    let names: HashSet<&str> = features
        .values()
        .flat_map(|f| f.rules.iter().flatten())
        .filter(|r| r.variations.is_some() || r.contextual_variations.is_some())
        .flat_map(|r| {
            let hash = r.hash_attribute.as_deref().filter(|a| !a.is_empty());
            [Some(hash.unwrap_or("id")), r.fallback_attribute.as_deref()]
        })
        .flatten()
        .collect();
    names
        .into_iter()
        .map(|name| {
            let (_, value) = resolve_hash_attribute(attributes, Some(name), None);
            (name.to_owned(), js::to_string_or_json(&value))
        })
        .collect()
}
