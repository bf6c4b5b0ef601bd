//! MongoDB-style targeting conditions (`mongrule.ts` in the reference SDK).
//!
//! A condition is a JSON object whose keys are either logical operators (`$and`, `$or`,
//! `$nor`, `$not`) or dot-separated attribute paths; path values are either literal values
//! or objects of operators (`{"$gt": 5}`). Coercions follow JavaScript (see [`super::js`]).
//!
//! Malformed conditions never panic: an unknown operator, an operand of the wrong type or
//! an invalid regex makes that comparison false. Where JS would do something accidental
//! with a non-object condition (e.g. iterate a string's characters), this evaluates to false.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::js;
use super::types::SavedGroups;

/// Evaluate `condition` against `attributes`.
pub fn eval_condition(attributes: &Value, condition: &Value, saved_groups: &SavedGroups) -> bool {
    let Value::Object(condition) = condition else {
        return false;
    };
    eval_object(attributes, condition, saved_groups)
}

fn eval_object(obj: &Value, condition: &Map<String, Value>, groups: &SavedGroups) -> bool {
    condition.iter().all(|(key, value)| match key.as_str() {
        "$or" => value.as_array().is_some_and(|c| eval_or(obj, c, groups)),
        "$nor" => value.as_array().is_some_and(|c| !eval_or(obj, c, groups)),
        "$and" => value
            .as_array()
            .is_some_and(|c| c.iter().all(|c| eval_condition(obj, c, groups))),
        "$not" => value.is_object() && !eval_condition(obj, value, groups),
        path => match array_length(obj, path) {
            Some(len) => eval_condition_value(value, &len, groups, false),
            None => eval_condition_value(value, get_path(obj, path), groups, false),
        },
    })
}

/// `$or` over no conditions passes (as in the reference), otherwise any must pass.
fn eval_or(obj: &Value, conditions: &[Value], groups: &SavedGroups) -> bool {
    conditions.is_empty() || conditions.iter().any(|c| eval_condition(obj, c, groups))
}

static NULL: Value = Value::Null;

/// The value at a dot-separated path, `null` when any step is missing.
///
/// Like JS's `key in obj`, a step into an array accepts an index or `length`.
pub(crate) fn get_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut current = obj;
    for part in path.split('.') {
        current = match current {
            Value::Object(map) => match map.get(part) {
                Some(v) => v,
                None => return &NULL,
            },
            Value::Array(items) => match part.parse::<usize>() {
                // Only canonical indices ("1", not "01") are array keys in JS.
                Ok(i) if i.to_string() == part => match items.get(i) {
                    Some(v) => v,
                    None => return &NULL,
                },
                _ => return &NULL,
            },
            _ => return &NULL,
        };
    }
    current
}

/// `path` ending in `length` applied to an array: the one path step JS resolves that does
/// not exist in the JSON itself.
fn array_length(obj: &Value, path: &str) -> Option<Value> {
    let parent = match path.rsplit_once('.') {
        Some((head, "length")) => get_path(obj, head),
        None if path == "length" => obj,
        _ => return None,
    };
    parent.as_array().map(|items| Value::from(items.len()))
}

/// Evaluate a single value against a condition value (literal or operator object).
fn eval_condition_value(
    condition: &Value,
    value: &Value,
    groups: &SavedGroups,
    insensitive: bool,
) -> bool {
    match condition {
        // Literal comparisons coerce the attribute the way JS does (`value + ""`,
        // `value * 1`, `!!value`).
        Value::String(s) => {
            let actual = js::to_js_string(value);
            if insensitive {
                actual.to_lowercase() == s.to_lowercase()
            } else {
                actual == *s
            }
        }
        Value::Number(n) => n.as_f64() == Some(js::to_number(value)),
        Value::Bool(b) => !value.is_null() && js::truthy(value) == *b,
        Value::Null => value.is_null(),
        Value::Object(ops) if is_operator_object(ops) => ops
            .iter()
            .all(|(op, expected)| eval_operator(op, value, expected, groups)),
        // Arrays and plain objects must match exactly.
        Value::Array(_) | Value::Object(_) => js::json_equal(value, condition),
    }
}

/// An object whose keys all start with `$` (and has at least one key).
fn is_operator_object(obj: &Map<String, Value>) -> bool {
    !obj.is_empty() && obj.keys().all(|k| k.starts_with('$'))
}

fn eval_operator(op: &str, actual: &Value, expected: &Value, groups: &SavedGroups) -> bool {
    match op {
        "$veq" => version_cmp(actual, expected).is_eq(),
        "$vne" => version_cmp(actual, expected).is_ne(),
        "$vgt" => version_cmp(actual, expected).is_gt(),
        "$vgte" => version_cmp(actual, expected).is_ge(),
        "$vlt" => version_cmp(actual, expected).is_lt(),
        "$vlte" => version_cmp(actual, expected).is_le(),
        "$eq" => js::strict_equals(actual, expected),
        "$ne" => !js::strict_equals(actual, expected),
        "$lt" => js::less_than(actual, expected) == Some(true),
        "$gt" => js::less_than(expected, actual) == Some(true),
        // `a <= b` is `!(b < a)` except that a NaN comparison is false either way.
        "$lte" => js::less_than(expected, actual) == Some(false),
        "$gte" => js::less_than(actual, expected) == Some(false),
        "$exists" => {
            if js::truthy(expected) {
                !actual.is_null()
            } else {
                actual.is_null()
            }
        }
        "$in" => expected.as_array().is_some_and(|e| is_in(actual, e, false)),
        "$ini" => expected.as_array().is_some_and(|e| is_in(actual, e, true)),
        "$nin" => expected
            .as_array()
            .is_some_and(|e| !is_in(actual, e, false)),
        "$nini" => expected.as_array().is_some_and(|e| !is_in(actual, e, true)),
        "$inGroup" => is_in(actual, saved_group(groups, expected), false),
        "$notInGroup" => !is_in(actual, saved_group(groups, expected), false),
        "$not" => !eval_condition_value(expected, actual, groups, false),
        "$size" => match actual {
            Value::Array(items) => {
                eval_condition_value(expected, &Value::from(items.len()), groups, false)
            }
            _ => false,
        },
        "$elemMatch" => elem_match(actual, expected, groups),
        "$all" => expected
            .as_array()
            .is_some_and(|e| is_in_all(actual, e, groups, false)),
        "$alli" => expected
            .as_array()
            .is_some_and(|e| is_in_all(actual, e, groups, true)),
        "$regex" => regex_test(expected, actual, false),
        "$regexi" => regex_test(expected, actual, true),
        "$type" => expected.as_str() == Some(type_name(actual)),
        // Unknown operators fail closed.
        _ => false,
    }
}

fn saved_group<'a>(groups: &'a SavedGroups, id: &Value) -> &'a [Value] {
    // JS indexes the groups object with `String(id)`.
    groups
        .get(&js::to_js_string(id))
        .map_or(&[], |members| members.as_slice())
}

/// `$in`: membership by strict equality; an array attribute matches if any element does.
fn is_in(actual: &Value, expected: &[Value], insensitive: bool) -> bool {
    let fold = |v: &Value| match v {
        Value::String(s) if insensitive => Value::String(s.to_lowercase()),
        other => other.clone(),
    };
    let contains = |needle: &Value| {
        if insensitive {
            let needle = fold(needle);
            expected
                .iter()
                .any(|e| js::strict_equals(&fold(e), &needle))
        } else {
            expected.iter().any(|e| js::strict_equals(e, needle))
        }
    };
    match actual {
        Value::Array(items) => items.iter().any(contains),
        other => contains(other),
    }
}

/// `$all`: every expected condition is met by some element of the attribute array.
fn is_in_all(actual: &Value, expected: &[Value], groups: &SavedGroups, insensitive: bool) -> bool {
    let Value::Array(items) = actual else {
        return false;
    };
    expected.iter().all(|cond| {
        items
            .iter()
            .any(|item| eval_condition_value(cond, item, groups, insensitive))
    })
}

/// `$elemMatch`: some (truthy) element matches; the operand is either an operator object
/// applied to the element or a full condition evaluated with the element as the object.
fn elem_match(actual: &Value, expected: &Value, groups: &SavedGroups) -> bool {
    let (Value::Array(items), Value::Object(cond)) = (actual, expected) else {
        return false;
    };
    let operator = is_operator_object(cond);
    items.iter().filter(|item| js::truthy(item)).any(|item| {
        if operator {
            eval_condition_value(expected, item, groups, false)
        } else {
            eval_object(item, cond, groups)
        }
    })
}

/// The `$type` name of a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
    }
}

/// `$regex`: unanchored search, the attribute coerced to a string like `RegExp#test` does.
///
/// Patterns are compiled with the `regex` crate, whose syntax is close to JS for the
/// common subset; JS-only features (look-around, back-references) fail to compile and
/// therefore evaluate to false, as an invalid pattern does in the reference.
fn regex_test(pattern: &Value, actual: &Value, insensitive: bool) -> bool {
    let Some(pattern) = pattern.as_str() else {
        return false;
    };
    compiled_regex(pattern, insensitive).is_some_and(|re| re.is_match(&js::to_js_string(actual)))
}

/// Compiled patterns are cached: the same handful of patterns is evaluated on every
/// request. `None` caches a pattern that failed to compile.
fn compiled_regex(pattern: &str, insensitive: bool) -> Option<Regex> {
    type Cache = Mutex<HashMap<(String, bool), Option<Regex>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    // A cache far larger than any real payload means patterns come from user input;
    // start over rather than grow without bound.
    const MAX_ENTRIES: usize = 1024;

    let cache = CACHE.get_or_init(Default::default);
    let key = (pattern.to_owned(), insensitive);
    if let Ok(guard) = cache.lock()
        && let Some(hit) = guard.get(&key)
    {
        return hit.clone();
    }
    let compiled = RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .build()
        .ok();
    // A poisoned lock only loses caching, never correctness.
    if let Ok(mut guard) = cache.lock() {
        if guard.len() >= MAX_ENTRIES {
            guard.clear();
        }
        guard.insert(key, compiled.clone());
    }
    compiled
}

/// Compare two version strings (see [`padded_version_string`]).
fn version_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    js::str_cmp(&padded_version_string(a), &padded_version_string(b))
}

/// Normalise a version so that plain string comparison orders versions semver-like.
///
/// `"v1.2.3-rc.1+build"` -> `"    1-    2-    3-rc-    1"`: the leading `v` and build
/// metadata are dropped, numeric parts are left-padded to width 5, and a release without
/// pre-release parts gets a trailing `~` (the largest printable ASCII) so it sorts after
/// its pre-releases.
pub fn padded_version_string(input: &Value) -> String {
    let raw = match input {
        Value::Number(n) => js::number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => "0".to_owned(),
    };
    let without_v = raw.strip_prefix('v').unwrap_or(&raw);
    let without_build = without_v.split('+').next().unwrap_or_default();
    let mut parts: Vec<&str> = without_build.split(['-', '.']).collect();
    if parts.len() == 3 {
        parts.push("~");
    }
    parts
        .iter()
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                format!("{p:>5}")
            } else {
                (*p).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(cond: Value, attrs: Value) -> bool {
        eval_condition(&attrs, &cond, &SavedGroups::new())
    }

    #[test]
    fn coerces_like_js() {
        assert!(eval(json!({"n": {"$gt": 5, "$lt": 10}}), json!({"n": "8"})));
        assert!(eval(json!({"age": {"$lt": 10, "$gte": -9}}), json!({})));
        assert!(eval(json!({"n": 1}), json!({"n": "1"})));
        assert!(eval(json!({"n": "true"}), json!({"n": true})));
        assert!(!eval(json!({"flag": false}), json!({})));
    }

    #[test]
    fn malformed_input_is_false_not_a_panic() {
        assert!(!eval(
            json!({"a": {"$regex": "(unclosed"}}),
            json!({"a": "x"})
        ));
        assert!(!eval(json!({"a": {"$regex": 5}}), json!({"a": "5"})));
        assert!(!eval(json!({"$or": "nope"}), json!({})));
        assert!(!eval(json!({"$not": 3}), json!({})));
        assert!(!eval(json!("not an object"), json!({})));
        assert!(!eval(json!({"a": {"$in": 1}}), json!({"a": 1})));
    }

    #[test]
    fn paths_reach_into_arrays() {
        let attrs = json!({"tags": ["a", "b"]});
        assert!(eval(json!({"tags.1": "b"}), attrs.clone()));
        assert!(eval(json!({"tags.length": 2}), attrs));
    }

    #[test]
    fn versions_pad_numeric_parts() {
        assert_eq!(
            padded_version_string(&json!("v1.2.3+b")),
            "    1-    2-    3-~"
        );
        assert_eq!(
            padded_version_string(&json!("1.0.0-rc.1")),
            "    1-    0-    0-rc-    1"
        );
        // Missing or non-string versions compare as "0".
        assert_eq!(padded_version_string(&json!(null)), "    0");
    }
}
