//! Layer boundaries that one crate cannot make the compiler check: the engine and the
//! experiment evaluation know nothing of HTTP, GraphQL or SQL, and the app layer (the service
//! layer under the API) knows nothing of HTTP or GraphQL. A violation fails with `file:line`.

use std::path::{Path, PathBuf};

/// Crates (and modules) that belong to the edges of the system, never to its core.
const HTTP_GRAPHQL: &[&str] = &[
    "axum",
    "async_graphql",
    "async_graphql_axum",
    "hyper",
    "tower",
    "tower_http",
    "reqwest",
    "tokio::net",
];

struct Rule {
    dirs: &'static [&'static str],
    forbidden: &'static [&'static [&'static str]],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        dirs: &["src/engine", "src/experiments"],
        forbidden: &[
            HTTP_GRAPHQL,
            &["sqlx"],
            // The layers above and beside the engine: it is called by them, never the reverse.
            &[
                "crate::api",
                "crate::app",
                "crate::cli",
                "crate::store",
                "crate::lab",
                "crate::ingest",
            ],
        ],
        why: "the engine and experiments know nothing of HTTP, GraphQL or SQL",
    },
    Rule {
        dirs: &["src/app"],
        forbidden: &[HTTP_GRAPHQL, &["crate::api", "crate::cli"]],
        why: "the app layer knows nothing of HTTP or GraphQL; the API maps its results",
    },
];

#[test]
fn layers_import_only_what_their_boundary_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        for dir in rule.dirs {
            rust_files(&root.join(dir), &mut files);
        }
        // A moved directory must not turn this test into one that cannot fail.
        assert!(
            files.len() >= rule.dirs.len(),
            "no Rust files under {:?}: update the rule",
            rule.dirs
        );
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source file");
            for (line, path) in paths_used(&text) {
                if let Some(bad) = rule
                    .forbidden
                    .iter()
                    .flat_map(|list| list.iter())
                    .find(|f| within(&path, f))
                {
                    violations.push(format!(
                        "{}:{line}: uses {path} ({bad}): {}",
                        file.strip_prefix(root).unwrap_or(&file).display(),
                        rule.why
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "\n{}", violations.join("\n"));
}

/// "Now" comes from a `Clock` (ARCHITECTURE.md, invariants): only `src/clock.rs` reads the
/// wall clock, so tests and replayed data decide what time it is. (`Instant`, for measuring
/// durations, is not a reading of "now".)
#[test]
fn only_the_clock_reads_the_wall_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut violations = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("src/clock.rs")) {
        let text = std::fs::read_to_string(file).expect("read source file");
        for (n, line) in text.lines().enumerate() {
            let code = code_only(line);
            if ["SystemTime::now", "wall_now(", "Utc::now", "Local::now"]
                .iter()
                .any(|p| code.contains(p))
            {
                violations.push(format!(
                    "{}:{}: reads the wall clock; take a `Clock` (Clock::System for real time)",
                    file.strip_prefix(root).unwrap_or(file).display(),
                    n + 1
                ));
            }
        }
    }
    assert!(violations.is_empty(), "\n{}", violations.join("\n"));
}

#[test]
fn the_scan_sees_every_form_of_import() {
    let sample = r#"
use axum::Router;
use crate::{
    domain::Millis,
    store::{Store, records},
};
use tokio::{net::TcpListener, sync::Mutex};
use ::sqlx as db;
// use reqwest::Client;   (a comment is not an import)
fn f() {
    let s = "sqlx::query in a string";
    async_graphql::Error::new(s); // trailing comment: hyper::Body
}
"#;
    let found: Vec<(usize, String)> = paths_used(sample);
    let has = |line: usize, p: &str| found.iter().any(|(l, q)| *l == line && q == p);
    assert!(has(2, "axum::Router"), "{found:?}");
    assert!(has(3, "crate::store::Store"), "{found:?}");
    assert!(has(3, "crate::domain::Millis"), "{found:?}");
    assert!(has(7, "tokio::net::TcpListener"), "{found:?}");
    assert!(has(8, "sqlx"), "{found:?}");
    assert!(has(12, "async_graphql::Error::new"), "{found:?}");
    assert!(
        !found
            .iter()
            .any(|(_, p)| p.starts_with("reqwest") || p.starts_with("hyper"))
    );
    assert!(!found.iter().any(|(l, p)| *l == 11 && p.starts_with("sqlx")));
    assert!(within("tokio::net::TcpListener", "tokio::net"));
    assert!(within("crate::store", "crate::store"));
    assert!(!within("tokio::sync::Mutex", "tokio::net"));
    assert!(!within("crate::storefront", "crate::store"));
}

/// Whether `path` is `module` or something inside it.
fn within(path: &str, module: &str) -> bool {
    path == module
        || path
            .strip_prefix(module)
            .is_some_and(|rest| rest.starts_with("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every path the code names, with its line: each `use` tree expanded to full paths (with the
/// line the `use` starts on), and every `a::b` path in other code. Comments and string
/// literals are ignored.
fn paths_used(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<String> = text.lines().map(code_only).collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let statement = trimmed
            .strip_prefix("pub use ")
            .or_else(|| trimmed.strip_prefix("pub(crate) use "))
            .or_else(|| trimmed.strip_prefix("pub(super) use "))
            .or_else(|| trimmed.strip_prefix("use "));
        if let Some(start) = statement {
            // A `use` may span lines up to its `;`.
            let first = i;
            let mut tree = start.to_owned();
            while !tree.contains(';') && i + 1 < lines.len() {
                i += 1;
                tree.push_str(&lines[i]);
            }
            let tree = tree.split(';').next().unwrap_or_default();
            for path in expand_use("", tree) {
                found.push((first + 1, path));
            }
        } else {
            for path in inline_paths(&lines[i]) {
                found.push((i + 1, path));
            }
        }
        i += 1;
    }
    found
}

/// `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`; `x as y` → `x`.
fn expand_use(prefix: &str, tree: &str) -> Vec<String> {
    let tree: String = tree
        .chars()
        .filter(|c| !c.is_whitespace() || *c == ' ')
        .collect();
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        let full = format!("{prefix}{path}");
        let full = full.strip_suffix("::self").unwrap_or(&full);
        return vec![full.trim_start_matches("::").to_owned()];
    };
    let close = tree.rfind('}').unwrap_or(tree.len());
    let base = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..k]);
                from = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand_use(&base, p))
        .collect()
}

/// `a::b::c` paths in a line of code (at least one `::`).
fn inline_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut k = 0;
    while k < chars.len() {
        if ident(chars[k]) && (k == 0 || !(ident(chars[k - 1]) || chars[k - 1] == '.')) {
            let mut end = k;
            loop {
                while end < chars.len() && ident(chars[end]) {
                    end += 1;
                }
                let more = end + 2 < chars.len()
                    && chars[end] == ':'
                    && chars[end + 1] == ':'
                    && ident(chars[end + 2]);
                if !more {
                    break;
                }
                end += 2;
            }
            let path: String = chars[k..end].iter().collect();
            if path.contains("::") {
                out.push(path);
            }
            k = end.max(k + 1);
        } else {
            k += 1;
        }
    }
    out
}

/// The line without its comment and with string literals blanked.
fn code_only(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                out.push('"');
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}
