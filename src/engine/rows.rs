//! Page definitions (`rows/*.toml`): which rows, in which order, filled by which source.

use std::collections::{BTreeMap, HashSet};

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
    /// A model version to fill this row instead of the active one (an experiment comparing
    /// models); rows fall back to the active model when that version is not loaded.
    pub model: Option<String>,
    /// What the row was built from, so that experiments can derive variants of it.
    spec: RowSpec,
}

#[derive(Debug)]
pub struct PageDefinition {
    pub rows: Vec<RowDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageFile {
    row: Vec<RowSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowSpec {
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
    model: Option<String>,
    #[serde(default)]
    params: toml::Table,
}

fn default_size() -> usize {
    20
}
fn default_min_items() -> usize {
    4
}

/// What an experiment may change about a page: which rows, in which order, and per-row
/// settings. Policy (filters, dedupe) is not among them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageOverrides {
    /// Row ids in the order to show them; rows not listed are left out.
    #[serde(default)]
    pub rows: Option<Vec<String>>,
    /// Per-row changes, by row id.
    #[serde(default)]
    pub settings: BTreeMap<String, RowOverride>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowOverride {
    pub title: Option<String>,
    pub size: Option<usize>,
    pub min_items: Option<usize>,
    pub diversity: Option<Diversity>,
    /// Model version that fills the row (see `RowDefinition::model`).
    pub model: Option<String>,
    /// Merged over the row's source params, key by key.
    #[serde(default)]
    pub params: toml::Table,
}

impl PageOverrides {
    pub fn is_empty(&self) -> bool {
        self.rows.is_none() && self.settings.is_empty()
    }
}

fn build_row(
    spec: RowSpec,
    registry: &SourceRegistry,
    origin: &str,
) -> Result<RowDefinition, String> {
    let at = |msg: String| format!("{origin}: row {:?}: {msg}", spec.id);
    if spec.id.is_empty() || spec.id.contains(char::is_whitespace) || spec.id.contains(':') {
        return Err(at("row ids are non-empty, without spaces or ':'".into()));
    }
    if !(1..=100).contains(&spec.size) {
        return Err(at(format!("size must be 1–100, got {}", spec.size)));
    }
    if spec.min_items > spec.size {
        return Err(at(format!(
            "min_items ({}) is larger than size ({})",
            spec.min_items, spec.size
        )));
    }
    let source = registry
        .build(&spec.source, spec.params.clone())
        .map_err(|e| at(format!("source {:?}: {e}", spec.source)))?;
    Ok(RowDefinition {
        id: spec.id.clone(),
        title: spec.title.clone(),
        source,
        size: spec.size,
        min_items: spec.min_items.max(1),
        diversity: spec.diversity.unwrap_or(Diversity::NONE),
        show_watched: spec.show_watched,
        model: spec.model.clone(),
        spec,
    })
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
        let mut seen = HashSet::new();
        let rows = file
            .row
            .into_iter()
            .map(|spec| {
                if !seen.insert(spec.id.clone()) {
                    return Err(format!("{origin}: row {:?}: duplicate row id", spec.id));
                }
                build_row(spec, registry, origin)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { rows })
    }

    /// This page as an experiment variant would have it.
    pub fn with_overrides(
        &self,
        overrides: &PageOverrides,
        registry: &SourceRegistry,
    ) -> Result<PageDefinition, String> {
        let by_id: BTreeMap<&str, &RowDefinition> =
            self.rows.iter().map(|r| (r.id.as_str(), r)).collect();
        for id in overrides.settings.keys() {
            if !by_id.contains_key(id.as_str()) {
                return Err(format!("settings for unknown row {id:?}"));
            }
        }
        let order: Vec<&RowDefinition> = match &overrides.rows {
            None => self.rows.iter().collect(),
            Some(ids) => {
                let mut seen = HashSet::new();
                ids.iter()
                    .map(|id| {
                        if !seen.insert(id) {
                            return Err(format!("row {id:?} is listed twice"));
                        }
                        by_id.get(id.as_str()).copied().ok_or_else(|| {
                            format!(
                                "unknown row {id:?} (known: {})",
                                by_id.keys().copied().collect::<Vec<_>>().join(", ")
                            )
                        })
                    })
                    .collect::<Result<_, String>>()?
            }
        };
        if order.is_empty() {
            return Err("a page needs at least one row".into());
        }
        let rows = order
            .into_iter()
            .map(|row| {
                let mut spec = row.spec.clone();
                if let Some(o) = overrides.settings.get(&row.id) {
                    if let Some(t) = &o.title {
                        spec.title = t.clone();
                    }
                    spec.size = o.size.unwrap_or(spec.size);
                    spec.min_items = o.min_items.unwrap_or(spec.min_items);
                    spec.diversity = o.diversity.or(spec.diversity);
                    spec.model = o.model.clone().or(spec.model);
                    for (k, v) in &o.params {
                        spec.params.insert(k.clone(), v.clone());
                    }
                }
                build_row(spec, registry, "experiment")
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PageDefinition { rows })
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

    #[test]
    fn overrides_reorder_select_and_retune_rows() {
        let reg = SourceRegistry::builtin();
        let page = PageDefinition::parse(DEFAULT_HOME, "rows/home.toml", &reg).unwrap();
        let o: PageOverrides = serde_json::from_value(serde_json::json!({
            "rows": ["trending", "top-picks"],
            "settings": {"top-picks": {"diversity": 0.8, "params": {"popularity_weight": 0.5}}}
        }))
        .unwrap();
        let v = page.with_overrides(&o, &reg).unwrap();
        let ids: Vec<&str> = v.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["trending", "top-picks"]);
        assert_eq!(v.rows[1].diversity.get(), 0.8);

        for bad in [
            serde_json::json!({"rows": ["nope"]}),
            serde_json::json!({"rows": []}),
            serde_json::json!({"settings": {"top-picks": {"params": {"typo": 1}}}}),
            serde_json::json!({"settings": {"nope": {"size": 3}}}),
        ] {
            let o: PageOverrides = serde_json::from_value(bad.clone()).unwrap();
            assert!(page.with_overrides(&o, &reg).is_err(), "{bad}");
        }
        let bad: Result<PageOverrides, _> = serde_json::from_value(
            serde_json::json!({"settings": {"top-picks": {"diversity": 3.0}}}),
        );
        assert!(bad.is_err());
    }
}
