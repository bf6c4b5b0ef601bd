//! GrowthBook feature-flag and experiment evaluation (SDK spec 0.8.0), written by hand.
//!
//! A faithful port of the reference JavaScript SDK's evaluation semantics — conditions,
//! hashing, rollouts, experiments, prerequisites, sticky bucketing — verified against
//! GrowthBook's cross-SDK conformance suite (`tests/growthbook_conformance.rs`). It does no network
//! I/O: the caller supplies the feature payload and the user in a [`Context`].
//!
//! ```
//! use marquee::experiments::growthbook::{Context, FeatureSource};
//!
//! let mut ctx = Context::from_json(r#"{
//!     "attributes": {"id": "123", "country": "US"},
//!     "features": {"new-ranker": {"defaultValue": false,
//!         "rules": [{"condition": {"country": "US"}, "force": true}]}}
//! }"#).expect("valid context JSON");
//! let result = marquee::experiments::growthbook::eval_feature(&mut ctx, "new-ranker");
//! assert!(result.on);
//! assert_eq!(result.source, FeatureSource::Force);
//! ```

mod condition;
mod context;
mod experiment;
mod feature;
mod hash;
mod js;
mod sticky;
mod types;

pub use condition::{eval_condition, padded_version_string};
pub use context::{BorrowedContext, Context, TrackingCallback, sticky_bucket_identities};
pub use hash::{
    choose_variation, get_bucket_ranges, get_equal_weights, get_query_string_override, hash,
    in_namespace, in_range,
};
pub use sticky::{
    InMemoryStickyBucketService, StickyBucketService, sticky_attribute_key, sticky_experiment_key,
};
pub use types::{
    ContextualBanditDefinition, ContextualBanditLeaf, ContextualBanditSelection, Experiment,
    ExperimentResult, FeatureDefinition, FeatureResult, FeatureRule, FeatureSource, Filter,
    Namespace, ParentCondition, SavedGroups, StickyAssignmentsDocument, TrackData, VariationMeta,
    VariationRange,
};

/// Evaluate feature `key` for the user in `ctx`.
///
/// Takes `&mut` because evaluation may record sticky-bucket assignments and exposures.
/// An unknown key is not an error: the result has source
/// [`FeatureSource::UnknownFeature`] and value `null`.
pub fn eval_feature(ctx: &mut Context, key: &str) -> FeatureResult {
    ctx.eval_feature(key)
}

/// Run an experiment (not tied to a feature) for the user in `ctx`.
pub fn run_experiment(ctx: &mut Context, experiment: &Experiment) -> ExperimentResult {
    ctx.run(experiment)
}
