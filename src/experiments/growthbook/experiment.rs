//! Running an experiment for one user (`runExperiment` in the reference SDK).
//!
//! The order of the checks matters and follows the reference exactly: overrides (query
//! string, forced variations) win over everything but a disabled context; a sticky bucket
//! skips re-targeting; coverage is applied before a forced variation; QA mode only
//! excludes hashed assignments.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::condition::{eval_condition, get_path};
use super::context::Evaluator;
use super::hash::{
    choose_variation, get_bucket_ranges, get_query_string_override, hash, in_namespace, in_range,
};
use super::js;
use super::sticky::{sticky_attribute_key, sticky_experiment_key};
use super::types::{
    Experiment, ExperimentResult, FeatureSource, Filter, StickyAssignmentsDocument,
};

/// Features currently being evaluated up the prerequisite chain (for cycle detection).
pub(crate) type Stack = HashSet<String>;

/// The attribute used for hashing and its value.
///
/// `attr` defaults to `id`. A literal key wins; otherwise the name is read as a dot path
/// (`user.id`). A missing attribute yields `""`. The fallback attribute is used only when
/// the primary value is falsy and the fallback's is not.
pub(crate) fn resolve_hash_attribute(
    attributes: &Value,
    attr: Option<&str>,
    fallback: Option<&str>,
) -> (String, Value) {
    let resolve = |key: &str| -> Value {
        if let Some(v) = attributes.as_object().and_then(|m| m.get(key)) {
            return v.clone();
        }
        match get_path(attributes, key) {
            Value::Null => Value::String(String::new()),
            v => v.clone(),
        }
    };
    let name = attr.filter(|a| !a.is_empty()).unwrap_or("id");
    let value = resolve(name);
    if !js::truthy(&value)
        && let Some(fallback) = fallback.filter(|f| !f.is_empty())
    {
        let fallback_value = resolve(fallback);
        if js::truthy(&fallback_value) {
            return (fallback.to_owned(), fallback_value);
        }
    }
    (name.to_owned(), value)
}

/// A requested variation index, if it names an existing variation.
fn valid_index(index: i64, num_variations: usize) -> Option<usize> {
    usize::try_from(index).ok().filter(|&i| i < num_variations)
}

impl Evaluator<'_> {
    /// Whether sticky bucketing applies to this experiment.
    fn sticky_enabled(&self, disabled: Option<bool>) -> bool {
        self.sticky.is_some() && disabled != Some(true)
    }

    /// The experiment's hash attribute; the fallback attribute only counts when sticky
    /// bucketing is on (it exists so anonymous assignments survive logging in).
    pub(crate) fn experiment_hash_attribute(&self, exp: &Experiment) -> (String, Value) {
        let fallback = if self.sticky_enabled(exp.disable_sticky_bucketing) {
            exp.fallback_attribute.as_deref()
        } else {
            None
        };
        resolve_hash_attribute(self.attributes, exp.hash_attribute.as_deref(), fallback)
    }

    pub(crate) fn condition_passes(&self, condition: &Value) -> bool {
        eval_condition(self.attributes, condition, self.saved_groups)
    }

    /// True if any filter excludes the user (no hash value, or hash outside its ranges).
    pub(crate) fn is_filtered_out(&self, filters: &[Filter]) -> bool {
        filters.iter().any(|filter| {
            let (_, value) =
                resolve_hash_attribute(self.attributes, filter.attribute.as_deref(), None);
            if !js::truthy(&value) {
                return true;
            }
            let version = filter.hash_version.filter(|v| *v != 0).unwrap_or(2);
            match hash(&filter.seed, &js::to_js_string(&value), version) {
                Some(n) => !filter.ranges.iter().any(|r| in_range(n, r)),
                None => true,
            }
        })
    }

    /// Run `exp` for the current user. `feature_id` is the feature whose rule produced the
    /// experiment, if any; `stack` is used when evaluating prerequisites.
    pub(crate) fn run_experiment(
        &mut self,
        exp: &Experiment,
        feature_id: Option<&str>,
        stack: &Stack,
    ) -> ExperimentResult {
        let key = exp.key.as_str();
        let num_variations = exp.variations.len();
        let excluded =
            |this: &Self| this.experiment_result(exp, None, false, feature_id, None, false);

        // 1. Fewer than two variations is not an experiment.
        if num_variations < 2 {
            return excluded(self);
        }
        // 2. Experiments are switched off globally.
        if !self.enabled {
            return excluded(self);
        }
        // 3. Forced through the URL query string.
        if let Some(v) = get_query_string_override(key, self.url, num_variations) {
            return self.experiment_result(exp, Some(v), false, feature_id, None, false);
        }
        // 4. Forced in the context. An out-of-range index means "not in the experiment".
        if let Some(&v) = self.forced_variations.get(key) {
            let v = valid_index(v, num_variations);
            return self.experiment_result(exp, v, false, feature_id, None, false);
        }
        // 5. Inactive.
        if exp.active == Some(false) {
            return excluded(self);
        }
        // 6. No value to hash on.
        let (hash_attribute, hash_value) = self.experiment_hash_attribute(exp);
        if !js::truthy(&hash_value) {
            return excluded(self);
        }
        let hash_string = js::to_js_string(&hash_value);

        let sticky = self.sticky_enabled(exp.disable_sticky_bucketing);
        let (sticky_variation, sticky_blocked) = if sticky {
            self.sticky_bucket_variation(exp)
        } else {
            (None, false)
        };

        // An existing sticky bucket skips targeting: the user keeps their variation even if
        // they no longer match.
        if sticky_variation.is_none() {
            // 7. Filters (or the older namespaces, ignored when filters are present).
            if let Some(filters) = &exp.filters {
                if self.is_filtered_out(filters) {
                    return excluded(self);
                }
            } else if let Some(ns) = &exp.namespace
                && !in_namespace(&hash_string, ns)
            {
                return excluded(self);
            }
            // 8. Targeting condition.
            if let Some(condition) = &exp.condition
                && !self.condition_passes(condition)
            {
                return excluded(self);
            }
            // 8.05. Prerequisites.
            for parent in exp.parent_conditions.iter().flatten() {
                let result = self.eval_feature(&parent.id, stack);
                if result.source == FeatureSource::CyclicPrerequisite
                    || !self.parent_condition_passes(&result.value, parent.condition.as_ref())
                {
                    return excluded(self);
                }
            }
        }

        // 9. Hash and pick a variation (unless the sticky bucket already did).
        let seed = exp.seed.as_deref().filter(|s| !s.is_empty()).unwrap_or(key);
        let version = exp.hash_version.filter(|v| *v != 0).unwrap_or(1);
        let Some(n) = hash(seed, &hash_string, version) else {
            return excluded(self);
        };
        let assigned = sticky_variation.or_else(|| {
            let ranges = exp.ranges.clone().unwrap_or_else(|| {
                get_bucket_ranges(
                    num_variations,
                    exp.coverage.unwrap_or(1.0),
                    exp.weights.as_deref(),
                )
            });
            choose_variation(n, &ranges)
        });

        // 9.5. A sticky bucket from a blocked (too old) bucket version unenrolls the user.
        if sticky_blocked {
            return self.experiment_result(exp, None, false, feature_id, None, true);
        }
        // 10. Outside coverage.
        let Some(assigned) = assigned else {
            return excluded(self);
        };
        // 11. The experiment forces a variation (after coverage, so coverage still applies).
        if let Some(force) = exp.force {
            let v = valid_index(force, num_variations);
            return self.experiment_result(exp, v, false, feature_id, None, false);
        }
        // 12. QA mode: no hashed assignments.
        if self.qa_mode {
            return excluded(self);
        }

        // 13. In the experiment.
        let result = self.experiment_result(
            exp,
            Some(assigned),
            true,
            feature_id,
            Some(n),
            sticky_variation.is_some(),
        );
        if sticky {
            self.save_sticky_assignment(exp, &hash_attribute, &hash_value, &result.key);
        }
        self.track(exp, &result);
        result
    }

    /// Parent condition evaluated against `{"value": parent_value}`; none always passes.
    pub(crate) fn parent_condition_passes(&self, value: &Value, condition: Option<&Value>) -> bool {
        let Some(condition) = condition else {
            return true;
        };
        let obj = serde_json::json!({ "value": value });
        eval_condition(&obj, condition, self.saved_groups)
    }

    /// Build a result. `variation: None` (or an invalid index) means "not in the
    /// experiment": variation 0's value is returned, as the reference does.
    fn experiment_result(
        &self,
        exp: &Experiment,
        variation: Option<usize>,
        hash_used: bool,
        feature_id: Option<&str>,
        bucket: Option<f64>,
        sticky_bucket_used: bool,
    ) -> ExperimentResult {
        let valid = variation.filter(|&v| v < exp.variations.len());
        let in_experiment = valid.is_some();
        let index = valid.unwrap_or(0);
        let (hash_attribute, hash_value) = self.experiment_hash_attribute(exp);
        let meta = exp.meta.as_ref().and_then(|m| m.get(index));
        let key = meta
            .and_then(|m| m.key.clone())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| index.to_string());
        // Bandit details describe a hashed assignment only.
        let bandit = exp
            .contextual_bandit
            .as_ref()
            .filter(|_| hash_used && in_experiment);
        ExperimentResult {
            in_experiment,
            variation_id: index,
            value: exp.variations.get(index).cloned().unwrap_or(Value::Null),
            hash_used,
            hash_attribute,
            hash_value,
            feature_id: feature_id.map(str::to_owned),
            key,
            bucket,
            name: meta.and_then(|m| m.name.clone()).filter(|n| !n.is_empty()),
            passthrough: meta.and_then(|m| m.passthrough).filter(|p| *p),
            sticky_bucket_used,
            leaf_id: bandit.map(|b| b.leaf_id),
            variation_weights: bandit.map(|b| b.variation_weights.clone()),
            bandit_version: bandit.and_then(|b| b.bandit_version),
        }
    }

    /// Report an exposure once per (hash attribute, value, experiment, variation).
    pub(crate) fn track(&mut self, exp: &Experiment, result: &ExperimentResult) {
        let Some(callback) = self.tracking_callback else {
            return;
        };
        let dedupe_key = format!(
            "{}{}{}{}",
            result.hash_attribute,
            js::to_js_string(&result.hash_value),
            exp.key,
            result.variation_id
        );
        if self.tracked_experiments.insert(dedupe_key) {
            callback(exp, result);
        }
    }

    /// The sticky assignments visible to this experiment: the fallback identity's
    /// document overlaid by the hash identity's (the hash attribute wins).
    fn sticky_assignments(&self, exp: &Experiment) -> BTreeMap<String, String> {
        let Some(sticky) = &self.sticky else {
            return BTreeMap::new();
        };
        let (name, value) =
            resolve_hash_attribute(self.attributes, exp.hash_attribute.as_deref(), None);
        let hash_key = sticky_attribute_key(&name, &js::to_string_or_json(&value));
        // Without a fallback attribute the reference looks up `id` here; harmless, kept.
        let (fb_name, fb_value) =
            resolve_hash_attribute(self.attributes, exp.fallback_attribute.as_deref(), None);
        let fallback_key = js::truthy(&fb_value)
            .then(|| sticky_attribute_key(&fb_name, &js::to_string_or_json(&fb_value)));

        let mut assignments = BTreeMap::new();
        for key in fallback_key.iter().chain(std::iter::once(&hash_key)) {
            if let Some(doc) = sticky.docs.get(key) {
                assignments.extend(doc.assignments.clone());
            }
        }
        assignments
    }

    /// The sticky variation for this experiment, and whether the user is blocked because
    /// they hold an assignment from a bucket version below `minBucketVersion`.
    fn sticky_bucket_variation(&self, exp: &Experiment) -> (Option<usize>, bool) {
        let assignments = self.sticky_assignments(exp);
        let min_version = exp.min_bucket_version.unwrap_or(0);
        if (0..min_version).any(|v| assignments.contains_key(&sticky_experiment_key(&exp.key, v))) {
            return (None, true);
        }
        let current = sticky_experiment_key(&exp.key, exp.bucket_version.unwrap_or(0));
        // A stored key that no longer matches any variation is treated as no assignment.
        let variation = assignments.get(&current).and_then(|variation_key| {
            exp.meta
                .iter()
                .flatten()
                .position(|m| m.key.as_deref() == Some(variation_key.as_str()))
        });
        (variation, false)
    }

    /// Persist the assignment if it is new or changed.
    fn save_sticky_assignment(
        &mut self,
        exp: &Experiment,
        hash_attribute: &str,
        hash_value: &Value,
        variation_key: &str,
    ) {
        let Some(sticky) = &mut self.sticky else {
            return;
        };
        let attribute_value = js::to_string_or_json(hash_value);
        let doc_key = sticky_attribute_key(hash_attribute, &attribute_value);
        let assignment_key = sticky_experiment_key(&exp.key, exp.bucket_version.unwrap_or(0));
        let mut doc =
            sticky
                .docs
                .get(&doc_key)
                .cloned()
                .unwrap_or_else(|| StickyAssignmentsDocument {
                    attribute_name: hash_attribute.to_owned(),
                    attribute_value: attribute_value.clone(),
                    assignments: BTreeMap::new(),
                });
        if doc.assignments.get(&assignment_key).map(String::as_str) == Some(variation_key) {
            return;
        }
        doc.attribute_name = hash_attribute.to_owned();
        doc.attribute_value = attribute_value;
        doc.assignments
            .insert(assignment_key, variation_key.to_owned());
        sticky.service.save_assignments(&doc);
        sticky.docs.insert(doc_key, doc);
    }
}
