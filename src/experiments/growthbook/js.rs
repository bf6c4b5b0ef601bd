//! JavaScript value semantics over `serde_json::Value`.
//!
//! The reference SDK is written in JavaScript and its conditions lean on JS coercion rules
//! (`value + ""`, `value * 1`, `<` between a string and a number, truthiness, ...). The
//! cross-SDK suite pins those behaviours down, so they are reproduced here in one place
//! instead of being approximated ad hoc at every call site.

use std::cmp::Ordering;

use serde_json::Value;

/// JS truthiness (`!!value`). JSON has no `undefined`; missing values are `Null` here.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `Number.prototype.toString()` for finite and non-finite numbers.
pub(crate) fn number_to_string(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        // Covers -0 as well, which JS prints as "0".
        return "0".to_owned();
    }
    let abs = f.abs();
    if (1e-6..1e21).contains(&abs) {
        // Rust's Display gives the shortest round-trip digits without an exponent,
        // which is what JS does inside this range.
        return format!("{f}");
    }
    // Outside the range JS switches to exponent notation: "1e+21", "1.5e-7".
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => s,
    }
}

/// `String(value)` (also what `value + ""` produces for JSON values).
pub(crate) fn to_js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        // Array.prototype.toString joins the elements; null/undefined become "".
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => to_js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// `JSON.stringify(value)` with JavaScript number formatting (serde_json would print `1.0`).
pub(crate) fn json_stringify(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.is_finite() {
                number_to_string(f)
            } else {
                "null".to_owned()
            }
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(json_stringify).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), json_stringify(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        // Null, booleans and strings serialize identically in serde_json and JS.
        other => other.to_string(),
    }
}

/// The `toString` helper of the reference SDK: strings as-is, everything else as JSON.
/// Used to build sticky-bucket attribute keys.
pub(crate) fn to_string_or_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => json_stringify(other),
    }
}

/// `ToNumber` applied to a string (`Number("  12 ")`).
fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let radix = match t.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        return u64::from_str_radix(&t[2..], radix).map_or(f64::NAN, |n| n as f64);
    }
    // Rust's float parser also accepts "inf"/"nan"/"infinity", which JS does not.
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `ToNumber(value)` (what `value * 1` produces).
pub(crate) fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        // Arrays and objects go through ToPrimitive, i.e. their string form.
        Value::Array(_) | Value::Object(_) => string_to_number(&to_js_string(v)),
    }
}

/// Compare two strings the way JS does: by UTF-16 code units.
pub(crate) fn str_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Strict equality (`===`). Arrays and objects are compared by reference in JS, and two
/// values parsed from JSON are never the same reference, so they are never equal.
pub(crate) fn strict_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// Abstract relational comparison `a < b`. `None` is JS's "undefined" outcome (a NaN was
/// involved), which makes `<`, `<=`, `>` and `>=` all false.
pub(crate) fn less_than(a: &Value, b: &Value) -> Option<bool> {
    let prim = |v: &Value| match v {
        Value::Array(_) | Value::Object(_) => Value::String(to_js_string(v)),
        other => other.clone(),
    };
    let (pa, pb) = (prim(a), prim(b));
    if let (Value::String(x), Value::String(y)) = (&pa, &pb) {
        return Some(str_cmp(x, y) == Ordering::Less);
    }
    let (x, y) = (to_number(&pa), to_number(&pb));
    if x.is_nan() || y.is_nan() {
        None
    } else {
        Some(x < y)
    }
}

/// Structural equality standing in for `JSON.stringify(a) === JSON.stringify(b)`.
///
/// Numbers compare by value (serde_json distinguishes `1` from `1.0`, JS does not). Object
/// key order is ignored: serde_json's default map does not keep insertion order, so unlike
/// JS `{a,b}` equals `{b,a}` here.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_formatting_matches_js() {
        assert_eq!(number_to_string(123.0), "123");
        assert_eq!(number_to_string(1.5), "1.5");
        assert_eq!(number_to_string(-0.0), "0");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(1.5e-7), "1.5e-7");
        assert_eq!(number_to_string(0.000001), "0.000001");
    }

    #[test]
    fn coercions_match_js() {
        assert_eq!(to_js_string(&json!([1, null, "a"])), "1,,a");
        assert_eq!(to_number(&json!(" 8 ")), 8.0);
        assert_eq!(to_number(&json!("")), 0.0);
        assert!(to_number(&json!("inf")).is_nan());
        assert_eq!(to_number(&json!("0x10")), 16.0);
        assert_eq!(less_than(&json!("8"), &json!(10)), Some(true));
        assert_eq!(less_than(&json!("8"), &json!("10")), Some(false));
        assert_eq!(less_than(&json!("x"), &json!(10)), None);
        assert_eq!(
            json_stringify(&json!({"a": [1.0, "x"]})),
            r#"{"a":[1,"x"]}"#
        );
    }
}
