//! Experiments: product managers' GrowthBook feature definitions (`experiments/*.json`), how a
//! page request is assigned to variations, and the page composition features Marquee reads.
//!
//! `growthbook` is the general evaluation engine (GrowthBook SDK semantics). This module is
//! the Marquee-specific part: loading and validating the files, building the attributes of a
//! request, and turning feature values into `PageOverrides` for the engine.

pub mod console;
pub mod growthbook;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::Profile;
use crate::engine::rows::{PageError, PageOverrides, RowOverride};
use growthbook::{
    BorrowedContext, FeatureDefinition, FeatureRule, SavedGroups, StickyAssignmentsDocument,
    StickyBucketService,
};

/// Row ids, in order: which rows the home page shows.
pub const ROWS_FEATURE: &str = "home-rows";
/// Row id → `{title, size, min_items, diversity, params}`: per-row settings.
pub const ROW_SETTINGS_FEATURE: &str = "home-row-settings";
/// `"fixed"`, `"engagement"` or `"learned"`: the page's row order (`RowOrder`).
pub const ROW_ORDER_FEATURE: &str = "home-row-order";

/// One file of `experiments/`: GrowthBook's SDK payload format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PayloadFile {
    features: HashMap<String, FeatureDefinition>,
    #[serde(default)]
    saved_groups: SavedGroups,
    /// Free text for people reading the file.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    // Present in payloads exported from GrowthBook itself.
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    date_updated: Option<Value>,
    /// The console's lifecycle of each experiment (`marquee experiments export`).
    #[serde(default)]
    experiments: Option<BTreeMap<String, console::ExperimentState>>,
}

/// All features of `experiments/`, merged.
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    pub features: HashMap<String, FeatureDefinition>,
    pub saved_groups: SavedGroups,
    /// Feature key → the file that defines it.
    pub origin: BTreeMap<String, PathBuf>,
}

/// Checks a value of one of Marquee's page features against the page it would change.
pub type PageValidator<'a> = &'a dyn Fn(&PageOverrides) -> Result<(), PageError>;

/// Why `experiments/` did not load. `Read` is the machine's problem (permissions, a vanished
/// directory); `Invalid` is a mistake in a file, which the watcher refuses while the last good
/// features stay in force.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `at` is the JSON path in `file` (`features.home-rows.rules[0].variations[1]`).
    #[error("{file}: {at}: {problem}")]
    Invalid {
        file: String,
        at: String,
        problem: InvalidFeature,
    },
}

/// What is wrong at one place of a feature file.
#[derive(Debug, thiserror::Error)]
pub enum InvalidFeature {
    /// Not GrowthBook's payload shape (the JSON error).
    #[error("{0}")]
    Shape(String),
    /// A page feature's value would not make a valid page.
    #[error(transparent)]
    Page(Box<PageError>),
    #[error("already defined in {}", .0.display())]
    DefinedTwice(PathBuf),
    #[error("defined twice")]
    GroupDefinedTwice,
}

/// Parses a value of `home-rows` / `home-row-settings` into page overrides.
fn overrides_from(feature: &str, value: &Value) -> Result<PageOverrides, serde_json::Error> {
    if value.is_null() {
        return Ok(PageOverrides::default());
    }
    match feature {
        ROWS_FEATURE => Ok(PageOverrides {
            rows: Some(serde_json::from_value(value.clone())?),
            ..PageOverrides::default()
        }),
        ROW_SETTINGS_FEATURE => Ok(PageOverrides {
            settings: serde_json::from_value::<BTreeMap<String, RowOverride>>(value.clone())?,
            ..PageOverrides::default()
        }),
        ROW_ORDER_FEATURE => Ok(PageOverrides {
            order: Some(serde_json::from_value(value.clone())?),
            ..PageOverrides::default()
        }),
        _ => Ok(PageOverrides::default()),
    }
}

/// Checks one value of feature `key` against the page. On failure, the path below the value
/// that is wrong (`[3]`: the fourth row id of a `home-rows` list; `.top-picks`: that row's
/// settings), if known, and the problem.
fn check_value(
    key: &str,
    value: &Value,
    validate: PageValidator<'_>,
) -> Result<(), (String, InvalidFeature)> {
    let overrides = overrides_from(key, value)
        .map_err(|e| (String::new(), InvalidFeature::Shape(e.to_string())))?;
    validate(&overrides).map_err(|e| {
        let row = match &e {
            PageError::UnknownRow { row, .. } | PageError::ListedTwice(row) => Some(row),
            PageError::SettingsForUnknownRow(row) | PageError::Row { row, .. } => Some(row),
            _ => None,
        };
        let detail = match (row, value) {
            (Some(row), Value::Array(ids)) => ids
                .iter()
                .rposition(|v| v.as_str() == Some(row.as_str()))
                .map(|i| format!("[{i}]"))
                .unwrap_or_default(),
            (Some(row), Value::Object(m)) if m.contains_key(row.as_str()) => format!(".{row}"),
            _ => String::new(),
        };
        (detail, InvalidFeature::Page(Box::new(e)))
    })
}

/// Every value a feature can take, with its JSON path in the file.
fn possible_values<'a>(key: &str, def: &'a FeatureDefinition) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    if let Some(v) = &def.default_value {
        out.push((format!("features.{key}.defaultValue"), v));
    }
    for (i, rule) in def.rules.iter().flatten().enumerate() {
        if let Some(v) = &rule.force {
            out.push((format!("features.{key}.rules[{i}].force"), v));
        }
        for (j, v) in rule.variations.iter().flatten().enumerate() {
            out.push((format!("features.{key}.rules[{i}].variations[{j}]"), v));
        }
    }
    out
}

impl FeatureSet {
    /// Reads every `*.json` in `dir` (sorted by name). Errors name the file and the JSON path.
    pub fn load_dir(dir: &Path, validate: PageValidator<'_>) -> Result<FeatureSet, FeatureError> {
        let read_error = |path: &Path| {
            let path = path.to_owned();
            move |source| FeatureError::Read { path, source }
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut set = FeatureSet::default();
        for path in files {
            let name = path.display().to_string();
            let invalid = |at: String, problem: InvalidFeature| FeatureError::Invalid {
                file: name.clone(),
                at,
                problem,
            };
            let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
            let de = &mut serde_json::Deserializer::from_str(&text);
            let file: PayloadFile = serde_path_to_error::deserialize(de).map_err(|e| {
                let at = e.path().to_string();
                invalid(
                    if at == "." { "(top level)".into() } else { at },
                    InvalidFeature::Shape(e.inner().to_string()),
                )
            })?;
            for (key, def) in &file.features {
                for (at, value) in possible_values(key, def) {
                    check_value(key, value, validate)
                        .map_err(|(detail, problem)| invalid(format!("{at}{detail}"), problem))?;
                }
                if let Some(other) = set.origin.get(key) {
                    return Err(invalid(
                        format!("features.{key}"),
                        InvalidFeature::DefinedTwice(other.clone()),
                    ));
                }
                set.origin.insert(key.clone(), path.clone());
            }
            set.features.extend(file.features);
            for (group, members) in file.saved_groups {
                if set.saved_groups.insert(group.clone(), members).is_some() {
                    return Err(invalid(
                        format!("savedGroups.{group}"),
                        InvalidFeature::GroupDefinedTwice,
                    ));
                }
            }
        }
        Ok(set)
    }

    /// Model versions that `home-row-settings` values name, which the engine must have loaded.
    pub fn model_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self
            .features
            .get(ROW_SETTINGS_FEATURE)
            .map(|def| possible_values(ROW_SETTINGS_FEATURE, def))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, v)| overrides_from(ROW_SETTINGS_FEATURE, v).ok())
            .flat_map(|o| o.settings.into_values().filter_map(|r| r.model))
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The experiment rules of all features, for people to read.
    pub fn experiments(&self) -> Vec<ExperimentSummary> {
        let mut out: Vec<ExperimentSummary> = self
            .features
            .iter()
            .flat_map(|(key, def)| {
                def.rules
                    .iter()
                    .flatten()
                    .filter(|r| r.variations.is_some())
                    .map(move |r| ExperimentSummary::of(key, r))
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariationSummary {
    pub index: usize,
    pub key: String,
    pub name: Option<String>,
    pub weight: f64,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSummary {
    pub key: String,
    pub feature_key: String,
    pub name: Option<String>,
    pub hash_attribute: String,
    pub coverage: f64,
    pub condition: Option<Value>,
    pub namespace: Option<growthbook::Namespace>,
    pub variations: Vec<VariationSummary>,
}

impl ExperimentSummary {
    fn of(feature: &str, rule: &FeatureRule) -> Self {
        let variations = rule.variations.clone().unwrap_or_default();
        let n = variations.len();
        let weights = rule
            .weights
            .clone()
            .filter(|w| w.len() == n)
            .unwrap_or_else(|| growthbook::get_equal_weights(n));
        let meta = rule.meta.clone().unwrap_or_default();
        ExperimentSummary {
            key: rule.key.clone().unwrap_or_else(|| feature.to_owned()),
            feature_key: feature.to_owned(),
            name: rule.name.clone(),
            hash_attribute: rule.hash_attribute.clone().unwrap_or_else(|| "id".into()),
            coverage: rule.coverage.unwrap_or(1.0),
            condition: rule.condition.clone(),
            namespace: rule.namespace.clone(),
            variations: variations
                .into_iter()
                .enumerate()
                .map(|(i, value)| VariationSummary {
                    index: i,
                    key: meta
                        .get(i)
                        .and_then(|m| m.key.clone())
                        .unwrap_or_else(|| i.to_string()),
                    name: meta.get(i).and_then(|m| m.name.clone()),
                    weight: weights.get(i).copied().unwrap_or(0.0),
                    value,
                })
                .collect(),
        }
    }
}

/// What the client tells about itself, next to what the server knows of the profile.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub platform: Option<String>,
    pub app_version: Option<String>,
    /// Anything else the client passes; cannot override the server's own attributes.
    pub extra: Map<String, Value>,
}

/// The attributes conditions and hashing see for a page request.
pub fn attributes(profile: &Profile, request: &RequestInfo) -> Value {
    let mut attrs = request.extra.clone();
    let mut set = |k: &str, v: Value| {
        attrs.insert(k.to_owned(), v);
    };
    if let Some(p) = &request.platform {
        set("platform", Value::from(p.as_str()));
        set("deviceType", Value::from(p.as_str()));
    }
    if let Some(v) = &request.app_version {
        set("appVersion", Value::from(v.as_str()));
    }
    set("id", Value::from(profile.id.as_str()));
    set("profileId", Value::from(profile.id.as_str()));
    set("accountId", Value::from(profile.account_id.as_str()));
    set("kids", Value::from(profile.is_kids));
    set(
        "country",
        profile
            .country
            .as_ref()
            .map_or(Value::Null, |c| Value::from(c.as_str())),
    );
    Value::Object(attrs)
}

/// One experiment that shaped a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub feature_key: String,
    pub experiment_key: String,
    pub variation_index: usize,
    pub variation_key: String,
    pub in_experiment: bool,
    /// Hashed into the variation (as opposed to forced for a preview or QA).
    pub hash_used: bool,
    /// The experiment's phase (0 for the first; `console::Config::served` names it): exposures
    /// and outcomes are kept per phase.
    pub phase: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageVariant {
    pub overrides: PageOverrides,
    pub assignments: Vec<Assignment>,
    /// Feature values that did not parse; logged by the caller, the page falls back.
    pub problems: Vec<String>,
}

/// Sticky-bucket documents of one profile, keyed `attributeName||attributeValue`
/// (`growthbook::sticky_attribute_key`).
pub type StickyDocs = HashMap<String, StickyAssignmentsDocument>;

/// The identities (`attributeName||attributeValue`) whose sticky-bucket documents evaluating
/// `set` for `attributes` may read: what serving loads before `page_variant_sticky`.
pub fn sticky_identities(set: &FeatureSet, attributes: &Value) -> Vec<(String, String)> {
    growthbook::sticky_bucket_identities(&set.features, attributes)
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// Collects the documents evaluation saves; the caller persists them.
#[derive(Default)]
struct SavedDocs(Mutex<Vec<StickyAssignmentsDocument>>);

impl StickyBucketService for SavedDocs {
    fn get_assignments(&self, _: &str, _: &str) -> Option<StickyAssignmentsDocument> {
        // Documents are loaded before evaluation (`BorrowedContext::with_sticky`).
        None
    }

    fn save_assignments(&self, doc: &StickyAssignmentsDocument) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(doc.clone());
    }
}

/// Evaluates the features for one page request: assignments of every experiment, and the
/// page overrides of Marquee's page features. No sticky bucketing (`page_variant_sticky`).
pub fn page_variant(
    set: &FeatureSet,
    attributes: Value,
    forced_variations: HashMap<String, i64>,
) -> PageVariant {
    page_variant_sticky(set, attributes, forced_variations, None).0
}

/// As `page_variant`, with sticky bucketing when the profile's documents are given: a profile
/// keeps the variation its document records for an experiment's bucket version, whatever the
/// weights, coverage or targeting say now. Returns the documents that changed (new
/// assignments), which the caller persists.
pub fn page_variant_sticky(
    set: &FeatureSet,
    attributes: Value,
    forced_variations: HashMap<String, i64>,
    sticky: Option<StickyDocs>,
) -> (PageVariant, Vec<StickyAssignmentsDocument>) {
    let saved = SavedDocs::default();
    // Borrowed, not cloned: the features are the same for every request.
    let mut ctx = BorrowedContext::new(
        &attributes,
        &set.features,
        &set.saved_groups,
        &forced_variations,
    );
    if let Some(docs) = sticky {
        ctx = ctx.with_sticky(&saved, docs);
    }
    let mut variant = PageVariant::default();
    // Every feature is evaluated, not only the page ones: an experiment on any feature
    // (a UI change, an A/A test) is assigned and exposed on the page request.
    let mut keys: Vec<&String> = set.features.keys().collect();
    keys.sort();
    for key in keys {
        let result = ctx.eval_feature(key);
        if let (Some(exp), Some(res)) = (&result.experiment, &result.experiment_result)
            && res.in_experiment
        {
            variant.assignments.push(Assignment {
                feature_key: key.to_owned(),
                experiment_key: exp.key.clone(),
                variation_index: res.variation_id,
                variation_key: res.key.clone(),
                in_experiment: true,
                // A sticky assignment was hashed once, in an earlier request.
                hash_used: res.hash_used || res.sticky_bucket_used,
                phase: exp
                    .phase
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            });
        }
        if key != ROWS_FEATURE && key != ROW_SETTINGS_FEATURE && key != ROW_ORDER_FEATURE {
            continue;
        }
        match overrides_from(key, &result.value) {
            Ok(o) => {
                if o.rows.is_some() {
                    variant.overrides.rows = o.rows;
                }
                if o.order.is_some() {
                    variant.overrides.order = o.order;
                }
                variant.overrides.settings.extend(o.settings);
            }
            Err(e) => variant.problems.push(format!("feature {key}: {e}")),
        }
    }
    drop(ctx);
    let mut docs = saved.0.into_inner().unwrap_or_else(PoisonError::into_inner);
    // The last save of an identity holds all of its assignments.
    let mut seen = std::collections::HashSet::new();
    docs.reverse();
    docs.retain(|d| seen.insert((d.attribute_name.clone(), d.attribute_value.clone())));
    (variant, docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Country, ProfileId};

    #[test]
    fn the_row_order_feature_sets_the_page_order() {
        use crate::engine::rows::RowOrder;
        let o = overrides_from(ROW_ORDER_FEATURE, &serde_json::json!("engagement")).unwrap();
        assert_eq!(o.order, Some(RowOrder::Engagement));
        assert!(o.rows.is_none() && o.settings.is_empty());
        assert!(overrides_from(ROW_ORDER_FEATURE, &serde_json::json!("random")).is_err());
        assert!(
            overrides_from(ROW_ORDER_FEATURE, &Value::Null)
                .unwrap()
                .is_empty()
        );
    }

    fn write(dir: &Path, name: &str, json: &str) {
        std::fs::write(dir.join(name), json).unwrap();
    }

    fn profile(id: &str) -> Profile {
        Profile {
            id: ProfileId::parse(id).unwrap(),
            account_id: AccountId::parse(id).unwrap(),
            name: id.into(),
            is_kids: false,
            maturity_limit: None,
            country: Some(Country::parse("US").unwrap()),
            onboarding_genres: vec![],
        }
    }

    const AB: &str = r#"{"features": {"home-rows": {"defaultValue": null, "rules": [
        {"key": "trending-first", "variations": [null, ["trending", "top-picks"]],
         "meta": [{"key": "control"}, {"key": "trending-first"}], "weights": [0.5, 0.5]}]}}}"#;

    #[test]
    fn loads_validates_and_summarises() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.json", AB);
        let ok = |_: &PageOverrides| Ok(());
        let set = FeatureSet::load_dir(dir.path(), &ok).unwrap();
        let exps = set.experiments();
        assert_eq!(exps.len(), 1);
        assert_eq!(exps[0].key, "trending-first");
        assert_eq!(exps[0].variations[1].key, "trending-first");
        assert_eq!(exps[0].variations[1].weight, 0.5);

        let reject = |o: &PageOverrides| match &o.rows {
            Some(rows) if rows.iter().any(|r| r == "trending") => {
                Err(PageError::ListedTwice("trending".into()))
            }
            _ => Ok(()),
        };
        let err = FeatureSet::load_dir(dir.path(), &reject).unwrap_err();
        assert!(
            matches!(
                &err,
                FeatureError::Invalid {
                    problem: InvalidFeature::Page(_),
                    ..
                }
            ),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.ends_with(
                "a.json: features.home-rows.rules[0].variations[1][0]: row \"trending\" is listed twice"
            ),
            "{err}"
        );

        write(
            dir.path(),
            "b.json",
            r#"{"features": {"x": {"rules": [{"coverage": "all"}]}}}"#,
        );
        let err = FeatureSet::load_dir(dir.path(), &ok)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.json: features.x.rules[0].coverage: invalid type"),
            "{err}"
        );

        write(dir.path(), "b.json", AB);
        let err = FeatureSet::load_dir(dir.path(), &ok).unwrap_err();
        assert!(err.to_string().contains("already defined in"), "{err}");

        // A directory that cannot be read is not a mistake in a file.
        let err = FeatureSet::load_dir(&dir.path().join("missing"), &ok).unwrap_err();
        assert!(matches!(err, FeatureError::Read { .. }), "{err:?}");
    }

    #[test]
    fn assignment_is_deterministic_and_forceable() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.json", AB);
        let set = FeatureSet::load_dir(dir.path(), &|_| Ok(())).unwrap();
        let req = RequestInfo::default();
        let mut seen = [0usize; 2];
        for i in 0..400 {
            let p = profile(&i.to_string());
            let a = page_variant(&set, attributes(&p, &req), HashMap::new());
            let b = page_variant(&set, attributes(&p, &req), HashMap::new());
            assert_eq!(a, b);
            assert_eq!(a.assignments.len(), 1);
            let v = a.assignments[0].variation_index;
            seen[v] += 1;
            assert_eq!(a.overrides.rows.is_some(), v == 1);
        }
        assert!(seen[0] > 150 && seen[1] > 150, "{seen:?}");
        let forced = page_variant(
            &set,
            attributes(&profile("1"), &req),
            HashMap::from([("trending-first".to_owned(), 1)]),
        );
        assert_eq!(forced.assignments[0].variation_index, 1);
        assert!(!forced.assignments[0].hash_used);
    }
}
