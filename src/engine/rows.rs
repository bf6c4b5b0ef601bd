//! Page definitions (`rows/*.toml`): which rows, in which order, filled by which source.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::engine::rerank::Diversity;
use crate::engine::sources::personalized::{self, PersonalizedParams};
use crate::engine::sources::{CandidateSource, SourceError, SourceRegistry};

/// The page shipped with Marquee; `--rows FILE` replaces it.
pub const DEFAULT_HOME: &str = include_str!("../../rows/home.toml");

/// What is wrong with a page definition or an experiment's variant of it: always a mistake in
/// a file someone edited (`rows/*.toml`, `experiments/*.json`), said with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PageError {
    /// Not a page file: TOML syntax, an unknown key, a value of the wrong type.
    #[error("{origin}{}: {message}", at_line(.line))]
    Syntax {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{origin}: a page needs at least one [[row]]")]
    NoRows { origin: String },
    #[error("{origin}: row {row:?}: {problem}")]
    Row {
        origin: String,
        row: String,
        problem: RowProblem,
    },
    #[error("settings for unknown row {0:?}")]
    SettingsForUnknownRow(String),
    #[error("row {0:?} is listed twice")]
    ListedTwice(String),
    #[error("unknown row {row:?} (known: {known})")]
    UnknownRow { row: String, known: String },
    #[error("a page needs at least one row")]
    NoRowsLeft,
}

fn at_line(line: &Option<usize>) -> String {
    line.map_or_else(String::new, |l| format!(":{l}"))
}

/// What is wrong with one row definition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowProblem {
    #[error("row ids are non-empty, without spaces or ':'")]
    BadId,
    #[error("duplicate row id")]
    DuplicateId,
    #[error("size must be 1–100, got {0}")]
    Size(usize),
    #[error("min_items ({min_items}) is larger than size ({size})")]
    MinItems { min_items: usize, size: usize },
    #[error("source {name:?}: {error}")]
    Source { name: String, error: SourceError },
}

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
    /// Kept above the rows a personalized page order moves (Continue Watching: finishing
    /// what one started is not a prediction).
    pub pinned: bool,
    /// What the row was built from, so that experiments can derive variants of it.
    spec: RowSpec,
}

#[derive(Debug)]
pub struct PageDefinition {
    pub rows: Vec<RowDefinition>,
    /// The page's Top Picks params: those of its first row whose source is `personalized`
    /// (with an experiment variant's settings applied, even when the variant hides that row),
    /// the defaults when it has none. Rows that order by the profile's personal score (Because
    /// You Watched) use them, so tuning Top Picks tunes that score everywhere on the page.
    pub top_picks: PersonalizedParams,
    /// In which order the rows are shown (`[page]` in the page file).
    pub order: PageOrder,
}

/// How the rows of a page are ordered for a profile.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageOrder {
    #[serde(default)]
    pub rows: RowOrder,
    /// Engagement order: a row's predicted engagement is multiplied by this for every row of
    /// the same kind already above it (several "Because You Watched" rows), so the page keeps
    /// variety across rows instead of stacking one kind. 1 = no penalty.
    #[serde(default = "default_same_kind_penalty")]
    pub same_kind_penalty: f32,
}

fn default_same_kind_penalty() -> f32 {
    0.8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowOrder {
    /// The definition's order (what an experiment that reorders rows relies on).
    #[default]
    Fixed,
    /// Pinned rows first, then, per profile, the row whose first titles the profile is most
    /// likely to take (by the page's Top Picks score) first, and so on (see `page.rs`).
    Engagement,
    /// Pinned rows first, then the rows in the order training learned from its backtest (the
    /// kinds of row whose first titles returning viewers went on to watch most, each after
    /// the rows above: `model::popular_now`), rows of kinds it did not place after them in
    /// definition order; the definition's order with a model that learned none.
    Learned,
}

/// The Top Picks params of a page whose row specs are `specs`, in definition order.
fn top_picks_params<'a>(
    specs: impl IntoIterator<Item = &'a RowSpec>,
    origin: &str,
) -> Result<PersonalizedParams, PageError> {
    match specs.into_iter().find(|s| s.source == personalized::SOURCE) {
        Some(spec) => PersonalizedParams::from_table(spec.params.clone())
            .map_err(|error| spec.problem(origin, spec.source_problem(error))),
        None => Ok(PersonalizedParams::default()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageFile {
    #[serde(default)]
    page: Option<PageOrder>,
    row: Vec<RowSpec>,
}

/// One `[[row]]` of a page file, as written; `RowDefinition` is what it builds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowSpec {
    id: String,
    title: String,
    source: String,
    /// Items shown, 1–100; 20 unless set.
    #[serde(default = "default_size")]
    size: usize,
    /// A row that ends up with fewer items is dropped; 4 unless set.
    #[serde(default = "default_min_items")]
    min_items: usize,
    /// No diversity rerank unless set.
    #[serde(default)]
    diversity: Option<Diversity>,
    #[serde(default)]
    show_watched: bool,
    #[serde(default)]
    model: Option<String>,
    /// Kept at the top when the page orders rows by engagement.
    #[serde(default)]
    pinned: bool,
    /// The source's params (its `…Params` type, which holds their defaults).
    #[serde(default)]
    params: toml::Table,
}

impl RowDefinition {
    /// The name of the row's source (`source` in the page file).
    pub fn source_name(&self) -> &str {
        &self.spec.source
    }
}

impl RowSpec {
    fn problem(&self, origin: &str, problem: RowProblem) -> PageError {
        PageError::Row {
            origin: origin.to_owned(),
            row: self.id.clone(),
            problem,
        }
    }

    fn source_problem(&self, error: SourceError) -> RowProblem {
        RowProblem::Source {
            name: self.source.clone(),
            error,
        }
    }
}

fn default_size() -> usize {
    20
}
fn default_min_items() -> usize {
    4
}

/// Experiment variants of one page definition, each built once (`Engine::variant`): every
/// page of a profile in an experiment asks for its variant, twice (for its segment lists and
/// for its rows), and building one copies the whole definition. Experiments name a handful of
/// variants; the oldest of more than `Variants::KEEP` is forgotten first.
#[derive(Debug, Default)]
pub struct Variants(std::sync::Mutex<Vec<(PageOverrides, VariantDefinition)>>);

/// A variant's definition, or why its overrides do not apply.
pub type VariantDefinition = Result<std::sync::Arc<PageDefinition>, PageError>;

impl Variants {
    const KEEP: usize = 64;

    /// `home` as `overrides` would have it, built on first use.
    pub fn of(
        &self,
        home: &PageDefinition,
        overrides: &PageOverrides,
        registry: &SourceRegistry,
    ) -> VariantDefinition {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, variant)) = known.iter().find(|(o, _)| o == overrides) {
            return variant.clone();
        }
        let variant = home
            .with_overrides(overrides, registry)
            .map(std::sync::Arc::new);
        if known.len() >= Self::KEEP {
            drop(known.remove(0));
        }
        known.push((overrides.clone(), variant.clone()));
        variant
    }
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
    /// The page's row order (`fixed` or `engagement`), in place of the page file's; a variant
    /// that lists `rows` is shown in that order unless this says `engagement`.
    #[serde(default)]
    pub order: Option<RowOrder>,
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
        self.rows.is_none() && self.settings.is_empty() && self.order.is_none()
    }

    /// `row`'s spec with this variant's settings for it applied.
    fn apply(&self, row: &RowDefinition) -> RowSpec {
        let mut spec = row.spec.clone();
        if let Some(o) = self.settings.get(&row.id) {
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
        spec
    }
}

fn build_row(
    spec: RowSpec,
    registry: &SourceRegistry,
    origin: &str,
) -> Result<RowDefinition, PageError> {
    if spec.id.is_empty() || spec.id.contains(char::is_whitespace) || spec.id.contains(':') {
        return Err(spec.problem(origin, RowProblem::BadId));
    }
    if !(1..=100).contains(&spec.size) {
        return Err(spec.problem(origin, RowProblem::Size(spec.size)));
    }
    if spec.min_items > spec.size {
        return Err(spec.problem(
            origin,
            RowProblem::MinItems {
                min_items: spec.min_items,
                size: spec.size,
            },
        ));
    }
    let source = registry
        .build(&spec.source, spec.params.clone())
        .map_err(|error| spec.problem(origin, spec.source_problem(error)))?;
    Ok(RowDefinition {
        id: spec.id.clone(),
        title: spec.title.clone(),
        source,
        size: spec.size,
        min_items: spec.min_items.max(1),
        diversity: spec.diversity.unwrap_or(Diversity::NONE),
        show_watched: spec.show_watched,
        model: spec.model.clone(),
        pinned: spec.pinned,
        spec,
    })
}

impl PageDefinition {
    /// Parses a page definition; errors name `origin` (a file name) and the offending row.
    pub fn parse(text: &str, origin: &str, registry: &SourceRegistry) -> Result<Self, PageError> {
        let file: PageFile = toml::from_str(text).map_err(|e| PageError::Syntax {
            origin: origin.to_owned(),
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            message: e.message().to_owned(),
        })?;
        if file.row.is_empty() {
            return Err(PageError::NoRows {
                origin: origin.to_owned(),
            });
        }
        let mut seen = HashSet::new();
        let top_picks = top_picks_params(&file.row, origin)?;
        let rows = file
            .row
            .into_iter()
            .map(|spec| {
                if !seen.insert(spec.id.clone()) {
                    return Err(spec.problem(origin, RowProblem::DuplicateId));
                }
                build_row(spec, registry, origin)
            })
            .collect::<Result<Vec<_>, PageError>>()?;
        Ok(Self {
            rows,
            top_picks,
            order: file.page.unwrap_or_default(),
        })
    }

    /// This page as an experiment variant would have it.
    pub fn with_overrides(
        &self,
        overrides: &PageOverrides,
        registry: &SourceRegistry,
    ) -> Result<PageDefinition, PageError> {
        let by_id: BTreeMap<&str, &RowDefinition> =
            self.rows.iter().map(|r| (r.id.as_str(), r)).collect();
        for id in overrides.settings.keys() {
            if !by_id.contains_key(id.as_str()) {
                return Err(PageError::SettingsForUnknownRow(id.clone()));
            }
        }
        let order: Vec<&RowDefinition> = match &overrides.rows {
            None => self.rows.iter().collect(),
            Some(ids) => {
                let mut seen = HashSet::new();
                ids.iter()
                    .map(|id| {
                        if !seen.insert(id) {
                            return Err(PageError::ListedTwice(id.clone()));
                        }
                        by_id
                            .get(id.as_str())
                            .copied()
                            .ok_or_else(|| PageError::UnknownRow {
                                row: id.clone(),
                                known: by_id.keys().copied().collect::<Vec<_>>().join(", "),
                            })
                    })
                    .collect::<Result<_, PageError>>()?
            }
        };
        if order.is_empty() {
            return Err(PageError::NoRowsLeft);
        }
        let top_picks = self
            .rows
            .iter()
            .find(|r| r.spec.source == personalized::SOURCE)
            .map(|r| overrides.apply(r));
        let top_picks = top_picks_params(&top_picks, "experiment")?;
        let rows = order
            .into_iter()
            .map(|row| build_row(overrides.apply(row), registry, "experiment"))
            .collect::<Result<Vec<_>, PageError>>()?;
        Ok(PageDefinition {
            rows,
            top_picks,
            order: PageOrder {
                // A variant that lists rows means that order, unless it says otherwise.
                rows: overrides.order.unwrap_or(if overrides.rows.is_some() {
                    RowOrder::Fixed
                } else {
                    self.order.rows
                }),
                ..self.order
            },
        })
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
        assert!(
            matches!(err, PageError::Syntax { line: Some(2), .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("x.toml:2:"), "{err}");
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='nope'\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PageError::Row { row, problem: RowProblem::Source { error: SourceError::Unknown { .. }, .. }, .. } if row == "a"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("x.toml: row \"a\": source \"nope\": unknown source"),
            "{err}"
        );
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='trending'\ndiversity=2.0\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(err.to_string().contains("diversity"), "{err}");
        let err = PageDefinition::parse(
            "[[row]]\nid='a'\ntitle='A'\nsource='personalized'\n[row.params]\ntypo=1\n",
            "x.toml",
            &reg,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PageError::Row { problem: RowProblem::Source { error: SourceError::Params(m), .. }, .. } if m.contains("typo")),
            "{err:?}"
        );
    }

    #[test]
    fn the_page_s_top_picks_params_reach_every_row_and_variant() {
        let reg = SourceRegistry::builtin();
        let page = PageDefinition::parse(
            "[[row]]\nid='byw'\ntitle='B'\nsource='because-you-watched'\n\
             [[row]]\nid='tp'\ntitle='T'\nsource='personalized'\n\
             [row.params]\nrecency_floor = 0.5\n",
            "x.toml",
            &reg,
        )
        .unwrap();
        assert_eq!(page.top_picks.recency_floor, 0.5);
        assert_eq!(
            page.top_picks.embedding_weight,
            PersonalizedParams::default().embedding_weight
        );
        // A variant that retunes Top Picks and hides it still orders "Because You Watched"
        // with the retuned params.
        let o: PageOverrides = serde_json::from_value(serde_json::json!({
            "rows": ["byw"],
            "settings": {"tp": {"params": {"recency_floor": 0.25}}}
        }))
        .unwrap();
        let variant = page.with_overrides(&o, &reg).unwrap();
        assert_eq!(variant.rows.len(), 1);
        assert_eq!(variant.top_picks.recency_floor, 0.25);
        // Without a Top Picks row, the defaults.
        let bare = PageDefinition::parse(
            "[[row]]\nid='t'\ntitle='T'\nsource='trending'\n",
            "x.toml",
            &reg,
        )
        .unwrap();
        assert_eq!(bare.top_picks, PersonalizedParams::default());
    }

    #[test]
    fn a_variant_is_built_once_and_is_what_with_overrides_builds() {
        let reg = SourceRegistry::builtin();
        let page = PageDefinition::parse(DEFAULT_HOME, "rows/home.toml", &reg).unwrap();
        let variants = Variants::default();
        let diverse: PageOverrides = serde_json::from_value(serde_json::json!({
            "settings": {"top-picks": {"diversity": 0.8}}
        }))
        .unwrap();
        let first = variants.of(&page, &diverse, &reg).unwrap();
        let again = variants.of(&page, &diverse, &reg).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        let built = page.with_overrides(&diverse, &reg).unwrap();
        assert_eq!(format!("{:?}", *first), format!("{built:?}"));
        // Other overrides, another variant; a failing one fails every time.
        let fewer: PageOverrides =
            serde_json::from_value(serde_json::json!({"rows": ["trending"]})).unwrap();
        assert_eq!(variants.of(&page, &fewer, &reg).unwrap().rows.len(), 1);
        let bad: PageOverrides =
            serde_json::from_value(serde_json::json!({"rows": ["nope"]})).unwrap();
        for _ in 0..2 {
            assert!(variants.of(&page, &bad, &reg).is_err());
        }
        // Past `KEEP` distinct overrides the oldest are forgotten, not the newest.
        for size in 1..=Variants::KEEP {
            let o: PageOverrides = serde_json::from_value(serde_json::json!({
                "settings": {"trending": {"size": 10 + size}}
            }))
            .unwrap();
            variants.of(&page, &o, &reg).unwrap();
        }
        let rebuilt = variants.of(&page, &diverse, &reg).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &rebuilt));
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
