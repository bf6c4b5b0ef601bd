//! GrowthBook's official cross-SDK conformance suite (`cases.json` of the JS SDK).
//!
//! Every case of every group below is run; per-group pass counts and the names of failing
//! cases are printed (`cargo test -- --nocapture` to see them), and the test fails if any
//! case fails. Case shapes are those the official SDK test runners read.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use growthbook::{
    Context, Experiment, InMemoryStickyBucketService, SavedGroups, StickyAssignmentsDocument,
    StickyBucketService, VariationRange,
};
use marquee::experiments::growthbook;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// GrowthBook's cross-SDK suite, vendored with its source and licence (`tests/conformance/`).
const CASES_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/growthbook-cases.json"
);

/// Tolerance for floats (hashes, bucket ranges, weights); the JS runner rounds to 1e-8.
const EPSILON: f64 = 1e-6;

type CaseResult = Result<(), String>;

/// Runs one case (the case's JSON array) of a group.
type CaseRunner = fn(&[Value]) -> CaseResult;

/// The groups the acceptance criterion names, with their expected case counts.
const REQUIRED: &[(&str, usize, CaseRunner)] = &[
    ("evalCondition", 248, eval_condition_case),
    ("hash", 15, hash_case),
    ("getBucketRange", 13, bucket_range_case),
    ("chooseVariation", 13, choose_variation_case),
    ("inNamespace", 16, in_namespace_case),
    ("getEqualWeights", 6, equal_weights_case),
    ("feature", 55, feature_case),
    ("run", 73, run_case),
    ("stickyBucket", 13, sticky_bucket_case),
];

/// Further groups of the suite this crate also implements; they must pass too.
/// (`decrypt` and `urlRedirect` concern SDK features outside this crate's scope.)
const EXTRA: &[(&str, CaseRunner)] = &[
    ("getQueryStringOverride", query_string_case),
    ("contextualBandit", feature_case),
];

#[test]
fn conformance_suite() {
    let text = std::fs::read_to_string(CASES_PATH)
        .unwrap_or_else(|e| panic!("cannot read {CASES_PATH}: {e}"));
    let suite: Value = serde_json::from_str(&text).expect("cases file is JSON");
    println!(
        "GrowthBook conformance suite, specVersion {}",
        suite["specVersion"]
    );

    let mut total_failed = 0;
    let mut total_required = 0;
    let groups = REQUIRED
        .iter()
        .map(|(name, count, run)| (*name, Some(*count), *run))
        .chain(EXTRA.iter().map(|(name, run)| (*name, None, *run)));
    for (name, expected_count, run) in groups {
        let cases = suite[name]
            .as_array()
            .unwrap_or_else(|| panic!("group {name} missing"));
        if let Some(count) = expected_count {
            assert_eq!(cases.len(), count, "unexpected number of {name} cases");
            total_required += count;
        }
        let failures: Vec<String> = cases
            .iter()
            .enumerate()
            .filter_map(|(i, case)| {
                let label = format!("{name}[{i}] {}", case_name(case));
                let outcome = catch_unwind(AssertUnwindSafe(|| match case.as_array() {
                    Some(items) => run(items),
                    None => Err("case is not an array".to_owned()),
                }))
                .unwrap_or_else(|_| Err("panicked".to_owned()));
                outcome.err().map(|why| format!("{label}: {why}"))
            })
            .collect();
        let extra = if expected_count.is_none() {
            " (extra)"
        } else {
            ""
        };
        println!(
            "{name}{extra}: {} passed, {} failed",
            cases.len() - failures.len(),
            failures.len()
        );
        for failure in &failures {
            println!("  FAILED {failure}");
        }
        total_failed += failures.len();
    }
    assert_eq!(total_required, 452);
    assert_eq!(total_failed, 0, "{total_failed} conformance case(s) failed");
}

fn case_name(case: &Value) -> String {
    match case.get(0) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn arg(case: &[Value], i: usize) -> Result<&Value, String> {
    case.get(i)
        .ok_or_else(|| format!("case has no element {i}"))
}

fn parse<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("cannot parse {v}: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("serializing result: {e}"))
}

/// Deep equality with float tolerance; objects must have the same keys.
fn approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < EPSILON,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| approx_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
        }
        _ => a == b,
    }
}

fn expect_eq(what: &str, actual: &Value, expected: &Value) -> CaseResult {
    if approx_eq(actual, expected) {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected}, got {actual}"))
    }
}

fn usize_arg(v: &Value) -> Result<usize, String> {
    // Negative counts (e.g. getEqualWeights(-1)) mean "none" in the reference.
    v.as_i64()
        .map(|n| usize::try_from(n).unwrap_or(0))
        .ok_or_else(|| format!("{v} is not an integer"))
}

// ---------------------------------------------------------------------------------------
// Groups

/// [name, condition, attributes, expected, savedGroups?]
fn eval_condition_case(case: &[Value]) -> CaseResult {
    let groups: SavedGroups = match case.get(4) {
        Some(g) => parse(g)?,
        None => SavedGroups::new(),
    };
    let actual = growthbook::eval_condition(arg(case, 2)?, arg(case, 1)?, &groups);
    expect_eq("result", &json!(actual), arg(case, 3)?)
}

/// [seed, value, version, expected | null]
fn hash_case(case: &[Value]) -> CaseResult {
    let seed = arg(case, 0)?.as_str().ok_or("seed is not a string")?;
    let value = arg(case, 1)?.as_str().ok_or("value is not a string")?;
    let version = arg(case, 2)?.as_u64().ok_or("version is not an integer")?;
    let version = u32::try_from(version).map_err(|e| e.to_string())?;
    let actual = growthbook::hash(seed, value, version);
    expect_eq("hash", &json!(actual), arg(case, 3)?)
}

/// [name, [numVariations, coverage, weights | null], expected ranges]
fn bucket_range_case(case: &[Value]) -> CaseResult {
    let args = arg(case, 1)?;
    let n = usize_arg(&args[0])?;
    let coverage = args[1].as_f64().ok_or("coverage is not a number")?;
    let weights: Option<Vec<f64>> = parse(&args[2])?;
    let actual = growthbook::get_bucket_ranges(n, coverage, weights.as_deref());
    expect_eq("ranges", &to_json(&actual), arg(case, 2)?)
}

/// [name, hash, ranges, expected index | -1]
fn choose_variation_case(case: &[Value]) -> CaseResult {
    let n = arg(case, 1)?.as_f64().ok_or("hash is not a number")?;
    let ranges: Vec<VariationRange> = parse(arg(case, 2)?)?;
    let actual = growthbook::choose_variation(n, &ranges).map_or(-1, |i| i as i64);
    expect_eq("variation", &json!(actual), arg(case, 3)?)
}

/// [name, hash value, [namespace, start, end], expected]
fn in_namespace_case(case: &[Value]) -> CaseResult {
    let id = arg(case, 1)?.as_str().ok_or("id is not a string")?;
    let namespace = parse(arg(case, 2)?)?;
    let actual = growthbook::in_namespace(id, &namespace);
    expect_eq("inNamespace", &json!(actual), arg(case, 3)?)
}

/// [numVariations, expected weights]
fn equal_weights_case(case: &[Value]) -> CaseResult {
    let actual = growthbook::get_equal_weights(usize_arg(arg(case, 0)?)?);
    expect_eq("weights", &json!(actual), arg(case, 1)?)
}

/// [name, context, feature key, expected FeatureResult (ruleId defaults to "")]
fn feature_case(case: &[Value]) -> CaseResult {
    let mut ctx: Context = parse(arg(case, 1)?)?;
    let key = arg(case, 2)?.as_str().ok_or("key is not a string")?;
    let mut expected = arg(case, 3)?.clone();
    if let Value::Object(map) = &mut expected {
        map.entry("ruleId").or_insert_with(|| json!(""));
    }
    let actual = growthbook::eval_feature(&mut ctx, key);
    expect_eq("feature result", &to_json(&actual), &expected)
}

/// [name, context, experiment, value, inExperiment, hashUsed]
fn run_case(case: &[Value]) -> CaseResult {
    let mut ctx: Context = parse(arg(case, 1)?)?;
    let experiment: Experiment = parse(arg(case, 2)?)?;
    let result = growthbook::run_experiment(&mut ctx, &experiment);
    expect_eq("value", &result.value, arg(case, 3)?)?;
    expect_eq("inExperiment", &json!(result.in_experiment), arg(case, 4)?)?;
    expect_eq("hashUsed", &json!(result.hash_used), arg(case, 5)?)
}

/// [name, context, stored docs, feature key, expected experimentResult | null,
///  expected docs in the context afterwards]
fn sticky_bucket_case(case: &[Value]) -> CaseResult {
    let mut ctx: Context = parse(arg(case, 1)?)?;
    let service = Arc::new(InMemoryStickyBucketService::new());
    let seeded: Vec<StickyAssignmentsDocument> = parse(arg(case, 2)?)?;
    for doc in &seeded {
        service.save_assignments(doc);
    }
    ctx.sticky_bucket_service = Some(service);
    ctx.refresh_sticky_buckets();

    let key = arg(case, 3)?.as_str().ok_or("key is not a string")?;
    let result = growthbook::eval_feature(&mut ctx, key);
    let actual_result = result
        .experiment_result
        .as_ref()
        .map_or(Value::Null, to_json);
    expect_eq("experimentResult", &actual_result, arg(case, 4)?)?;

    let expected_docs: HashMap<String, StickyAssignmentsDocument> = parse(arg(case, 5)?)?;
    expect_eq(
        "stickyBucketAssignmentDocs",
        &to_json(&ctx.sticky_bucket_assignment_docs),
        &to_json(&expected_docs),
    )
}

/// [name, experiment key, url, numVariations, expected | null]
fn query_string_case(case: &[Value]) -> CaseResult {
    let key = arg(case, 1)?.as_str().ok_or("key is not a string")?;
    let url = arg(case, 2)?.as_str().ok_or("url is not a string")?;
    let n = usize_arg(arg(case, 3)?)?;
    let actual = growthbook::get_query_string_override(key, url, n);
    expect_eq("override", &json!(actual), arg(case, 4)?)
}
