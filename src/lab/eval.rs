//! Offline evaluation of the served rankings, protocol `ml100k-temporal-80-20-v1`:
//!
//! - every interaction in a RecBole `*.inter` file is one implicit interaction;
//! - per user, sorted by (timestamp, item id), the last `max(1, n / 5)` are TEST and the rest
//!   TRAIN; VALID is carved out of TRAIN by the same rule and is the only data used for tuning;
//! - each user is ranked all catalogue titles minus their TRAIN titles; metrics are averaged
//!   over every user with held-out interactions (no recommendations scores 0): Recall@10/@20,
//!   NDCG@10 (binary gain), HitRate@10, and Coverage@10 over the catalogue.
//!
//! The rankings are produced by `page::assemble` on a page holding only the evaluated row, so
//! the figures are those of the code that fills the row in production (source, policy filters,
//! dedupe, diversity rerank), not of a copy of its maths. Nothing here touches HTTP or SQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::domain::{AccountId, Country, Profile, ProfileId, Title, TitleId};
use crate::engine::catalog::{Catalog, TitleIdx, natural_cmp};
use crate::engine::history::{History, WatchState, imported_event};
use crate::engine::model::{self, Model, TrainParams};
use crate::engine::page;
use crate::engine::rows::{PageDefinition, PageOverrides, RowOverride};
use crate::engine::sources::SourceRegistry;
use crate::engine::training_set::{TrainingSet, TrainingSetBuilder};
use crate::ingest::movielens::{self, Dataset};

pub const PROTOCOL: &str = "ml100k-temporal-80-20-v1";

/// Metrics are cut at these depths; rows are evaluated with at least `DEPTH` items.
pub const DEPTH: usize = 20;

// ---------------------------------------------------------------------------------------------
// Split

/// How many of a user's `n` interactions are held out: the last fifth, at least one.
pub fn holdout_count(n: usize) -> usize {
    if n == 0 { 0 } else { (n / 5).max(1) }
}

/// One data line of an atomic `.inter` file, kept verbatim, with the fields the split orders by.
#[derive(Debug, Clone, PartialEq)]
pub struct InterLine {
    pub user: String,
    pub item: String,
    pub timestamp: f64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct InterFile {
    pub header: String,
    pub lines: Vec<InterLine>,
}

impl InterFile {
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .with_context(|| format!("{origin}: empty file, expected a header line"))?;
        let col = |name: &str| {
            header
                .split('\t')
                .position(|c| c.split(':').next().unwrap_or(c).trim() == name)
                .with_context(|| format!("{origin}:1: missing column {name:?} in the header"))
        };
        let (u, i, t) = (col("user_id")?, col("item_id")?, col("timestamp")?);
        let mut out = Vec::new();
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let field = |c: usize, name: &str| {
                fields
                    .get(c)
                    .map(|f| f.trim())
                    .with_context(|| format!("{origin}:{}: missing field {name:?}", n + 1))
            };
            let ts = field(t, "timestamp")?;
            out.push(InterLine {
                user: field(u, "user_id")?.to_owned(),
                item: field(i, "item_id")?.to_owned(),
                timestamp: ts
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .with_context(|| {
                        format!("{origin}:{}: timestamp {ts:?} is not a number", n + 1)
                    })?,
                text: line.to_owned(),
            });
        }
        Ok(Self {
            header: header.to_owned(),
            lines: out,
        })
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.text.len() + 1).sum());
        out.push_str(&self.header);
        out.push('\n');
        for l in &self.lines {
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }
}

/// Splits per user into (kept, held out): each user's lines sorted by (timestamp, item id) and
/// the last `holdout_count` held out. Output is grouped by user (ids in natural order), each
/// user's lines in time order, so the files diff cleanly between runs.
pub fn temporal_split(lines: Vec<InterLine>) -> (Vec<InterLine>, Vec<InterLine>) {
    let mut by_user: BTreeMap<UserKey, Vec<InterLine>> = BTreeMap::new();
    for l in lines {
        by_user.entry(UserKey(l.user.clone())).or_default().push(l);
    }
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for (_, mut list) in by_user {
        list.sort_by(|a, b| {
            a.timestamp
                .total_cmp(&b.timestamp)
                .then_with(|| natural_cmp(&a.item, &b.item))
        });
        let cut = list.len() - holdout_count(list.len());
        held.extend(list.split_off(cut));
        kept.extend(list);
    }
    (kept, held)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UserKey(String);
impl Ord for UserKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        natural_cmp(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}
impl PartialOrd for UserKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
pub struct SplitSummary {
    pub users: usize,
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    pub dirs: [PathBuf; 3],
}

/// Reads the single `*.inter` in `dir` and writes `out/{train,valid,test}/<stem>.<part>.inter`
/// (VALID ⊂ TRAIN), each directory with copies of the `*.item` and `*.user` files so that it
/// imports on its own (`marquee import movielens out/train`).
pub fn split_dir(dir: &Path, out: &Path) -> Result<SplitSummary> {
    let inter = only_file(dir, "inter")?
        .with_context(|| format!("{}: no *.inter file in this directory", dir.display()))?;
    let stem = inter
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let file = InterFile::read(&inter)?;
    let users = file
        .lines
        .iter()
        .map(|l| l.user.as_str())
        .collect::<HashSet<_>>()
        .len();
    let (train, test) = temporal_split(file.lines.clone());
    let (_, valid) = temporal_split(train.clone());
    let companions: Vec<PathBuf> = [only_file(dir, "item")?, only_file(dir, "user")?]
        .into_iter()
        .flatten()
        .collect();
    let mut dirs = Vec::new();
    for (part, lines) in [("train", &train), ("valid", &valid), ("test", &test)] {
        let d = out.join(part);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        let path = d.join(format!("{stem}.{part}.inter"));
        let body = InterFile {
            header: file.header.clone(),
            lines: lines.clone(),
        }
        .to_text();
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        for c in &companions {
            let to = d.join(c.file_name().unwrap_or_default());
            std::fs::copy(c, &to).with_context(|| format!("cannot write {}", to.display()))?;
        }
        dirs.push(d);
    }
    let [train_dir, valid_dir, test_dir]: [PathBuf; 3] = dirs
        .try_into()
        .map_err(|_| anyhow::anyhow!("three parts"))?;
    Ok(SplitSummary {
        users,
        train: train.len(),
        valid: valid.len(),
        test: test.len(),
        dirs: [train_dir, valid_dir, test_dir],
    })
}

fn only_file(dir: &Path, ext: &str) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    if found.len() > 1 {
        bail!(
            "{}: more than one *.{ext} file; keep one per directory",
            dir.display()
        );
    }
    Ok(found.pop())
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    pub users: usize,
    pub recall_10: f64,
    pub recall_20: f64,
    pub ndcg_10: f64,
    pub hit_rate_10: f64,
    pub coverage_10: f64,
}

impl Metrics {
    /// `ranked[u]` is user u's ranking (best first), `held_out[u]` their held-out titles.
    /// Users with nothing held out are skipped (the protocol gives every user at least one).
    pub fn compute(
        ranked: &[Vec<TitleIdx>],
        held_out: &[HashSet<TitleIdx>],
        catalog: usize,
    ) -> Self {
        let mut m = Metrics::default();
        let mut covered: HashSet<TitleIdx> = HashSet::new();
        for (ranking, truth) in ranked.iter().zip(held_out) {
            if truth.is_empty() {
                continue;
            }
            m.users += 1;
            covered.extend(ranking.iter().take(10));
            let hits_at = |k: usize| ranking.iter().take(k).filter(|t| truth.contains(t)).count();
            let dcg: f64 = ranking
                .iter()
                .take(10)
                .enumerate()
                .filter(|(_, t)| truth.contains(t))
                .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
                .sum();
            let idcg: f64 = (0..truth.len().min(10))
                .map(|r| 1.0 / ((r + 2) as f64).log2())
                .sum();
            let n = truth.len() as f64;
            m.recall_10 += hits_at(10) as f64 / n;
            m.recall_20 += hits_at(20) as f64 / n;
            m.ndcg_10 += dcg / idcg;
            m.hit_rate_10 += if hits_at(10) > 0 { 1.0 } else { 0.0 };
        }
        if m.users > 0 {
            let u = m.users as f64;
            m.recall_10 /= u;
            m.recall_20 /= u;
            m.ndcg_10 /= u;
            m.hit_rate_10 /= u;
        }
        if catalog > 0 {
            m.coverage_10 = covered.len() as f64 / catalog as f64;
        }
        m
    }
}

// ---------------------------------------------------------------------------------------------
// The served rankings on a split

/// A split loaded for evaluation: the catalogue, each user's TRAIN history as the engine sees
/// it, and the held-out titles to predict.
pub struct EvalSet {
    pub catalog: Catalog,
    pub users: Vec<EvalUser>,
    /// Users with training data but nothing held out: they train the model, are not scored.
    pub train_only: Vec<(ProfileId, Vec<WatchState>)>,
    /// The newest TRAIN interaction: the training clock, as `--clock last-event` would set it.
    pub now: i64,
}

pub struct EvalUser {
    pub profile: Profile,
    pub history: Vec<WatchState>,
    pub held_out: HashSet<TitleIdx>,
}

fn key(user: &ProfileId, item: &TitleId, at: i64) -> (String, String, i64) {
    (user.to_string(), item.to_string(), at)
}

impl EvalSet {
    /// `train_dir` holds the training interactions (and the catalogue's `*.item`);
    /// `target_dir` the held-out ones. With `subtract`, the target's interactions are removed
    /// from the training ones first (VALID is a subset of TRAIN).
    pub fn load(train_dir: &Path, target_dir: &Path, subtract: bool) -> Result<Self> {
        let us = Country::parse("US").map_err(|e| anyhow::anyhow!(e.0))?;
        let train = movielens::read_dir(train_dir, Some(&us))?;
        let target = movielens::read_dir(target_dir, Some(&us))?;
        Self::from_datasets(train, target, subtract)
    }

    pub fn from_datasets(mut train: Dataset, target: Dataset, subtract: bool) -> Result<Self> {
        if subtract {
            let mut held: HashMap<(String, String, i64), usize> = HashMap::new();
            for i in &target.interactions {
                *held.entry(key(&i.user, &i.item, i.at)).or_default() += 1;
            }
            train
                .interactions
                .retain(|i| match held.get_mut(&key(&i.user, &i.item, i.at)) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                });
            let left: usize = held.values().sum();
            if left > 0 {
                bail!(
                    "{left} held-out interactions are not in the training data: is it the matching split?"
                );
            }
        }
        // Titles without a `.item` line still belong to the catalogue, by id only.
        let mut titles = train.titles;
        let mut known: HashSet<TitleId> = titles.iter().map(|t| t.id.clone()).collect();
        for i in train.interactions.iter().chain(&target.interactions) {
            if known.insert(i.item.clone()) {
                titles.push(Title::new(i.item.clone(), i.item.to_string()));
            }
        }
        let catalog = Catalog::new(titles);
        let country: HashMap<ProfileId, Option<Country>> =
            train.users.into_iter().map(|u| (u.id, u.country)).collect();

        // Watch state exactly as import builds it, from the same events (`imported_event`).
        let mut states: BTreeMap<ProfileId, BTreeMap<TitleId, WatchState>> = BTreeMap::new();
        let mut now = 0;
        for i in &train.interactions {
            let s = states
                .entry(i.user.clone())
                .or_default()
                .entry(i.item.clone())
                .or_insert_with(|| WatchState::new(i.item.clone()));
            s.apply(imported_event(i.rating), i.at);
            now = now.max(i.at);
        }
        let mut held: BTreeMap<ProfileId, HashSet<TitleIdx>> = BTreeMap::new();
        for i in &target.interactions {
            if let Some(t) = catalog.idx(&i.item) {
                held.entry(i.user.clone()).or_default().insert(t);
            }
        }
        let mut users: Vec<EvalUser> = held
            .into_iter()
            .map(|(id, held_out)| {
                let history: Vec<WatchState> = states
                    .remove(&id)
                    .map(|m| m.into_values().collect())
                    .unwrap_or_default();
                EvalUser {
                    profile: Profile {
                        account_id: AccountId::parse(id.as_str())
                            .unwrap_or_else(|_| AccountId::parse("eval").expect("valid id")),
                        name: id.to_string(),
                        is_kids: false,
                        maturity_limit: None,
                        country: country
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| Some(us_country())),
                        onboarding_genres: vec![],
                        id,
                    },
                    history,
                    held_out,
                }
            })
            .collect();
        // Users who only have training data still train the model.
        let train_only: Vec<(ProfileId, Vec<WatchState>)> = states
            .into_iter()
            .map(|(id, m)| (id, m.into_values().collect()))
            .collect();
        users.sort_by(|a, b| natural_cmp(a.profile.id.as_str(), b.profile.id.as_str()));
        Ok(Self {
            catalog,
            users,
            train_only,
            now,
        })
    }

    /// The training set, built from watch state by the rule `Store::training_set` uses
    /// (`TrainingSetBuilder::push_state`), rows in the same (profile, title) order.
    pub fn training_set(&self) -> TrainingSet {
        let us = us_country();
        let histories = self
            .users
            .iter()
            .map(|u| (&u.profile.id, &u.history, u.profile.country.as_ref()))
            .chain(self.train_only.iter().map(|(id, h)| (id, h, Some(&us))));
        let mut states: Vec<(&ProfileId, &WatchState, Option<&Country>)> = histories
            .flat_map(|(profile, history, country)| {
                history.iter().map(move |s| (profile, s, country))
            })
            .collect();
        states.sort_by(|a, b| (a.0, &a.1.title_id).cmp(&(b.0, &b.1.title_id)));
        let mut builder = TrainingSetBuilder::default();
        for (profile, state, country) in states {
            if let Some(title) = self.catalog.idx(&state.title_id) {
                builder.push_state(profile.as_str(), title, state, country);
            }
        }
        builder.finish()
    }

    pub fn held_out(&self) -> Vec<HashSet<TitleIdx>> {
        self.users.iter().map(|u| u.held_out.clone()).collect()
    }

    /// Each user's ranking by the page row `row` of `home`, as `page::assemble` fills it.
    pub fn served(
        &self,
        model: &Model,
        home: &PageDefinition,
        row: &str,
    ) -> Result<Vec<Vec<TitleIdx>>> {
        let page = single_row_page(home, row)?;
        Ok(self
            .users
            .iter()
            .map(|u| {
                let history = History::new(u.history.iter().cloned());
                let page = page::assemble(
                    &page,
                    &self.catalog,
                    model,
                    &Default::default(),
                    &u.profile,
                    &history,
                    self.now,
                );
                // A source that makes several rows ("Because You Watched" X, Y): the first.
                page.rows
                    .into_iter()
                    .next()
                    .map(|r| r.items.into_iter().map(|i| i.title).collect())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// The protocol's MostPop: TRAIN interaction counts, ties by catalogue order, minus the
    /// user's TRAIN titles.
    pub fn most_popular(&self) -> Vec<Vec<TitleIdx>> {
        let mut count = vec![0usize; self.catalog.len()];
        let all = self
            .users
            .iter()
            .map(|u| &u.history)
            .chain(self.train_only.iter().map(|(_, h)| h));
        for h in all {
            for s in h {
                if let Some(t) = self.catalog.idx(&s.title_id) {
                    count[t as usize] += 1;
                }
            }
        }
        let mut order: Vec<TitleIdx> = (0..self.catalog.len() as TitleIdx).collect();
        order.sort_by(|a, b| count[*b as usize].cmp(&count[*a as usize]).then(a.cmp(b)));
        self.unseen_in_order(&order)
    }

    /// One global ranking turned into each user's list: the first `DEPTH` titles of `order`
    /// the user has not interacted with (the non-personalised baselines all end this way).
    pub fn unseen_in_order(&self, order: &[TitleIdx]) -> Vec<Vec<TitleIdx>> {
        self.users
            .iter()
            .map(|u| {
                let seen: HashSet<TitleIdx> = u
                    .history
                    .iter()
                    .filter_map(|s| self.catalog.idx(&s.title_id))
                    .collect();
                order
                    .iter()
                    .copied()
                    .filter(|t| !seen.contains(t))
                    .take(DEPTH)
                    .collect()
            })
            .collect()
    }
}

/// `home` reduced to the row `id`, at least `DEPTH` items long and never dropped for being
/// short, so that Recall@20 is measured on the row's own ranking.
pub fn single_row_page(home: &PageDefinition, id: &str) -> Result<PageDefinition> {
    let size = home
        .rows
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.size)
        .with_context(|| format!("the page has no row {id:?}"))?;
    let overrides = PageOverrides {
        rows: Some(vec![id.to_owned()]),
        settings: BTreeMap::from([(
            id.to_owned(),
            RowOverride {
                size: Some(size.max(DEPTH)),
                min_items: Some(1),
                ..RowOverride::default()
            },
        )]),
        order: None,
    };
    home.with_overrides(&overrides, &SourceRegistry::builtin())
        .map_err(anyhow::Error::from)
}

/// What `marquee eval` prints.
pub struct Report {
    /// "TEST" or "VALID".
    pub target: &'static str,
    pub users: usize,
    pub titles: usize,
    pub train_interactions: usize,
    pub train_seconds: f64,
    /// (name, metrics), baseline first.
    pub lines: Vec<(String, Metrics)>,
    /// The Top Picks rankings, per user id, for `--export`.
    pub top_picks: Vec<(ProfileId, Vec<TitleId>)>,
    /// What training's popular-now backtest learned, in a line.
    pub popular_now: Option<String>,
}

/// Trains on the set's training interactions and measures MostPop, Top Picks and the first
/// "Because You Watched" row.
pub fn run(
    set: &EvalSet,
    params: &TrainParams,
    home: &PageDefinition,
    target: &'static str,
) -> Result<Report> {
    let data = set.training_set();
    let started = Instant::now();
    let artifact = model::train(&set.catalog, &data, &[], set.now, params);
    let train_seconds = started.elapsed().as_secs_f64();
    let model = Model::load("eval", &artifact, &set.catalog);
    let held = set.held_out();
    let n = set.catalog.len();
    let top_picks = set.served(&model, home, "top-picks")?;
    let mut lines = vec![
        (
            "MostPop".to_owned(),
            Metrics::compute(&set.most_popular(), &held, n),
        ),
        (
            "Top Picks (served)".to_owned(),
            Metrics::compute(&top_picks, &held, n),
        ),
    ];
    if home.rows.iter().any(|r| r.id == "because-you-watched") {
        let byw = set.served(&model, home, "because-you-watched")?;
        lines.push((
            "Because You Watched, first row (served)".to_owned(),
            Metrics::compute(&byw, &held, n),
        ));
    }
    Ok(Report {
        target,
        users: set.users.len(),
        titles: n,
        train_interactions: data.len(),
        train_seconds,
        lines,
        popular_now: artifact.popular_now.as_ref().map(|b| b.describe()),
        top_picks: set
            .users
            .iter()
            .zip(top_picks)
            .map(|(u, r)| {
                (
                    u.profile.id.clone(),
                    r.into_iter()
                        .map(|t| set.catalog.title(t).id.clone())
                        .collect(),
                )
            })
            .collect(),
    })
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "protocol {PROTOCOL}, scored on {}: {} users, {} titles, trained on {} interactions in {:.2}s\n",
            self.target, self.users, self.titles, self.train_interactions, self.train_seconds
        );
        if let Some(line) = &self.popular_now {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str(&format!(
            "{:<42} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "ranking", "NDCG@10", "Recall@10", "Recall@20", "Hit@10", "Cov@10"
        ));
        for (name, m) in &self.lines {
            out.push_str(&format!(
                "{:<42} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}\n",
                name, m.ndcg_10, m.recall_10, m.recall_20, m.hit_rate_10, m.coverage_10
            ));
        }
        out
    }

    /// `user_id<TAB>item_id<TAB>rank`, rank from 1.
    pub fn export_tsv(&self) -> String {
        let mut out = String::new();
        for (user, items) in &self.top_picks {
            for (rank, item) in items.iter().enumerate() {
                out.push_str(&format!("{user}\t{item}\t{}\n", rank + 1));
            }
        }
        out
    }
}

fn us_country() -> Country {
    Country::parse("US").expect("valid country")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(user: &str, item: &str, ts: f64) -> InterLine {
        InterLine {
            user: user.into(),
            item: item.into(),
            timestamp: ts,
            text: format!("{user}\t{item}\t{ts}"),
        }
    }

    #[test]
    fn holds_out_the_last_fifth_and_at_least_one() {
        assert_eq!(
            [0, 1, 4, 5, 9, 10, 14, 15].map(holdout_count),
            [0, 1, 1, 1, 1, 2, 2, 3]
        );
    }

    #[test]
    fn splits_each_user_by_time_then_item_id() {
        // u: 6 interactions → 1 held out. Items 9 and 10 tie at t=50: 10 sorts after 9
        // numerically (not as text), so 10 is the last one.
        // v: 10 interactions given out of order → the 2 latest are held out.
        let mut lines = vec![
            line("u", "10", 50.0),
            line("u", "9", 50.0),
            line("u", "1", 10.0),
            line("u", "2", 20.0),
            line("u", "3", 30.0),
            line("u", "4", 40.0),
        ];
        for i in (0..10).rev() {
            lines.push(line("v", &format!("{}", 100 + i), i as f64));
        }
        let (kept, held) = temporal_split(lines);
        let ids = |ls: &[InterLine]| {
            ls.iter()
                .map(|l| format!("{}:{}", l.user, l.item))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&held), vec!["u:10", "v:108", "v:109"]);
        assert_eq!(kept.len(), 13);
        assert_eq!(ids(&kept)[..5], ["u:1", "u:2", "u:3", "u:4", "u:9"]);
        // VALID is the same rule applied to TRAIN: u keeps 5 → 1 held out (item 9).
        let (_, valid) = temporal_split(kept);
        assert_eq!(ids(&valid), vec!["u:9", "v:107"]);
    }

    #[test]
    fn metrics_match_hand_computation() {
        // A: hit at rank 2 of 2 held out. B: no recommendations. C: hit at rank 15 only.
        let a = vec![1, 2, 3];
        let c: Vec<TitleIdx> = (20..40).collect();
        let ranked = vec![a, vec![], c];
        let held = vec![
            HashSet::from([2, 5]),
            HashSet::from([1]),
            HashSet::from([34]),
        ];
        let m = Metrics::compute(&ranked, &held, 100);
        let l3 = 1.0 / 3f64.log2();
        assert_eq!(m.users, 3);
        assert!((m.recall_10 - 0.5 / 3.0).abs() < 1e-12);
        assert!((m.recall_20 - 1.5 / 3.0).abs() < 1e-12);
        assert!((m.ndcg_10 - (l3 / (1.0 + l3)) / 3.0).abs() < 1e-12);
        assert!((m.hit_rate_10 - 1.0 / 3.0).abs() < 1e-12);
        // Top-10s: {1,2,3} ∪ {20..29} = 13 of 100 titles.
        assert!((m.coverage_10 - 0.13).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_ranking_scores_one() {
        let m = Metrics::compute(&[vec![7, 8]], &[HashSet::from([8, 7])], 10);
        assert!((m.ndcg_10 - 1.0).abs() < 1e-12 && (m.recall_10 - 1.0).abs() < 1e-12);
    }
}
