//! Feature evaluation (`evalFeature` in the reference SDK): walk the rules in order and
//! return the first one that applies, else the default value.

use serde_json::Value;

use super::context::Evaluator;
use super::experiment::{Stack, resolve_hash_attribute};
use super::hash::{get_equal_weights, hash, in_range};
use super::js;
use super::types::{
    ContextualBanditSelection, Experiment, ExperimentResult, FeatureResult, FeatureRule,
    FeatureSource,
};

impl FeatureResult {
    fn new(value: Value, source: FeatureSource, rule_id: Option<&str>) -> Self {
        let on = js::truthy(&value);
        Self {
            value,
            on,
            off: !on,
            source,
            rule_id: rule_id.unwrap_or_default().to_owned(),
            experiment: None,
            experiment_result: None,
        }
    }
}

/// Turn an experiment rule into an experiment. Only the fields the rule actually sets are
/// copied (empty strings and zero hash versions count as unset, as in the reference), so
/// the experiment serializes to the same JSON as the reference SDK's.
fn experiment_from_rule(rule: &FeatureRule, feature_id: &str, variations: &[Value]) -> Experiment {
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Experiment {
        key: non_empty(&rule.key).unwrap_or_else(|| feature_id.to_owned()),
        variations: variations.to_vec(),
        weights: rule.weights.clone(),
        coverage: rule.coverage,
        ranges: rule.ranges.clone(),
        condition: rule.condition.clone(),
        namespace: rule.namespace.clone(),
        hash_attribute: non_empty(&rule.hash_attribute),
        fallback_attribute: non_empty(&rule.fallback_attribute),
        hash_version: rule.hash_version.filter(|v| *v != 0),
        meta: rule.meta.clone(),
        filters: rule.filters.clone(),
        seed: non_empty(&rule.seed),
        name: non_empty(&rule.name),
        phase: non_empty(&rule.phase),
        disable_sticky_bucketing: rule.disable_sticky_bucketing.filter(|d| *d),
        bucket_version: rule.bucket_version,
        min_bucket_version: rule.min_bucket_version,
        ..Experiment::default()
    }
}

impl Evaluator<'_> {
    /// Evaluate feature `id`; `stack` holds the features whose prerequisites led here.
    pub(crate) fn eval_feature(&mut self, id: &str, stack: &Stack) -> FeatureResult {
        if stack.contains(id) {
            return FeatureResult::new(Value::Null, FeatureSource::CyclicPrerequisite, None);
        }
        let mut stack = stack.clone();
        stack.insert(id.to_owned());

        if let Some(value) = self.forced_feature_values.get(id) {
            return FeatureResult::new(value.clone(), FeatureSource::Override, None);
        }
        // Copy the `&'a` reference out so rules can be borrowed while `self` is mutated.
        let features = self.features;
        let Some(feature) = features.get(id) else {
            return FeatureResult::new(Value::Null, FeatureSource::UnknownFeature, None);
        };

        'rules: for rule in feature.rules.iter().flatten() {
            // Prerequisites: a failing gate blocks the feature, any other failure skips the rule.
            for parent in rule.parent_conditions.iter().flatten() {
                let result = self.eval_feature(&parent.id, &stack);
                if result.source == FeatureSource::CyclicPrerequisite {
                    return FeatureResult::new(
                        Value::Null,
                        FeatureSource::CyclicPrerequisite,
                        None,
                    );
                }
                if !self.parent_condition_passes(&result.value, parent.condition.as_ref()) {
                    if parent.gate == Some(true) {
                        return FeatureResult::new(Value::Null, FeatureSource::Prerequisite, None);
                    }
                    continue 'rules;
                }
            }

            if let Some(filters) = &rule.filters
                && self.is_filtered_out(filters)
            {
                continue;
            }

            if let Some(force) = &rule.force {
                if let Some(condition) = &rule.condition
                    && !self.condition_passes(condition)
                {
                    continue;
                }
                if !self.is_included_in_rollout(rule, id) {
                    continue;
                }
                // Exposures of a remotely evaluated experiment travel with the rule.
                for track in rule.tracks.iter().flatten() {
                    self.track(&track.experiment, &track.result);
                }
                return FeatureResult::new(force.clone(), FeatureSource::Force, rule.id.as_deref());
            }

            let Some(variations) = rule
                .contextual_variations
                .as_deref()
                .or(rule.variations.as_deref())
            else {
                // Neither a force nor an experiment rule: nothing to apply.
                continue;
            };
            let mut exp = experiment_from_rule(rule, id, variations);
            if let Some(reference) = &rule.contextual_bandit_ref {
                self.apply_contextual_bandit(&mut exp, reference);
            }
            let result = self.run_experiment(&exp, Some(id), &stack);
            if !(result.hash_used && result.in_experiment) {
                // A bandit leaf only means something for a hashed assignment.
                exp.contextual_bandit = None;
            }
            // Passthrough variations (holdouts) fall through to the next rule.
            if result.in_experiment && result.passthrough != Some(true) {
                return experiment_feature_result(exp, result, rule.id.as_deref());
            }
        }

        let default = feature.default_value.clone().unwrap_or(Value::Null);
        FeatureResult::new(default, FeatureSource::DefaultValue, None)
    }

    /// Percentage rollout of a force rule: `range` if given, else `coverage`.
    fn is_included_in_rollout(&self, rule: &FeatureRule, feature_id: &str) -> bool {
        let (range, coverage) = (rule.range, rule.coverage);
        match (range, coverage) {
            (None, None) => return true,
            (None, Some(0.0)) => return false,
            _ => {}
        }
        let fallback = if self.sticky.is_some() && rule.disable_sticky_bucketing != Some(true) {
            rule.fallback_attribute.as_deref()
        } else {
            None
        };
        let (_, value) =
            resolve_hash_attribute(self.attributes, rule.hash_attribute.as_deref(), fallback);
        if !js::truthy(&value) {
            return false;
        }
        let seed = rule
            .seed
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(feature_id);
        let version = rule.hash_version.filter(|v| *v != 0).unwrap_or(1);
        let Some(n) = hash(seed, &js::to_js_string(&value), version) else {
            return false;
        };
        match (range, coverage) {
            (Some(r), _) => in_range(n, &r),
            // Inclusive on purpose: the reference uses `n <= coverage` here.
            (None, Some(c)) => n <= c,
            (None, None) => true,
        }
    }

    /// Resolve a contextual-bandit rule: the first leaf whose condition matches the user
    /// supplies the weights. If the definition exists but no leaf matches, the rule's own
    /// weights stay and the selection is recorded as leaf `-1`. A dangling reference leaves
    /// the experiment untouched (plain experiment, no bandit metadata).
    fn apply_contextual_bandit(&self, exp: &mut Experiment, reference: &str) {
        let Some(definition) = self.contextual_bandits.get(reference) else {
            return;
        };
        let leaf = definition.contexts.iter().find(|leaf| {
            leaf.condition
                .as_ref()
                .is_none_or(|c| self.condition_passes(c))
        });
        let (leaf_id, weights) = match leaf {
            Some(leaf) => {
                exp.weights = Some(leaf.weights.clone());
                (leaf.leaf_id, leaf.weights.clone())
            }
            None => (
                -1,
                exp.weights
                    .clone()
                    .unwrap_or_else(|| get_equal_weights(exp.variations.len())),
            ),
        };
        exp.contextual_bandit = Some(ContextualBanditSelection {
            leaf_id,
            variation_weights: weights,
            bandit_version: definition.bandit_version,
        });
    }
}

fn experiment_feature_result(
    exp: Experiment,
    result: ExperimentResult,
    rule_id: Option<&str>,
) -> FeatureResult {
    let value = result.value.clone();
    FeatureResult {
        experiment: Some(exp),
        experiment_result: Some(result),
        ..FeatureResult::new(value, FeatureSource::Experiment, rule_id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::super::{Context, FeatureSource, InMemoryStickyBucketService};

    fn context(value: serde_json::Value) -> Context {
        serde_json::from_value(value).expect("valid context")
    }

    #[test]
    fn forced_feature_values_override_rules() {
        let mut ctx = context(json!({
            "features": {"f": {"defaultValue": 1, "rules": [{"force": 2}]}},
            "forcedFeatureValues": {"f": 3}
        }));
        let result = ctx.eval_feature("f");
        assert_eq!(result.value, json!(3));
        assert_eq!(result.source, FeatureSource::Override);
    }

    #[test]
    fn exposures_are_reported_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let mut ctx = context(json!({
            "attributes": {"id": "123"},
            "features": {"feature": {"rules": [{"variations": ["a", "b", "c"]}]}}
        }));
        ctx.tracking_callback = Some(Arc::new(move |exp, result| {
            if let Ok(mut v) = sink.lock() {
                v.push((exp.key.clone(), result.variation_id));
            }
        }));
        // As in the suite: seed "feature", id "123" hashes to 0.863 -> variation 2 ("c").
        assert_eq!(ctx.eval_feature("feature").value, json!("c"));
        assert_eq!(ctx.eval_feature("feature").value, json!("c"));
        assert_eq!(*seen.lock().expect("lock"), vec![("feature".to_owned(), 2)]);
    }

    #[test]
    fn sticky_assignment_survives_a_weight_change() {
        let service = Arc::new(InMemoryStickyBucketService::new());
        let payload = |weights: serde_json::Value| {
            json!({
                "attributes": {"id": "123"},
                "features": {"f": {"defaultValue": "off", "rules": [{
                    "key": "exp", "variations": ["a", "b"], "weights": weights,
                    "meta": [{"key": "0"}, {"key": "1"}]
                }]}}
            })
        };

        let mut first = context(payload(json!([0.0, 1.0])));
        first.sticky_bucket_service = Some(service.clone());
        first.refresh_sticky_buckets();
        assert_eq!(first.eval_feature("f").value, json!("b"));
        assert!(service.documents().contains_key("id||123"));

        // Everyone would now get "a", but the stored assignment keeps the user on "b".
        let mut second = context(payload(json!([1.0, 0.0])));
        second.sticky_bucket_service = Some(service);
        second.refresh_sticky_buckets();
        let result = second.eval_feature("f");
        assert_eq!(result.value, json!("b"));
        assert!(
            result
                .experiment_result
                .is_some_and(|r| r.sticky_bucket_used)
        );
    }
}
