//! Data types: the JSON payload GrowthBook serves (features, rules, experiments) and the
//! results handed back to callers. Field names follow the GrowthBook JSON (camelCase).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Saved groups referenced by `$inGroup` / `$notInGroup`: group id -> member values.
pub type SavedGroups = HashMap<String, Vec<Value>>;

/// A `[start, end)` slice of the hash space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VariationRange(pub f64, pub f64);

/// A namespace slice `[id, start, end)`: experiments in the same namespace with
/// non-overlapping slices are mutually exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace(pub String, pub f64, pub f64);

/// Per-variation metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A passthrough variation counts the user as "in the experiment" for tracking but lets
    /// feature evaluation fall through to the next rule (used for holdouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
}

/// A hash-based inclusion filter (the successor of namespaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(default)]
    pub seed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_version: Option<u32>,
    #[serde(default)]
    pub ranges: Vec<VariationRange>,
}

/// A prerequisite: feature `id` evaluated for the same user must satisfy `condition`
/// (evaluated against `{"value": <parent value>}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentCondition {
    pub id: String,
    /// Evaluated against `{"value": <parent value>}`; absent means "always passes".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// A failing gate blocks the whole feature instead of just skipping the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<bool>,
}

/// An experiment exposure recorded by a remotely evaluated force rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackData {
    pub experiment: Experiment,
    pub result: ExperimentResult,
}

/// A feature definition from the GrowthBook payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<FeatureRule>>,
}

/// One rule of a feature: a force rule (`force` present), a rollout (force + coverage or
/// range) or an experiment rule (`variations` present).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_conditions: Option<Vec<ParentCondition>>,
    /// `Some(Value::Null)` means `"force": null` was given, which still forces `null`;
    /// only an absent key makes this a non-force rule.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub force: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variations: Option<Vec<Value>>,
    /// Variations of a contextual-bandit rule. SDKs without bandit support ignore the rule
    /// (they see no `variations`); this one prefers these over `variations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual_variations: Option<Vec<Value>>,
    /// Key into [`Context::contextual_bandits`](super::Context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual_bandit_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<VariationRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<VariationRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Vec<VariationMeta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<TrackData>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_sticky_bucketing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bucket_version: Option<u32>,
}

/// An experiment, either passed to [`run_experiment`](super::run_experiment) directly or
/// built from a feature's experiment rule. Unset fields are omitted when serialized, so
/// the JSON shows exactly what the rule carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    pub key: String,
    #[serde(default)]
    pub variations: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// `Some(false)` switches the experiment off (everyone gets variation 0, not tracked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<VariationRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_conditions: Option<Vec<ParentCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// Forces a variation index for everyone who passes targeting and coverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Vec<VariationMeta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_sticky_bucketing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bucket_version: Option<u32>,
    /// The contextual-bandit leaf chosen for this user (feature rules only). Kept only when
    /// the user was hash-bucketed into the experiment; otherwise it means nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual_bandit: Option<ContextualBanditSelection>,
}

/// The outcome of running an experiment for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentResult {
    pub in_experiment: bool,
    /// Index into `variations`; 0 when not in the experiment.
    pub variation_id: usize,
    pub value: Value,
    /// True only when the variation came from hashing (not forced, not excluded).
    pub hash_used: bool,
    pub hash_attribute: String,
    /// The attribute value as given (a number stays a number), `""` if missing.
    pub hash_value: Value,
    /// The feature whose rule produced this experiment; `null` for direct runs.
    pub feature_id: Option<String>,
    /// The variation key (`meta[i].key`, else the index as a string).
    pub key: String,
    /// The user's hash in `[0, 1)`; only set when `hash_used`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
    pub sticky_bucket_used: bool,
    /// Contextual-bandit leaf (`-1` = no leaf matched, the rule's weights were used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation_weights: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandit_version: Option<i64>,
}

/// Why a feature has the value it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FeatureSource {
    UnknownFeature,
    DefaultValue,
    Force,
    /// Forced through [`Context::forced_feature_values`](super::Context).
    Override,
    Experiment,
    /// A gating prerequisite failed.
    Prerequisite,
    /// Prerequisites form a cycle.
    CyclicPrerequisite,
}

/// The outcome of evaluating a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureResult {
    pub value: Value,
    /// JS truthiness of `value`.
    pub on: bool,
    pub off: bool,
    pub source: FeatureSource,
    /// The id of the rule that decided the value, `""` if none.
    pub rule_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Experiment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_result: Option<ExperimentResult>,
}

/// A contextual-bandit definition from the payload's top-level `contextualBandits` map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextualBanditDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandit_version: Option<i64>,
    #[serde(default)]
    pub contexts: Vec<ContextualBanditLeaf>,
}

/// One leaf: the first leaf whose condition matches the user supplies the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextualBanditLeaf {
    pub leaf_id: i64,
    /// Absent means "matches everyone" (a catch-all leaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    pub weights: Vec<f64>,
}

/// The leaf selected for a user, recorded on the experiment and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextualBanditSelection {
    pub leaf_id: i64,
    pub variation_weights: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandit_version: Option<i64>,
}

/// Stored sticky-bucket assignments for one `attributeName||attributeValue` identity:
/// `"{experimentKey}__{bucketVersion}"` -> variation key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyAssignmentsDocument {
    pub attribute_name: String,
    pub attribute_value: String,
    #[serde(default)]
    pub assignments: BTreeMap<String, String>,
}

/// Deserialize a field so that an explicit `null` is `Some(Value::Null)`; together with
/// `#[serde(default)]` an absent field stays `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
