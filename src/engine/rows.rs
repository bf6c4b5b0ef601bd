//! Page definitions (`rows/*.toml`): which rows, in which order, filled by which source.

use serde::Deserialize;

use crate::engine::rerank::Diversity;
use crate::engine::sources::{CandidateSource, SourceRegistry};

/// The page shipped with Marquee; `--rows FILE` replaces it.
pub const DEFAULT_HOME: &str = include_str!("../../rows/home.toml");

#[derive(Debug)]
pub struct RowDefinition {
    /// Row id, or id prefix for sources that produce several rows (`because-you-watched:<id>`).
    pub id: String,
    pub title: String,
    pub source: Box<dyn CandidateSource>,
    pub size: usize,
    /// Rows that end up with fewer items are dropped from the page.
    pub min_items: usize,
    pub diversity: Diversity,
    /// Only for rows meant to show watched titles again; policy filters still apply.
    pub show_watched: bool,
}

#[derive(Debug)]
pub struct PageDefinition {
    pub rows: Vec<RowDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageFile {
    row: Vec<RowFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowFile {
    id: String,
    title: String,
    source: String,
    #[serde(default = "default_size")]
    size: usize,
    #[serde(default = "default_min_items")]
    min_items: usize,
    #[serde(default)]
    diversity: Option<Diversity>,
    #[serde(default)]
    show_watched: bool,
    #[serde(default)]
    params: toml::Table,
}

fn default_size() -> usize {
    20
}
fn default_min_items() -> usize {
    4
}

impl PageDefinition {
    /// Parses a page definition; errors name `origin` (a file name) and the offending row.
    pub fn parse(text: &str, origin: &str, registry: &SourceRegistry) -> Result<Self, String> {
        let file: PageFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{origin}:{line}: {}", e.message()),
                None => format!("{origin}: {}", e.message()),
            }
        })?;
        if file.row.is_empty() {
            return Err(format!("{origin}: a page needs at least one [[row]]"));
        }
        let mut seen = std::collections::HashSet::new();
        let rows = file
            .row
            .into_iter()
            .map(|r| {
                let at = |msg: String| format!("{origin}: row {:?}: {msg}", r.id);
                if !seen.insert(r.id.clone()) {
                    return Err(at("duplicate row id".into()));
                }
                if r.id.is_empty() || r.id.contains(char::is_whitespace) || r.id.contains(':') {
                    return Err(at("row ids are non-empty, without spaces or ':'".into()));
                }
                if !(1..=100).contains(&r.size) {
                    return Err(at(format!("size must be 1–100, got {}", r.size)));
                }
                if r.min_items > r.size {
                    return Err(at(format!(
                        "min_items ({}) is larger than size ({})",
                        r.min_items, r.size
                    )));
                }
                let source = registry
                    .build(&r.source, r.params)
                    .map_err(|e| at(format!("source {:?}: {e}", r.source)))?;
                Ok(RowDefinition {
                    id: r.id,
                    title: r.title,
                    source,
                    size: r.size,
                    min_items: r.min_items.max(1),
                    diversity: r.diversity.unwrap_or(Diversity::NONE),
                    show_watched: r.show_watched,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_home_page_parses() {
        let page =
            PageDefinition::parse(DEFAULT_HOME, "rows/home.toml", &SourceRegistry::builtin())
                .unwrap();
        let ids: Vec<&str> = page.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids[0], "continue-watching");
        assert!(ids.contains(&"top-picks"));
    }

    #[test]
    fn errors_name_the_file_line_and_row() {
        let reg = SourceRegistry::builtin();
        let err = PageDefinition::parse("[[row]]\nid = 3\n", "x.toml", &reg).unwrap_err();
        assert!(err.starts_with("x.toml:2:"), "{err}");
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='nope'\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(
            err.contains("row \"a\"") && err.contains("unknown source"),
            "{err}"
        );
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='trending'\ndiversity=2.0\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(err.contains("diversity"), "{err}");
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='personalized'\n[row.params]\ntypo=1\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(err.contains("typo"), "{err}");
    }
}
