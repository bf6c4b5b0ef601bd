//! `/metrics` against a real server: the body is valid Prometheus text exposition format
//! (checked by a strict parser written here from the format's specification), and a `home`
//! request shows up in the per-stage and per-operation histograms.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{NOW, Server, TestDb, marquee, marquee_ok, write_fixture};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: Option<String>,
    help: Option<String>,
    samples: Vec<Sample>,
}

/// Parses the text exposition format (version 0.0.4) strictly: every line is a `# HELP`, a
/// `# TYPE`, another comment, or a well-formed sample; HELP and TYPE come at most once per
/// family and TYPE before its samples; a family's samples are contiguous; histograms have
/// cumulative `_bucket`s ending in `le="+Inf"` equal to `_count`, and a `_sum`; counters are
/// never negative; no series appears twice.
fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut series = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // an ordinary comment
            }
            let name = parts.next().ok_or_else(|| at("no metric name"))?;
            check_metric_name(name).map_err(|e| at(&e))?;
            let arg = parts.next().unwrap_or("").to_owned();
            let family = families.entry(name.to_owned()).or_default();
            if keyword == "HELP" {
                if family.help.replace(arg).is_some() {
                    return Err(at("second HELP"));
                }
            } else {
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg.as_str())
                {
                    return Err(at("unknown TYPE"));
                }
                if !family.samples.is_empty() {
                    return Err(at("TYPE after samples"));
                }
                if family.kind.replace(arg).is_some() {
                    return Err(at("second TYPE"));
                }
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|e| at(&e))?;
        let family_name = family_of(&families, &sample.name);
        if current.as_deref() != Some(family_name.as_str()) {
            if finished.contains(&family_name) {
                return Err(at("family samples are not contiguous"));
            }
            if let Some(done) = current.replace(family_name.clone()) {
                finished.push(done);
            }
        }
        let key = format!("{}{:?}", sample.name, sample.labels);
        if !series.insert(key) {
            return Err(at("series appears twice"));
        }
        families
            .entry(family_name)
            .or_default()
            .samples
            .push(sample);
    }
    for (name, family) in &families {
        match family.kind.as_deref() {
            Some("histogram") => check_histogram(name, family)?,
            Some("counter")
                if family
                    .samples
                    .iter()
                    .any(|s| s.value < 0.0 || s.value.is_nan()) =>
            {
                return Err(format!("{name}: a counter below zero"));
            }
            _ => {}
        }
    }
    Ok(families)
}

/// The family a sample belongs to: `x_bucket`, `x_sum`, `x_count` belong to histogram (or
/// summary) `x` when one is declared.
fn family_of(families: &BTreeMap<String, Family>, sample: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && families
                .get(base)
                .and_then(|f| f.kind.as_deref())
                .is_some_and(|k| k == "histogram" || k == "summary")
        {
            return base.to_owned();
        }
    }
    sample.to_owned()
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if body[start..].starts_with('}') {
                chars.next();
                break;
            }
            let mut end = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    end = i;
                    break;
                }
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad label name char {c:?}"));
                }
            }
            let label = &body[start..end];
            if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("bad label name {label:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '\n' => return Err("raw newline in label value".into()),
                    c => value.push(c),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            match chars.next().map(|(_, c)| c) {
                Some(',') => continue,
                Some('}') => break,
                other => return Err(format!("expected , or }} after a label, got {other:?}")),
            }
        }
        let consumed = chars.peek().map_or(body.len(), |(i, _)| *i);
        rest = &body[consumed..];
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}")),
    }
}

/// One histogram series: (le, cumulative count) buckets, `_count`, whether `_sum` is there.
type Buckets = (Vec<(f64, f64)>, Option<f64>, bool);

fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    // Group by the labels other than `le`.
    let mut groups: HashMap<BTreeMap<String, String>, Buckets> = HashMap::new();
    for s in &family.samples {
        let mut labels = s.labels.clone();
        let le = labels.remove("le");
        let g = groups.entry(labels).or_default();
        if s.name == format!("{name}_bucket") {
            let le = parse_value(&le.ok_or(format!("{name}: bucket without le"))?)?;
            g.0.push((le, s.value));
        } else if s.name == format!("{name}_count") {
            g.1 = Some(s.value);
        } else if s.name == format!("{name}_sum") {
            g.2 = true;
        } else {
            return Err(format!("{name}: unexpected sample {}", s.name));
        }
    }
    for (labels, (buckets, count, sum)) in groups {
        let count = count.ok_or(format!("{name}{labels:?}: no _count"))?;
        if !sum {
            return Err(format!("{name}{labels:?}: no _sum"));
        }
        if buckets
            .windows(2)
            .any(|w| w[1].0 <= w[0].0 || w[1].1 < w[0].1)
        {
            return Err(format!("{name}{labels:?}: buckets not cumulative"));
        }
        match buckets.last() {
            Some((le, n)) if le.is_infinite() && *n == count => {}
            _ => {
                return Err(format!(
                    "{name}{labels:?}: +Inf bucket missing or != _count"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn the_strict_parser_refuses_what_the_format_forbids() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
    let f = parse_exposition(good).unwrap();
    assert_eq!(f["a_total"].samples[0].labels["x"], "q\"\\");
    assert_eq!(f["h"].samples.len(), 4);
    for bad in [
        "a{x=\"1\"}3\n",                           // no space
        "a{x=1} 3\n",                              // unquoted value
        "1a 3\n",                                  // bad name
        "a 3\na 4\n",                              // duplicate series
        "a 1\nb 1\na{x=\"1\"} 1\n",                // not contiguous
        "# TYPE a counter\na -1\n",                // negative counter
        "# TYPE a counter\n# TYPE a gauge\na 1\n", // second TYPE
        "# TYPE a blob\n",                         // unknown type
        "a three\n",                               // bad value
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

fn value(families: &BTreeMap<String, Family>, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let family = family_of(families, sample);
    families
        .get(&family)
        .into_iter()
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.name == sample
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("no {sample}{labels:?} in /metrics"))
}

#[tokio::test]
async fn metrics_parse_and_show_the_stages_of_a_home_page() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = TestDb::sqlite(dir.path());
    let data = dir.path();
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(data, db.url(), &["import", "movielens", &ml]);
    marquee_ok(data, db.url(), &["train", "--clock", NOW]);
    let server = Server::start(data, db.url(), &[]);

    // Before any page: valid, and no page stage has been observed.
    let before = server.get("/metrics").await;
    assert_eq!(before.status(), 200);
    let content_type = before.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let families = parse_exposition(&before.text().await.unwrap()).unwrap();
    assert!(value(&families, "process_cpu_seconds_total", &[]) >= 0.0);
    assert!(value(&families, "process_resident_memory_bytes", &[]) > 0.0);

    let pages = 3;
    for p in 1..=pages {
        let r = server
            .gql(
                "query($p: ID!) { home(profileId: $p) { requestId rows { id items { title { id name } } } } }",
                json!({"p": p.to_string()}),
            )
            .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    let text = server.get("/metrics").await.text().await.unwrap();
    let families = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for family in [
        "marquee_page_stage_duration_seconds",
        "marquee_page_source_duration_seconds",
        "marquee_graphql_request_duration_seconds",
    ] {
        assert_eq!(
            families.get(family).and_then(|f| f.kind.as_deref()),
            Some("histogram"),
            "{family}:\n{text}"
        );
    }
    let stage = |s: &str| {
        value(
            &families,
            "marquee_page_stage_duration_seconds_count",
            &[("stage", s)],
        )
    };
    for s in [
        "profile_read",
        "experiments",
        "sources",
        "filters",
        "dedupe",
        "rerank",
        "assemble",
        "impression_enqueue",
        "page",
    ] {
        assert_eq!(stage(s), pages as f64, "stage {s}:\n{text}");
    }
    // Every GraphQL response is encoded, the /metrics-free ones included.
    assert!(stage("serialization") >= pages as f64);
    // The default page's rows each have a source histogram.
    for row in ["top-picks", "trending", "because-you-watched"] {
        assert_eq!(
            value(
                &families,
                "marquee_page_source_duration_seconds_count",
                &[("row", row)]
            ),
            pages as f64,
            "row {row}:\n{text}"
        );
    }
    assert_eq!(
        value(
            &families,
            "marquee_graphql_request_duration_seconds_count",
            &[("operation", "query home"), ("outcome", "ok")]
        ),
        pages as f64
    );
    assert_eq!(value(&families, "marquee_pages_total", &[]), pages as f64);
    // The query's first request compiles its plan; the later ones are written directly.
    assert_eq!(
        value(&families, "marquee_graphql_direct_answers_total", &[]),
        (pages - 1) as f64
    );
    assert_eq!(
        families["marquee_pages_total"].kind.as_deref(),
        Some("counter")
    );
    // The impression counters go up only; the backlog is a gauge.
    let queued = value(&families, "marquee_impressions_queued_total", &[]);
    assert!(queued > 0.0, "{text}");
    assert!(value(&families, "marquee_impressions_written_total", &[]) <= queued);
    assert_eq!(
        families["marquee_impressions_backlog"].kind.as_deref(),
        Some("gauge")
    );
    let model = families["marquee_model_info"]
        .samples
        .iter()
        .find(|s| s.value == 1.0)
        .expect("an active model");
    assert!(!model.labels["version"].is_empty());
    // A request that never executes is counted, under a bounded label.
    let r = server.gql("{ nosuchfield }", json!({})).await;
    assert!(!r["errors"].is_null());
    let text = server.get("/metrics").await.text().await.unwrap();
    let families = parse_exposition(&text).unwrap();
    assert_eq!(
        value(
            &families,
            "marquee_graphql_request_duration_seconds_count",
            &[("operation", "invalid"), ("outcome", "error")]
        ),
        1.0
    );

    // The open-loop bench drives this server at a fixed rate and reads its CPU per page
    // from these metrics.
    let out = marquee(
        data,
        db.url(),
        &[
            "bench",
            "--url",
            &server.url,
            "--rate",
            "40",
            "--duration",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("40 pages scheduled"), "{stdout}");
    assert!(stdout.contains("(40 ok, 0 errors)"), "{stdout}");
    assert!(stdout.contains("p99.9="), "{stdout}");
    assert!(stdout.contains("µs per page"), "{stdout}");
    let text = server.get("/metrics").await.text().await.unwrap();
    let families = parse_exposition(&text).unwrap();
    assert!(value(&families, "marquee_pages_total", &[]) >= (pages + 40) as f64);
}
