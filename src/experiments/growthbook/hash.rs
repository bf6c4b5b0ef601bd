//! Deterministic hashing and bucketing helpers (the `util.ts` half of the reference SDK).

use super::types::{Namespace, VariationRange};

/// FNV-1a, 32 bit, over UTF-16 code units.
///
/// The reference SDK feeds `String.prototype.charCodeAt` into the hash, so a non-ASCII
/// character contributes its UTF-16 code unit(s), not its UTF-8 bytes. Hashing bytes would
/// bucket non-ASCII ids differently from every other GrowthBook SDK.
/// (JS writes the multiply by the FNV prime as a sum of shifts; modulo 2^32 it is the same as
/// the wrapping multiplication of `rng::fnv1a32`.)
fn fnv1a32(s: &str) -> u32 {
    crate::rng::fnv1a32(s.encode_utf16())
}

/// Hash `value` with `seed` into `[0, 1)`, or `None` for an unknown hash version.
///
/// Version 1 is the original (slightly biased) algorithm, version 2 re-hashes the decimal
/// string of the first hash, exactly as the reference SDK does.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => {
            let first = fnv1a32(&format!("{seed}{value}"));
            Some(f64::from(fnv1a32(&first.to_string()) % 10_000) / 10_000.0)
        }
        1 => Some(f64::from(fnv1a32(&format!("{value}{seed}")) % 1_000) / 1_000.0),
        _ => None,
    }
}

/// `n` equal weights summing to 1 (empty for `n == 0`).
pub fn get_equal_weights(n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    vec![1.0 / n as f64; n]
}

/// Whether `n` falls in the half-open range `[start, end)`.
pub fn in_range(n: f64, range: &VariationRange) -> bool {
    n >= range.0 && n < range.1
}

/// Whether a user's hash value puts them inside a namespace slice.
pub fn in_namespace(hash_value: &str, namespace: &Namespace) -> bool {
    hash(&format!("__{}", namespace.0), hash_value, 1)
        .is_some_and(|n| n >= namespace.1 && n < namespace.2)
}

/// The index of the range containing `n`, or `None` when `n` falls between ranges
/// (i.e. outside the experiment's coverage).
pub fn choose_variation(n: f64, ranges: &[VariationRange]) -> Option<usize> {
    ranges.iter().position(|r| in_range(n, r))
}

/// Bucket ranges for `num_variations` variations.
///
/// Invalid input is repaired the way the reference SDK repairs it rather than rejected:
/// coverage is clamped to `[0, 1]`, and weights of the wrong length or not summing to
/// roughly 1 (outside `[0.99, 1.01]`) are replaced by equal weights.
pub fn get_bucket_ranges(
    num_variations: usize,
    coverage: f64,
    weights: Option<&[f64]>,
) -> Vec<VariationRange> {
    let coverage = if coverage.is_nan() {
        // JS would propagate NaN and produce empty ranges; treat it as "nobody".
        0.0
    } else {
        coverage.clamp(0.0, 1.0)
    };
    let equal = get_equal_weights(num_variations);
    let weights = match weights {
        Some(w) if w.len() == num_variations => {
            let total: f64 = w.iter().sum();
            if (0.99..=1.01).contains(&total) {
                w.to_vec()
            } else {
                equal
            }
        }
        _ => equal,
    };
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            VariationRange(start, start + coverage * w)
        })
        .collect()
}

/// A variation forced through the page URL's query string (`?experiment-key=1`).
///
/// Mirrors the reference: only the first `key=` pair counts, its value is read like
/// `parseInt`, and it must be a valid variation index.
pub fn get_query_string_override(id: &str, url: &str, num_variations: usize) -> Option<usize> {
    let search = url.split('?').nth(1)?;
    let search = search.split('#').next().unwrap_or_default();
    let value = search
        .split('&')
        .map(|kv| kv.split('=').take(2).collect::<Vec<_>>())
        .find(|kv| kv.first().is_some_and(|k| *k == id))?
        .get(1)
        .copied()?;
    let n = parse_int(value)?;
    usize::try_from(n).ok().filter(|&n| n < num_variations)
}

/// JS `parseInt(s)` (radix 10): optional whitespace and sign, then leading digits.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().ok()?;
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Values from the cross-SDK suite, checked by hand against the JS implementation.
        assert_eq!(hash("", "a", 1), Some(0.22));
        assert_eq!(hash("seed", "a", 2), Some(0.0505));
        assert_eq!(hash("abc", "def", 99), None);
    }

    #[test]
    fn hashes_utf16_code_units_not_bytes() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes; the JS SDK sees one unit.
        let expected = (0x811c_9dc5_u32 ^ 0xE9).wrapping_mul(0x0100_0193);
        assert_eq!(fnv1a32("é"), expected);
        // An astral character is a surrogate pair: two units.
        assert_eq!("😀".encode_utf16().count(), 2);
        let pair = "😀".encode_utf16().fold(0x811c_9dc5_u32, |h, u| {
            (h ^ u32::from(u)).wrapping_mul(0x0100_0193)
        });
        assert_eq!(fnv1a32("😀"), pair);
    }

    #[test]
    fn parse_int_is_lenient_like_js() {
        assert_eq!(parse_int("2.054"), Some(2));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("foo"), None);
        assert_eq!(
            get_query_string_override("t", "http://x?t=2.054", 3),
            Some(2)
        );
        assert_eq!(get_query_string_override("t", "http://x?t=2.054", 2), None);
    }
}
