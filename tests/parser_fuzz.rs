//! Fuzzing the parsers of files and rules Marquee reads (proptest, bounded runs in `cargo
//! test`): experiment JSON (`experiments/*.json`) and the GrowthBook conditions inside it,
//! evaluated against hostile attributes; and MovieLens/RecBole atomic files. Whatever comes,
//! the answer is a value or an error naming the file — never a panic.
//!
//! The runs here are small (`cargo test` must stay fast on 2 cores). For a longer run:
//! `PROPTEST_CASES=100000 cargo test --release --test parser_fuzz` (proptest reads the
//! variable; it overrides the case counts below).

use std::collections::HashMap;

use marquee::experiments::growthbook::{SavedGroups, eval_condition};
use marquee::experiments::{FeatureSet, page_variant};
use marquee::ingest::movielens;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Scalars as JSON writers and attackers produce them.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(-0.0),
            Just(1e308)
        ]
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        // Versions, regexes and dates, which operators parse.
        "[0-9]{1,3}(\\.[0-9x*]{0,3}){0,3}(-[a-z0-9.]{0,6})?".prop_map(Value::from),
        "[\\[\\](){}*+?|^$\\\\.a-z]{0,12}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:]{8}Z)?".prop_map(Value::from),
    ]
}

/// GrowthBook's operators, and some that are not.
const OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$regex",
    "$regexi",
    "$in",
    "$nin",
    "$ini",
    "$nini",
    "$all",
    "$alli",
    "$elemMatch",
    "$size",
    "$exists",
    "$type",
    "$not",
    "$and",
    "$or",
    "$nor",
    "$veq",
    "$vne",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$inGroup",
    "$notInGroup",
    "$bogus",
];

const ATTRIBUTES: &[&str] = &[
    "id",
    "kids",
    "country",
    "platform",
    "appVersion",
    "tags",
    "a.b",
];

/// JSON values up to a few levels deep, with GrowthBook's operators and attribute names as
/// keys often enough to reach the evaluator's every branch.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        let key = prop_oneof![
            3 => proptest::sample::select(OPERATORS).prop_map(str::to_owned),
            2 => proptest::sample::select(ATTRIBUTES).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => proptest::collection::vec(
            (proptest::sample::select(ATTRIBUTES).prop_map(str::to_owned), json_value()),
            0..6
        )
        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ]
}

/// Mostly `plausible`, sometimes any JSON value.
fn usually<S: Strategy<Value = Value> + 'static>(plausible: S) -> BoxedStrategy<Value> {
    prop_oneof![5 => plausible, 1 => json_value()].boxed()
}

/// A feature rule as GrowthBook writes them, each field sometimes of the wrong type.
fn rule() -> impl Strategy<Value = Value> {
    let n = 1usize..4;
    n.prop_flat_map(|n| {
        (
            usually(json_value()),
            usually(proptest::collection::vec(scalar(), n).prop_map(Value::Array)),
            usually(
                proptest::collection::vec(0.0f64..1.0, n)
                    .prop_map(|w| Value::Array(w.into_iter().map(Value::from).collect())),
            ),
            usually((0.0f64..=1.0).prop_map(Value::from)),
            proptest::sample::select(ATTRIBUTES),
            prop_oneof![Just(json!(1)), Just(json!(2)), json_value()],
            usually((0.0f64..1.0, 0.0f64..1.0).prop_map(|(a, b)| json!([a.min(b), a.max(b)]))),
            proptest::option::weighted(0.2, json_value()),
        )
    })
    .prop_map(
        |(condition, variations, weights, coverage, hash, version, range, force)| {
            let mut r = json!({
                "key": "fuzz",
                "seed": "fuzz",
                "condition": condition,
                "variations": variations,
                "weights": weights,
                "coverage": coverage,
                "hashAttribute": hash,
                "hashVersion": version,
            });
            if let Some(f) = force {
                r["force"] = f;
            } else if range.is_array() {
                r["range"] = range;
            }
            r
        },
    )
}

fn feature_file() -> impl Strategy<Value = Value> {
    // Marquee's page features take only page overrides; other keys any value.
    let key = prop_oneof![
        1 => Just("home-rows".to_owned()),
        1 => Just("home-row-settings".to_owned()),
        1 => Just("home-row-order".to_owned()),
        6 => "[a-z-]{1,12}",
    ];
    proptest::collection::vec(
        (key, json_value(), proptest::collection::vec(rule(), 0..3)),
        0..3,
    )
    .prop_map(|features| {
        let features: Map<String, Value> = features
            .into_iter()
            .map(|(k, default, rules)| (k, json!({"defaultValue": default, "rules": rules})))
            .collect();
        json!({"features": features})
    })
}

/// Text as a file holds it: valid JSON of the right shape, JSON with random edits, or junk.
fn mangled(text: String, cut: usize, junk: String) -> String {
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(cut % text.chars().count().max(1))
        .unwrap_or(0);
    let mut t = text;
    t.insert_str(cut, &junk);
    t
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Conditions against attributes: a boolean, never a panic (regex and version operands
    /// included).
    #[test]
    fn conditions_evaluate_without_panic(attrs in attributes(), cond in json_value()) {
        let _ = eval_condition(&attrs, &cond, &SavedGroups::default());
    }
}

proptest! {
    #![proptest_config(cases(300))]

    /// Experiment files: loaded or refused with an error naming the file; a loaded set
    /// assigns pages for any attributes and forced variations.
    #[test]
    fn experiment_files_load_or_are_refused(
        file in feature_file(),
        edit in proptest::option::of((any::<usize>(), "[\\[\\]{}\",:0-9a-z ]{1,4}")),
        attrs in attributes(),
        forced in proptest::collection::hash_map("[a-z]{1,6}", any::<i64>(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let text = file.to_string();
        let text = match edit {
            Some((at, junk)) => mangled(text, at, junk),
            None => text,
        };
        std::fs::write(dir.path().join("fuzz.json"), &text).unwrap();
        let accept = |_: &marquee::engine::rows::PageOverrides| Ok(());
        match FeatureSet::load_dir(dir.path(), &accept) {
            Ok(set) => {
                let forced: HashMap<String, i64> = forced;
                let _ = page_variant(&set, attrs.clone(), forced);
                let _ = page_variant(&set, json!({"id": "1", "kids": false}), HashMap::new());
                let _ = set.experiments();
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.json"), "{e}"),
        }
    }

    /// MovieLens/RecBole atomic files: read, or refused with `file:line`.
    #[test]
    fn movielens_files_read_or_are_refused(
        inter in atomic_file(INTER_HEADER, inter_line()),
        item in proptest::option::of(atomic_file(ITEM_HEADER, item_line())),
        user in proptest::option::of(atomic_file(USER_HEADER, user_line())),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.inter"), &inter).unwrap();
        if let Some(item) = &item {
            std::fs::write(dir.path().join("f.item"), item).unwrap();
        }
        if let Some(user) = &user {
            std::fs::write(dir.path().join("f.user"), user).unwrap();
        }
        match movielens::read_dir(dir.path(), None) {
            Ok(data) => {
                for i in &data.interactions {
                    prop_assert!(!i.item.as_str().is_empty());
                }
            }
            Err(e) => {
                let m = e.to_string();
                prop_assert!(m.contains("f.inter") || m.contains("f.item") || m.contains("f.user"), "{m}");
            }
        }
        if item.is_some() {
            let _ = movielens::read_titles(dir.path());
        }
    }
}

const INTER_HEADER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float";
const ITEM_HEADER: &str =
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq";
const USER_HEADER: &str = "user_id:token\tage:token\tcountry:token";

/// A hostile field: numbers out of range or malformed, any text, nothing.
fn hostile_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,25}",
        "-?[0-9]{1,3}\\.[0-9]{0,3}(e[+-]?[0-9]{1,3})?",
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        "[ -~]{0,20}",
        any::<String>().prop_map(|s| s.replace(['\t', '\n', '\r'], " ")),
        Just(String::new()),
    ]
}

/// A line of plausible fields, one of them now and then hostile, now and then a field too
/// few or too many.
fn line(plausible: Vec<BoxedStrategy<String>>) -> impl Strategy<Value = String> {
    let n = plausible.len();
    (
        plausible,
        proptest::option::weighted(0.15, (0..n, hostile_field())),
        prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
    )
        .prop_map(|(mut fields, bad, arity)| {
            if let Some((i, f)) = bad {
                fields[i] = f;
            }
            match arity {
                -1 => {
                    fields.pop();
                }
                1 => fields.push("extra".into()),
                _ => {}
            }
            fields.join("\t")
        })
}

fn id() -> BoxedStrategy<String> {
    "[1-9][0-9]{0,2}".boxed()
}

fn inter_line() -> impl Strategy<Value = String> {
    line(vec![
        id(),
        id(),
        "[1-5](\\.[05])?".boxed(),
        "8[0-9]{8}".boxed(),
    ])
}
fn item_line() -> impl Strategy<Value = String> {
    line(vec![
        id(),
        "[A-Za-z ,'().-]{1,30}".boxed(),
        "19[0-9]{2}".boxed(),
        "(Action|Comedy|Drama|Children's|Sci-Fi)( (Action|Comedy|Drama)){0,2}".boxed(),
    ])
}
fn user_line() -> impl Strategy<Value = String> {
    line(vec![
        id(),
        "[1-9][0-9]".boxed(),
        "(US|DE|FR|[A-Z]{2})".boxed(),
    ])
}

fn atomic_file(
    header: &'static str,
    line: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    (
        prop_oneof![
            8 => Just(header.to_owned()),
            1 => "[ -~\t]{0,40}",
            1 => Just(String::new()),
        ],
        proptest::collection::vec(line, 0..12),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(h, lines, nl)| {
            let mut text = h;
            for l in lines {
                text.push_str(nl);
                text.push_str(&l);
            }
            text
        })
}

/// Nesting beyond serde_json's recursion limit is a refused file, not a stack overflow.
#[test]
fn deeply_nested_experiment_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 100_000;
    let cond = format!("{}{}", "{\"$not\":".repeat(depth), "}".repeat(depth));
    let text =
        format!("{{\"features\":{{\"x\":{{\"rules\":[{{\"condition\":{cond},\"force\":1}}]}}}}}}");
    std::fs::write(dir.path().join("deep.json"), text).unwrap();
    let accept = |_: &marquee::engine::rows::PageOverrides| Ok(());
    let err = FeatureSet::load_dir(dir.path(), &accept).unwrap_err();
    assert!(err.to_string().contains("deep.json"), "{err}");
}
