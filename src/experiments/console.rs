//! The experiment console's model: the features product managers author (GrowthBook's feature
//! definitions, draft experiment rules included) and the lifecycle of every experiment
//! (draft → running → stopped, phases, the winner). Pure data and rules: the store keeps every
//! revision of a `Config` as JSON, the app layer applies `Change`s, and `Config::served` derives
//! the `FeatureSet` that page requests evaluate.
//!
//! Phases: a new phase re-randomises on purpose — its rules hash with a new seed
//! (`{seed}/phase-{n}`) and a new sticky `bucketVersion`, so assignments of the previous phase
//! no longer apply. Inside a phase, weights and coverage may change and exposed profiles keep
//! their variation through sticky bucketing (the documents live in the store).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::growthbook::{FeatureDefinition, FeatureRule, SavedGroups};
use super::{FeatureError, FeatureSet, InvalidFeature, PageValidator, PayloadFile};
use crate::domain::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Authored, not served (previews may force it).
    Draft,
    /// Served: profiles are assigned and exposed.
    Running,
    /// Not served any more; its report stays.
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// One run of an experiment with its own randomisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub started_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
}

/// The lifecycle of one experiment rule (keyed by the rule's experiment key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentState {
    pub status: Status,
    /// Phases so far; the last is the current one. Empty while a draft.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// The variation rolled out as the feature's default when it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<usize>,
}

impl ExperimentState {
    /// The current phase number (0 for the first), if it ever ran.
    pub fn phase(&self) -> Option<usize> {
        self.phases.len().checked_sub(1)
    }
}

/// Everything the console stores, one revision at a time. `features` and `saved_groups` are
/// GrowthBook's SDK payload (as authored: draft and stopped rules included); `experiments` is
/// Marquee's lifecycle of each experiment rule. Also the file format of `marquee experiments
/// export`/`import` (GrowthBook SDKs ignore the extra `experiments` key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub features: BTreeMap<String, FeatureDefinition>,
    #[serde(default)]
    pub saved_groups: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    pub experiments: BTreeMap<String, ExperimentState>,
}

/// A change a product manager (or an import) asks for.
#[derive(Debug, Clone)]
pub enum Change {
    /// Create or replace a feature. New experiment rules start as drafts.
    SaveFeature {
        key: String,
        definition: FeatureDefinition,
    },
    Launch(String),
    Stop(String),
    /// A new phase: re-randomised, running.
    NewPhase(String),
    /// Stop the experiment and make variation `.1`'s value the feature's default.
    ChooseWinner(String, usize),
    /// Replace everything with an imported file (`marquee experiments import`).
    Import(Box<Config>),
}

impl Change {
    /// What the change is about (an experiment or feature key), for the history.
    pub fn subject(&self) -> String {
        match self {
            Change::SaveFeature { key, .. } => key.clone(),
            Change::Launch(k) | Change::Stop(k) | Change::NewPhase(k) => k.clone(),
            Change::ChooseWinner(k, _) => k.clone(),
            Change::Import(_) => "*".into(),
        }
    }

    pub fn action(&self) -> &'static str {
        match self {
            Change::SaveFeature { .. } => "save-feature",
            Change::Launch(_) => "launch",
            Change::Stop(_) => "stop",
            Change::NewPhase(_) => "new-phase",
            Change::ChooseWinner(..) => "choose-winner",
            Change::Import(_) => "import",
        }
    }
}

/// Why a change is refused. `path` is relative to the feature when the change names one
/// (`rules[0].variations[1][3]`), else to the file (`features.home-rows.rules[0]…`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConsoleError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("no experiment {0:?}")]
    UnknownExperiment(String),
    #[error("experiment {key:?} is {status}: {message}")]
    WrongState {
        key: String,
        status: &'static str,
        message: &'static str,
    },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConsoleError {
    ConsoleError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// The experiment key of a rule that has variations.
fn rule_key(feature: &str, rule: &FeatureRule) -> String {
    rule.key
        .clone()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| feature.to_owned())
}

fn is_experiment(rule: &FeatureRule) -> bool {
    rule.variations.is_some()
}

/// Bounds on what one feature may hold (also the console's input bounds).
pub const MAX_RULES: usize = 50;
pub const MAX_VARIATIONS: usize = 20;
pub const MAX_KEY_CHARS: usize = 128;

impl Config {
    /// A config from a feature file's payload; experiments it defines are running (a
    /// payload is what SDKs serve) unless the file says otherwise in `experiments`.
    pub fn from_payload(
        features: HashMap<String, FeatureDefinition>,
        saved_groups: SavedGroups,
        experiments: BTreeMap<String, ExperimentState>,
        now: Millis,
    ) -> Config {
        let mut config = Config {
            features: features.into_iter().collect(),
            saved_groups: saved_groups.into_iter().collect(),
            experiments,
        };
        for key in config.experiment_keys() {
            config
                .experiments
                .entry(key)
                .or_insert_with(|| ExperimentState {
                    status: Status::Running,
                    phases: vec![Phase {
                        started_at: now,
                        ended_at: None,
                    }],
                    winner: None,
                });
        }
        config
    }

    /// Parses an exported/imported file: GrowthBook's payload, optionally with `experiments`.
    pub fn parse_file(name: &str, text: &str, now: Millis) -> Result<Config, FeatureError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: PayloadFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            FeatureError::Invalid {
                file: name.to_owned(),
                at: if at == "." { "(top level)".into() } else { at },
                problem: InvalidFeature::Shape(e.inner().to_string()),
            }
        })?;
        Ok(Config::from_payload(
            file.features,
            file.saved_groups,
            file.experiments.unwrap_or_default(),
            now,
        ))
    }

    /// Experiment keys of every experiment rule, in feature then rule order.
    pub fn experiment_keys(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|(f, def)| {
                def.rules
                    .iter()
                    .flatten()
                    .filter(|r| is_experiment(r))
                    .map(move |r| rule_key(f, r))
            })
            .collect()
    }

    /// The feature and rule index defining experiment `key`.
    pub fn find(&self, key: &str) -> Option<(&str, usize, &FeatureRule)> {
        self.features.iter().find_map(|(f, def)| {
            def.rules
                .iter()
                .flatten()
                .enumerate()
                .find(|(_, r)| is_experiment(r) && rule_key(f, r) == key)
                .map(|(i, r)| (f.as_str(), i, r))
        })
    }

    pub fn state(&self, key: &str) -> Option<&ExperimentState> {
        self.experiments.get(key)
    }

    /// Applies `change` at `now`, validating the result (`validate` checks page feature values
    /// against the page). The config is unchanged when the change is refused.
    pub fn apply(
        &self,
        change: &Change,
        now: Millis,
        validate: PageValidator<'_>,
    ) -> Result<Config, ConsoleError> {
        let mut next = self.clone();
        match change {
            Change::SaveFeature { key, definition } => {
                check_key("key", key)?;
                let rules = definition.rules.as_deref().unwrap_or_default();
                if rules.len() > MAX_RULES {
                    return Err(invalid("rules", format!("at most {MAX_RULES} rules")));
                }
                check_feature(key, definition, validate, "")?;
                for (i, rule) in rules.iter().enumerate().filter(|(_, r)| is_experiment(r)) {
                    let exp = rule_key(key, rule);
                    check_key(&format!("rules[{i}].key"), &exp)?;
                    if let Some((other, _, _)) =
                        self.find(&exp).filter(|(f, _, _)| *f != key.as_str())
                    {
                        return Err(invalid(
                            format!("rules[{i}].key"),
                            format!("experiment {exp:?} is already defined in feature {other:?}"),
                        ));
                    }
                    if rules
                        .iter()
                        .take(i)
                        .any(|r| is_experiment(r) && rule_key(key, r) == exp)
                    {
                        return Err(invalid(
                            format!("rules[{i}].key"),
                            format!("experiment {exp:?} is defined twice"),
                        ));
                    }
                    next.experiments
                        .entry(exp)
                        .or_insert_with(|| ExperimentState {
                            status: Status::Draft,
                            phases: vec![],
                            winner: None,
                        });
                }
                next.features.insert(key.clone(), definition.clone());
                // Experiments whose rule was removed leave the lifecycle (their reports stay
                // in the store, keyed by experiment).
                let keys = next.experiment_keys();
                next.experiments.retain(|k, _| keys.contains(k));
            }
            Change::Launch(key) => {
                let state = next.state_mut(key)?;
                if state.status != Status::Draft {
                    return Err(wrong(key, state.status, "only a draft can be launched"));
                }
                state.status = Status::Running;
                state.phases.push(Phase {
                    started_at: now,
                    ended_at: None,
                });
            }
            Change::Stop(key) => {
                let state = next.state_mut(key)?;
                if state.status != Status::Running {
                    return Err(wrong(key, state.status, "only a running experiment stops"));
                }
                stop(state, now);
            }
            Change::NewPhase(key) => {
                let state = next.state_mut(key)?;
                if state.status == Status::Draft {
                    return Err(wrong(key, state.status, "launch it first"));
                }
                stop(state, now);
                state.status = Status::Running;
                state.winner = None;
                state.phases.push(Phase {
                    started_at: now,
                    ended_at: None,
                });
            }
            Change::ChooseWinner(key, variation) => {
                let (feature, _, rule) = self
                    .find(key)
                    .ok_or_else(|| ConsoleError::UnknownExperiment(key.clone()))?;
                let value = rule
                    .variations
                    .as_ref()
                    .and_then(|v| v.get(*variation))
                    .cloned()
                    .ok_or_else(|| {
                        invalid(
                            "variation",
                            format!("experiment {key:?} has no variation {variation}"),
                        )
                    })?;
                let feature = feature.to_owned();
                let state = next.state_mut(key)?;
                if state.status == Status::Draft {
                    return Err(wrong(key, state.status, "a draft has no results"));
                }
                stop(state, now);
                state.winner = Some(*variation);
                if let Some(def) = next.features.get_mut(&feature) {
                    def.default_value = Some(value);
                }
            }
            Change::Import(config) => {
                for (key, def) in &config.features {
                    check_feature(key, def, validate, &format!("features.{key}."))?;
                }
                let mut seen = BTreeMap::new();
                for (f, def) in &config.features {
                    for (i, r) in def.rules.iter().flatten().enumerate() {
                        if is_experiment(r)
                            && let Some(other) = seen.insert(rule_key(f, r), f.clone())
                        {
                            return Err(invalid(
                                format!("features.{f}.rules[{i}].key"),
                                format!(
                                    "experiment {:?} is also defined in {other:?}",
                                    rule_key(f, r)
                                ),
                            ));
                        }
                    }
                }
                // Lifecycle: the file's, else what this database knew, else running.
                let mut imported = (**config).clone();
                for key in imported.experiment_keys() {
                    if !config.experiments.contains_key(&key)
                        && let Some(known) = self.experiments.get(&key)
                    {
                        imported.experiments.insert(key, known.clone());
                    }
                }
                next = Config::from_payload(
                    imported.features.into_iter().collect(),
                    imported.saved_groups.into_iter().collect(),
                    imported.experiments,
                    now,
                );
            }
        }
        Ok(next)
    }

    fn state_mut(&mut self, key: &str) -> Result<&mut ExperimentState, ConsoleError> {
        self.experiments
            .get_mut(key)
            .ok_or_else(|| ConsoleError::UnknownExperiment(key.to_owned()))
    }

    /// What page requests evaluate: running experiment rules (with their phase's seed and
    /// bucket version), without drafts and stopped ones. With `drafts`, draft rules are kept
    /// too at coverage 0: previews can force their variations, and nobody is hashed into one.
    pub fn served(&self, drafts: bool) -> FeatureSet {
        let mut set = FeatureSet::default();
        for (key, def) in &self.features {
            let mut def = def.clone();
            if let Some(rules) = def.rules.take() {
                let kept: Vec<FeatureRule> = rules
                    .into_iter()
                    .filter_map(|rule| {
                        if !is_experiment(&rule) {
                            return Some(rule);
                        }
                        let exp = rule_key(key, &rule);
                        let state = self.experiments.get(&exp)?;
                        match state.status {
                            Status::Running => Some(phased(key, rule, state.phase().unwrap_or(0))),
                            // Nobody is hashed into a draft (coverage 0); a forced
                            // variation still applies, before coverage.
                            Status::Draft if drafts => Some(FeatureRule {
                                coverage: Some(0.0),
                                ..rule
                            }),
                            _ => None,
                        }
                    })
                    .collect();
                def.rules = Some(kept);
            }
            set.features.insert(key.clone(), def);
            set.origin.insert(key.clone(), "console".into());
        }
        set.saved_groups = self
            .saved_groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        set
    }

    /// Every experiment, with its lifecycle, for people to read.
    pub fn summaries(&self) -> Vec<(super::ExperimentSummary, ExperimentState)> {
        let mut out: Vec<_> = self
            .features
            .iter()
            .flat_map(|(f, def)| {
                def.rules
                    .iter()
                    .flatten()
                    .filter(|r| is_experiment(r))
                    .map(move |r| super::ExperimentSummary::of(f, r))
            })
            .filter_map(|s| {
                let state = self.experiments.get(&s.key)?.clone();
                Some((s, state))
            })
            .collect();
        out.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        out
    }
}

/// The weight epochs of phase `phase` of experiment `key`: a new epoch wherever a revision
/// changed the experiment's weights or coverage while that phase was running. `revisions` are
/// `(created_at, configuration)` in revision order, from the one that started the phase on
/// (earlier or unrelated ones are skipped). Empty when the phase never ran.
pub fn weight_epochs(
    revisions: &[(Millis, Config)],
    key: &str,
    phase: usize,
) -> Vec<super::stats::WeightEpoch> {
    let mut epochs: Vec<super::stats::WeightEpoch> = Vec::new();
    let mut last: Option<(Vec<f64>, f64)> = None;
    for (at, config) in revisions {
        let running = config
            .state(key)
            .is_some_and(|s| s.status == Status::Running && s.phase() == Some(phase));
        let Some((feature, _, rule)) = config.find(key).filter(|_| running) else {
            continue;
        };
        let summary = super::ExperimentSummary::of(feature, rule);
        let split = (
            summary.variations.iter().map(|v| v.weight).collect(),
            summary.coverage,
        );
        if last.as_ref() == Some(&split) {
            continue;
        }
        let from = match (epochs.is_empty(), config.state(key)) {
            // The phase's first epoch starts with the phase.
            (true, Some(s)) => s.phases.get(phase).map_or(*at, |p| p.started_at.min(*at)),
            _ => *at,
        };
        epochs.push(super::stats::WeightEpoch {
            from,
            weights: split.0.clone(),
        });
        last = Some(split);
    }
    epochs
}

fn wrong(key: &str, status: Status, message: &'static str) -> ConsoleError {
    ConsoleError::WrongState {
        key: key.to_owned(),
        status: status.as_str(),
        message,
    }
}

fn stop(state: &mut ExperimentState, now: Millis) {
    state.status = Status::Stopped;
    if let Some(p) = state.phases.last_mut() {
        p.ended_at.get_or_insert(now);
    }
}

/// The rule as served in phase `phase`: phase 0 hashes as authored; later phases hash with a
/// new seed and start a new sticky bucket version, so everyone is assigned afresh. The rule
/// names its phase (GrowthBook's `phase` is tracking metadata, not hashed) so that exposures
/// are recorded per phase.
fn phased(feature: &str, mut rule: FeatureRule, phase: usize) -> FeatureRule {
    rule.phase = Some(phase.to_string());
    if phase > 0 {
        let base = rule
            .seed
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| rule_key(feature, &rule));
        rule.seed = Some(format!("{base}/phase-{phase}"));
        rule.bucket_version = Some(u32::try_from(phase).unwrap_or(u32::MAX));
    }
    rule
}

fn check_key(path: &str, key: &str) -> Result<(), ConsoleError> {
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("keys are 1–{MAX_KEY_CHARS} letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// Checks one feature: its rules' shapes (weights, coverage, variations) and every value a
/// page feature can take against the page. Paths start with `prefix`.
fn check_feature(
    key: &str,
    def: &FeatureDefinition,
    validate: PageValidator<'_>,
    prefix: &str,
) -> Result<(), ConsoleError> {
    for (i, rule) in def.rules.iter().flatten().enumerate() {
        let at = |field: &str| format!("{prefix}rules[{i}].{field}");
        if let Some(variations) = &rule.variations {
            if variations.len() < 2 || variations.len() > MAX_VARIATIONS {
                return Err(invalid(
                    at("variations"),
                    format!("an experiment has 2–{MAX_VARIATIONS} variations"),
                ));
            }
            if let Some(w) = &rule.weights {
                if w.len() != variations.len() {
                    return Err(invalid(
                        at("weights"),
                        format!("{} weights for {} variations", w.len(), variations.len()),
                    ));
                }
                if let Some(j) = w.iter().position(|x| !(0.0..=1.0).contains(x)) {
                    return Err(invalid(at(&format!("weights[{j}]")), "between 0 and 1"));
                }
                let sum: f64 = w.iter().sum();
                if (sum - 1.0).abs() > 1e-6 {
                    return Err(invalid(
                        at("weights"),
                        format!("weights add up to {sum}, not 1"),
                    ));
                }
            }
            if let Some(meta) = &rule.meta
                && meta.len() != variations.len()
            {
                return Err(invalid(
                    at("meta"),
                    format!("{} entries for {} variations", meta.len(), variations.len()),
                ));
            }
        }
        if let Some(c) = rule.coverage
            && !(0.0..=1.0).contains(&c)
        {
            return Err(invalid(at("coverage"), "between 0 and 1"));
        }
        if let Some(ns) = &rule.namespace
            && (ns.0.is_empty() || !(0.0..=1.0).contains(&ns.1) || !(ns.1..=1.0).contains(&ns.2))
        {
            return Err(invalid(
                at("namespace"),
                "[name, start, end] with 0 ≤ start ≤ end ≤ 1",
            ));
        }
        if let Some(cond) = &rule.condition
            && !cond.is_object()
        {
            return Err(invalid(at("condition"), "a condition is a JSON object"));
        }
    }
    for (at, value) in super::possible_values(key, def) {
        let relative = at
            .strip_prefix(&format!("features.{key}."))
            .unwrap_or(&at)
            .to_owned();
        super::check_value(key, value, validate).map_err(|(detail, problem)| {
            invalid(format!("{prefix}{relative}{detail}"), problem.to_string())
        })?;
    }
    Ok(())
}

/// One difference between two JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffEntry {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The leaves that differ between `before` and `after`, with their paths
/// (`features.home-rows.rules[0].weights[1]`).
pub fn diff(before: &Value, after: &Value) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    diff_at("", before, after, &mut out);
    out
}

fn diff_at(path: &str, before: &Value, after: &Value, out: &mut Vec<DiffEntry>) {
    if before == after {
        return;
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => diff_at(&child(k), va, vb, out),
                    None => out.push(DiffEntry {
                        path: child(k),
                        before: Some(va.clone()),
                        after: None,
                    }),
                }
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push(DiffEntry {
                    path: child(k),
                    before: None,
                    after: Some(vb.clone()),
                });
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff_at(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ => out.push(DiffEntry {
            path: path.to_owned(),
            before: Some(before.clone()).filter(|v| !v.is_null()),
            after: Some(after.clone()).filter(|v| !v.is_null()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> FeatureDefinition {
        serde_json::from_value(v).unwrap()
    }

    fn ok(_: &crate::engine::rows::PageOverrides) -> Result<(), crate::engine::rows::PageError> {
        Ok(())
    }

    fn ab() -> FeatureDefinition {
        def(
            json!({"defaultValue": null, "rules": [{"key": "tf", "variations": [null, ["trending"]],
            "weights": [0.5, 0.5], "meta": [{"key": "control"}, {"key": "treatment"}]}]}),
        )
    }

    #[test]
    fn lifecycle_draft_running_phases_winner() {
        let c = Config::default();
        let save = Change::SaveFeature {
            key: "home-rows".into(),
            definition: ab(),
        };
        let c = c.apply(&save, 1, &ok).unwrap();
        assert_eq!(c.state("tf").unwrap().status, Status::Draft);
        // Drafts are not served; previews see them.
        assert!(c.served(false).experiments().is_empty());
        let preview = c.served(true);
        assert_eq!(preview.experiments().len(), 1);
        let attrs = json!({"id": "7"});
        let v = super::super::page_variant(&preview, attrs.clone(), HashMap::new());
        assert!(v.assignments.is_empty(), "nobody is hashed into a draft");
        let v = super::super::page_variant(&preview, attrs, HashMap::from([("tf".into(), 1)]));
        assert_eq!(v.assignments[0].variation_index, 1, "a preview forces it");
        assert!(matches!(
            c.apply(&Change::Stop("tf".into()), 2, &ok),
            Err(ConsoleError::WrongState { .. })
        ));
        let c = c.apply(&Change::Launch("tf".into()), 2, &ok).unwrap();
        let served = c.served(false);
        let rule = &served.features["home-rows"].rules.as_ref().unwrap()[0];
        assert_eq!(rule.seed, None, "phase 0 hashes as authored");
        let c = c.apply(&Change::NewPhase("tf".into()), 3, &ok).unwrap();
        let state = c.state("tf").unwrap();
        assert_eq!(state.phase(), Some(1));
        assert_eq!(state.phases[0].ended_at, Some(3));
        let served = c.served(false);
        let rule = &served.features["home-rows"].rules.as_ref().unwrap()[0];
        assert_eq!(rule.seed.as_deref(), Some("tf/phase-1"));
        assert_eq!(rule.bucket_version, Some(1));
        let c = c
            .apply(&Change::ChooseWinner("tf".into(), 1), 4, &ok)
            .unwrap();
        assert_eq!(c.state("tf").unwrap().status, Status::Stopped);
        assert_eq!(c.state("tf").unwrap().winner, Some(1));
        assert_eq!(
            c.features["home-rows"].default_value,
            Some(json!(["trending"]))
        );
        assert!(c.served(false).experiments().is_empty());
    }

    #[test]
    fn weight_epochs_follow_weight_and_coverage_changes_of_the_phase() {
        let save = |w: [f64; 2], coverage: f64| Change::SaveFeature {
            key: "home-rows".into(),
            definition: def(
                json!({"rules": [{"key": "tf", "variations": [null, ["trending"]],
                "weights": w, "coverage": coverage}]}),
            ),
        };
        let c0 = Config::default()
            .apply(&save([0.5, 0.5], 1.0), 1, &ok)
            .unwrap();
        let c1 = c0.apply(&Change::Launch("tf".into()), 10, &ok).unwrap();
        let c2 = c1.apply(&save([0.2, 0.8], 1.0), 20, &ok).unwrap();
        // Another save with the same split is no new epoch; a coverage change is.
        let c3 = c2.apply(&save([0.2, 0.8], 1.0), 25, &ok).unwrap();
        let c4 = c3.apply(&save([0.2, 0.8], 0.5), 30, &ok).unwrap();
        let c5 = c4.apply(&Change::NewPhase("tf".into()), 40, &ok).unwrap();
        let c6 = c5.apply(&save([0.5, 0.5], 0.5), 50, &ok).unwrap();
        let revisions: Vec<(Millis, Config)> = [
            (1, c0),
            (10, c1),
            (20, c2),
            (25, c3),
            (30, c4),
            (40, c5),
            (50, c6),
        ]
        .into_iter()
        .collect();
        let e = weight_epochs(&revisions, "tf", 0);
        let got: Vec<(Millis, Vec<f64>)> = e.into_iter().map(|e| (e.from, e.weights)).collect();
        assert_eq!(
            got,
            vec![
                (10, vec![0.5, 0.5]),
                (20, vec![0.2, 0.8]),
                (30, vec![0.2, 0.8])
            ]
        );
        let e = weight_epochs(&revisions, "tf", 1);
        let got: Vec<(Millis, Vec<f64>)> = e.into_iter().map(|e| (e.from, e.weights)).collect();
        assert_eq!(got, vec![(40, vec![0.2, 0.8]), (50, vec![0.5, 0.5])]);
        assert!(weight_epochs(&revisions, "tf", 2).is_empty());
    }

    #[test]
    fn refusals_name_the_path() {
        let reject = |o: &crate::engine::rows::PageOverrides| match &o.rows {
            Some(rows) if rows.iter().any(|r| r == "nope") => {
                Err(crate::engine::rows::PageError::UnknownRow {
                    row: "nope".into(),
                    known: "trending".into(),
                })
            }
            _ => Ok(()),
        };
        let bad = def(
            json!({"rules": [{"key": "x", "variations": [null, ["trending", "a", "b", "nope"]]}]}),
        );
        let e = Config::default()
            .apply(
                &Change::SaveFeature {
                    key: "home-rows".into(),
                    definition: bad,
                },
                1,
                &reject,
            )
            .unwrap_err();
        match e {
            ConsoleError::Invalid { path, .. } => assert_eq!(path, "rules[0].variations[1][3]"),
            e => panic!("{e:?}"),
        }
        let bad =
            def(json!({"rules": [{"key": "x", "variations": [1, 2], "weights": [0.7, 0.7]}]}));
        let e = Config::default()
            .apply(
                &Change::SaveFeature {
                    key: "f".into(),
                    definition: bad,
                },
                1,
                &ok,
            )
            .unwrap_err();
        assert!(e.to_string().starts_with("rules[0].weights: "), "{e}");
    }

    #[test]
    fn diff_names_changed_leaves() {
        let d = diff(
            &json!({"a": {"w": [0.5, 0.5]}, "gone": 1}),
            &json!({"a": {"w": [0.8, 0.2]}, "new": true}),
        );
        let paths: Vec<&str> = d.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["a.w[0]", "a.w[1]", "gone", "new"]);
    }
}
