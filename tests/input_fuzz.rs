//! Fuzzing the parsers of untrusted input with proptest, in bounded runs that `cargo test`
//! includes: first the domain parsers every client string goes through, then GraphQL
//! variables sent to a real server — whatever comes, the answer is data or an error with a
//! code, never a 5xx, never an echo of a long input, never a stored value out of bounds.

mod common;

use common::{Server, TestDb, import_and_train};
use marquee::clock::{EARLIEST_EVENT, EventWindow, parse_rfc3339};
use marquee::domain::{
    ClientEventId, Country, EXCERPT_CHARS, EventAction, EventKind, ProfileId, ProfileName,
    bounded_text, excerpt,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Strings as an attacker writes them: any character (controls, NUL, emoji, combining marks),
/// sometimes very long.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,40}",
        1 => proptest::collection::vec(any::<char>(), 100..3000).prop_map(|c| c.into_iter().collect()),
        1 => ("[a-z]{1,3}", 0usize..2000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

/// An error message may quote the input, but only `EXCERPT_CHARS` of it.
fn short(message: &str) -> bool {
    message.chars().count() <= EXCERPT_CHARS * 10 + 200
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_parsers_bound_what_they_accept_and_what_they_echo(raw in hostile()) {
        match bounded_text("field", &raw, 64) {
            Ok(t) => {
                prop_assert!(t.chars().count() <= 64);
                prop_assert!(!t.chars().any(char::is_control));
            }
            Err(e) => prop_assert!(short(&e.0), "{}", e.0),
        }
        match ProfileName::parse(&raw) {
            Ok(n) => {
                let n = n.into_string();
                prop_assert!((1..=ProfileName::MAX_CHARS).contains(&n.chars().count()));
                prop_assert!(!n.chars().any(char::is_control));
                prop_assert_eq!(n.trim(), n.as_str());
            }
            Err(e) => prop_assert!(short(&e.0), "{}", e.0),
        }
        for result in [
            ProfileId::parse(&raw).map(|id| id.as_str().to_owned()),
            ClientEventId::parse(&raw).map(|id| id.as_str().to_owned()),
        ] {
            match result {
                Ok(id) => {
                    prop_assert!(!id.is_empty() && id.len() <= 128);
                    prop_assert!(!id.chars().any(|c| c.is_whitespace() || c.is_control()));
                }
                Err(e) => prop_assert!(short(&e.0), "{}", e.0),
            }
        }
        if let Err(e) = Country::parse(&raw) {
            prop_assert!(short(&e.0), "{}", e.0);
        }
        if let Err(e) = parse_rfc3339(&raw) {
            prop_assert!(short(&e.0), "{}", e.0);
        }
        let quoted = excerpt(&raw);
        prop_assert!(quoted.chars().count() <= EXCERPT_CHARS * 10 + 3);
        prop_assert!(!quoted.chars().any(char::is_control));
    }

    #[test]
    fn event_times_and_values_are_in_range_once_parsed(
        at in any::<i64>(),
        now in -1_000_000_000_000i64..10_000_000_000_000,
        kind in proptest::sample::select(vec![
            EventKind::Play, EventKind::Progress, EventKind::Complete, EventKind::Rating,
            EventKind::ThumbsUp, EventKind::ThumbsDown, EventKind::Click,
        ]),
        value in proptest::option::of(prop_oneof![any::<f64>(), -1.0f64..6.0]),
    ) {
        let window = EventWindow::default();
        if let Ok(t) = window.check(at, now) {
            prop_assert!(t >= EARLIEST_EVENT && t <= now + window.max_ahead);
        }
        if let Ok(action) = EventAction::from_parts(kind, value) {
            match action {
                EventAction::Progress(p) => prop_assert!((0.0..=1.0).contains(&p.get())),
                EventAction::Rating(r) => prop_assert!((0.5..=5.0).contains(&r.get())),
                _ => prop_assert!(value.is_none_or(f64::is_finite)),
            }
        }
    }
}

/// A JSON value as a client might send anything in a variable's place.
fn hostile_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile().prop_map(Value::from),
        proptest::sample::select(vec![
            "1",
            "2",
            "PLAY",
            "RATING",
            "PROGRESS",
            "PG",
            "NC_17",
            "Comedy",
            "1998-04-22T10:00:00Z",
            "9999-12-31T23:59:59Z"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,16}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An event input with well-known field names and hostile values.
fn hostile_event() -> impl Strategy<Value = Value> {
    (
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
    )
        .prop_map(|(id, title, kind, value, at, request)| {
            json!({"clientEventId": id, "titleId": title, "kind": kind, "value": value,
                   "occurredAt": at, "requestId": request})
        })
}

fn hostile_profile() -> impl Strategy<Value = Value> {
    (
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
        hostile_json(),
    )
        .prop_map(|(id, account, name, kids, limit, country, genres)| {
            json!({"id": id, "accountId": account, "name": name, "isKids": kids,
                   "maturityLimit": limit, "country": country, "onboardingGenres": genres})
        })
}

const OPERATIONS: [&str; 4] = [
    "mutation($p: ID!, $e: [EventInput!]!) { recordEvents(profileId: $p, events: $e) { accepted } }",
    "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id name maturityLimit onboardingGenres } }",
    "query($q: String!, $f: Int!, $p: ID) { search(query: $q, first: $f, profileId: $p) { id } }",
    "query($g: String, $a: String, $p: ID, $pl: String, $at: JSON) { browse(genre: $g, after: $a, profileId: $p) { totalCount } home(profileId: \"1\", platform: $pl, attributes: $at) { requestId } }",
];

/// Every error carries a code and quotes little; data, when there is some, is within bounds.
fn check_answer(answer: &Value) -> Result<(), TestCaseError> {
    if let Some(errors) = answer["errors"].as_array() {
        for e in errors {
            let code = e["extensions"]["code"].as_str();
            prop_assert!(code.is_some(), "an error without a code: {e}");
            prop_assert!(code != Some("INTERNAL"), "bad input reached a defect: {e}");
            let message = e["message"].as_str().unwrap_or_default();
            prop_assert!(message.chars().count() < 600, "a long echo: {message:.200}");
        }
    }
    if let Some(p) = answer["data"]["createProfile"].as_object() {
        let name = p["name"].as_str().unwrap();
        prop_assert!(
            (1..=50).contains(&name.chars().count()) && !name.chars().any(char::is_control)
        );
        prop_assert!(p["onboardingGenres"].as_array().unwrap().len() <= 20);
    }
    Ok(())
}

#[test]
fn graphql_variables_never_get_past_the_boundary_unchecked() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    import_and_train(dir.path(), db.url());
    let server = Server::start(dir.path(), db.url(), &[]);
    // A case the fuzzer found: async-graphql's own message quotes a wrongly typed variable
    // whole; the server cuts it.
    let huge: serde_json::Map<String, Value> = (0..2_000)
        .map(|i| (format!("k{i}"), json!("x".repeat(50))))
        .collect();
    let answer = rt.block_on(server.gql(OPERATIONS[2], json!({"q": "toy", "f": huge, "p": "1"})));
    assert!(answer["errors"].is_array(), "{answer:.300}");
    check_answer(&answer).unwrap();
    let config = ProptestConfig {
        cases: 256,
        // Shrinking re-runs requests against the server; a failing case is clear enough.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        op in 0usize..OPERATIONS.len(),
        profile in prop_oneof![Just(json!("1")), Just(json!("1-kids")), hostile_json()],
        events in proptest::collection::vec(hostile_event(), 0..4),
        input in hostile_profile(),
        text in hostile_json(),
        other in hostile_json(),
        first in prop_oneof![Just(json!(5)), hostile_json()],
    )| {
        let variables = json!({
            "p": profile, "e": events, "i": input, "q": text, "f": first,
            "g": other, "a": text, "pl": other, "at": other,
        });
        let answer = rt.block_on(server.gql(OPERATIONS[op], variables));
        check_answer(&answer)?;
    });
}

#[test]
fn fuzz_helpers_reject_what_they_should() {
    // The strategies above must be able to produce the inputs the bounds are about.
    assert!(bounded_text("f", "a\u{0}b", 10).is_err());
    assert!(ProfileName::parse(&"😀".repeat(51)).is_err());
    assert!(ProfileName::parse(&"😀".repeat(50)).is_ok());
}
