//! A profile's viewing history, reduced to one `WatchState` per title.
//!
//! The events table is the log; watch state is its projection, kept up to date by the store
//! on every write so that a page request reads one small row set instead of replaying events.
//! The reduction lives here, in the engine, so that import, live events and tests share it.

use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use crate::domain::{EventAction, Millis, Progress, StarRating, TitleId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Thumbs {
    #[default]
    None,
    Up,
    Down,
}

impl Thumbs {
    pub fn as_i64(self) -> i64 {
        match self {
            Thumbs::None => 0,
            Thumbs::Up => 1,
            Thumbs::Down => -1,
        }
    }
    pub fn from_i64(v: i64) -> Self {
        match v.signum() {
            1 => Thumbs::Up,
            -1 => Thumbs::Down,
            _ => Thumbs::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchState {
    pub title_id: TitleId,
    pub progress: Progress,
    pub completed: bool,
    /// Last time the profile played, progressed or completed the title.
    pub last_watched_at: Option<Millis>,
    pub rating: Option<StarRating>,
    pub rated_at: Option<Millis>,
    pub thumbs: Thumbs,
    pub thumbs_at: Option<Millis>,
}

/// `true` when `at` is not older than the time the field was last set. Events may arrive out
/// of order (offline clients, replays); a late, older event must not overwrite newer state.
fn is_newer(at: Millis, last: Option<Millis>) -> bool {
    last.is_none_or(|last| at >= last)
}

impl WatchState {
    pub fn new(title_id: TitleId) -> Self {
        Self {
            title_id,
            progress: Progress::ZERO,
            completed: false,
            last_watched_at: None,
            rating: None,
            rated_at: None,
            thumbs: Thumbs::None,
            thumbs_at: None,
        }
    }

    pub fn apply(&mut self, action: EventAction, at: Millis) {
        match action {
            EventAction::Play => self.touch(at),
            EventAction::Progress(p) => {
                if is_newer(at, self.last_watched_at) {
                    self.progress = p;
                }
                self.touch(at);
            }
            EventAction::Complete => {
                self.completed = true;
                self.progress = Progress::DONE;
                self.touch(at);
            }
            EventAction::Rating(r) => {
                if is_newer(at, self.rated_at) {
                    self.rating = Some(r);
                    self.rated_at = Some(at);
                }
            }
            EventAction::ThumbsUp | EventAction::ThumbsDown => {
                if is_newer(at, self.thumbs_at) {
                    self.thumbs = if action == EventAction::ThumbsUp {
                        Thumbs::Up
                    } else {
                        Thumbs::Down
                    };
                    self.thumbs_at = Some(at);
                }
            }
            // A click on an impression is attribution data, not viewing.
            EventAction::Click => {}
        }
    }

    fn touch(&mut self, at: Millis) {
        self.last_watched_at = Some(self.last_watched_at.map_or(at, |t| t.max(at)));
    }

    /// Completed or rated: the title has been seen and is not recommended again.
    pub fn is_watched(&self) -> bool {
        self.completed || self.rating.is_some()
    }

    /// Latest moment anything happened to this title.
    pub fn last_activity(&self) -> Millis {
        [self.last_watched_at, self.rated_at, self.thumbs_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    }

    /// How much this state says the profile liked the title, in 0–1 (0 = no positive signal).
    /// Explicit signals win over implicit ones: a thumbs-down or a low rating cancels viewing.
    pub fn affinity(&self) -> f64 {
        if self.thumbs == Thumbs::Down {
            return 0.0;
        }
        if self.thumbs == Thumbs::Up {
            return 1.0;
        }
        if self.rating.is_some() || self.completed {
            return completed_affinity(self.rating);
        }
        if self.last_watched_at.is_some() {
            return 0.2 + 0.5 * self.progress.get();
        }
        0.0
    }

    /// Strong enough to anchor a "Because You Watched" row.
    pub fn is_strongly_positive(&self, min_stars: f64) -> bool {
        match (self.thumbs, self.rating) {
            (Thumbs::Down, _) => false,
            (Thumbs::Up, _) => true,
            (_, Some(r)) => r.get() >= min_stars,
            (_, None) => self.completed,
        }
    }
}

/// How past activity fades: a weight halves with every `half_life_ms` of age and never falls
/// below `floor`, the share that never decays (so that the whole history still counts). What
/// the age counts back from is the caller's choice, `AgeFrom`. Top Picks, Top Genre and
/// trending all weigh the past through this one rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecencyDecay {
    /// 0 (or less) turns decay off.
    pub half_life_ms: f64,
    /// 0–1.
    pub floor: f64,
}

/// What an entry's age counts back from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeFrom {
    /// The request's "now" (or training's): tastes and popularity fade in calendar time.
    Now,
    /// The profile's own latest activity: the latest session weighs most, however long ago it
    /// was, since it predicts the next title best.
    LatestActivity,
}

impl RecencyDecay {
    pub fn new(half_life_ms: f64, floor: f64) -> Self {
        Self {
            half_life_ms,
            floor: floor.clamp(0.0, 1.0),
        }
    }

    /// Plain halving, nothing kept forever.
    pub fn halving_every(half_life_ms: f64) -> Self {
        Self::new(half_life_ms, 0.0)
    }

    /// The share of its weight an entry `age` old keeps.
    pub fn factor(&self, age: Millis) -> f64 {
        let decay = if self.half_life_ms > 0.0 {
            (-(age as f64) / self.half_life_ms).exp2()
        } else {
            1.0
        };
        self.floor + (1.0 - self.floor) * decay
    }
}

/// Everything the engine knows about one profile's past, indexed by title. A clone shares the
/// states and their version (copied on the first `apply`): the store keeps the history it last
/// read of a profile and hands it to every page until the profile's events change
/// (`Store::viewer`), so its version is hashed once, not once per page.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<Shared>);

#[derive(Debug, Clone, Default)]
struct Shared {
    /// Fx-hashed: the policy filters look a title up here for every candidate of every row.
    states: FxHashMap<TitleId, WatchState>,
    /// `History::version`, computed on first use.
    version: OnceLock<u64>,
}

impl History {
    pub fn new(states: impl IntoIterator<Item = WatchState>) -> Self {
        Self(Arc::new(Shared {
            states: states
                .into_iter()
                .map(|s| (s.title_id.clone(), s))
                .collect(),
            version: OnceLock::new(),
        }))
    }

    pub fn get(&self, title: &TitleId) -> Option<&WatchState> {
        self.0.states.get(title)
    }

    /// Titles with a state.
    pub fn len(&self) -> usize {
        self.0.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.states.is_empty()
    }

    pub fn states(&self) -> impl Iterator<Item = &WatchState> {
        self.0.states.values()
    }

    /// Folds one event into the history, as `recordEvents` does into the stored watch state.
    pub fn apply(&mut self, title: &TitleId, action: EventAction, at: Millis) {
        let shared = Arc::make_mut(&mut self.0);
        shared
            .states
            .entry(title.clone())
            .or_insert_with(|| WatchState::new(title.clone()))
            .apply(action, at);
        shared.version = OnceLock::new();
    }

    /// The version of this watch state: equal histories have equal versions, and any event
    /// that changes a state changes it (every field is hashed, in title order). Lists derived
    /// from a history are kept under it, so that a changed history never finds an old list.
    /// SipHash with fixed keys: the same in every process of one build (replicas agree).
    pub fn version(&self) -> u64 {
        *self.0.version.get_or_init(|| self.hash_states())
    }

    fn hash_states(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut sorted: Vec<&WatchState> = self.0.states.values().collect();
        sorted.sort_by(|a, b| a.title_id.as_str().cmp(b.title_id.as_str()));
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        for s in sorted {
            s.title_id.as_str().hash(&mut h);
            s.progress.get().to_bits().hash(&mut h);
            s.completed.hash(&mut h);
            s.last_watched_at.hash(&mut h);
            s.rating.map(|r| r.get().to_bits()).hash(&mut h);
            s.rated_at.hash(&mut h);
            s.thumbs.as_i64().hash(&mut h);
            s.thumbs_at.hash(&mut h);
        }
        h.finish()
    }
}

/// An interaction of an imported dataset (a MovieLens `.inter` line) as the event it stands
/// for: with a rating, a rating event (the profile saw the title and said how much it liked
/// it); without one, a completion. The importer stores these events and the offline tools
/// replay them, so that both derive the same watch state from the same file.
pub fn imported_event(rating: Option<StarRating>) -> EventAction {
    match rating {
        Some(r) => EventAction::Rating(r),
        None => EventAction::Complete,
    }
}

/// How much a profile liked a title it rated (or finished without rating): 5★ → 1.0,
/// 4★ → 0.6, 3★ → 0.2, 2.5★ and below → nothing; finished, unrated → 0.8.
fn completed_affinity(rating: Option<StarRating>) -> f64 {
    match rating {
        Some(r) => ((r.get() - 2.5) / 2.5).clamp(0.0, 1.0),
        None => 0.8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TitleId {
        TitleId::parse(id).unwrap()
    }

    #[test]
    fn late_older_progress_does_not_overwrite_newer() {
        let mut s = WatchState::new(t("1"));
        s.apply(EventAction::Progress(Progress::new(0.6).unwrap()), 2_000);
        s.apply(EventAction::Progress(Progress::new(0.1).unwrap()), 1_000);
        assert_eq!(s.progress.get(), 0.6);
        assert_eq!(s.last_watched_at, Some(2_000));
    }

    #[test]
    fn rating_counts_as_watched_and_thumbs_down_cancels_affinity() {
        let mut s = WatchState::new(t("1"));
        s.apply(EventAction::Rating(StarRating::new(5.0).unwrap()), 10);
        assert!(s.is_watched());
        assert_eq!(s.affinity(), 1.0);
        s.apply(EventAction::ThumbsDown, 20);
        assert_eq!(s.affinity(), 0.0);
        assert!(!s.is_strongly_positive(4.0));
    }

    #[test]
    fn recency_decay_halves_and_keeps_its_floor() {
        let hour = 3_600_000;
        let d = RecencyDecay::new(hour as f64, 0.2);
        assert_eq!(d.factor(0), 1.0);
        assert!((d.factor(hour) - 0.6).abs() < 1e-12);
        assert!((d.factor(1_000 * hour) - 0.2).abs() < 1e-12);
        assert_eq!(RecencyDecay::new(0.0, 0.3).factor(1_000 * hour), 1.0);
        assert_eq!(
            RecencyDecay::halving_every(hour as f64).factor(2 * hour),
            0.25
        );
    }

    #[test]
    fn latest_thumb_wins() {
        let mut s = WatchState::new(t("1"));
        s.apply(EventAction::ThumbsDown, 30);
        s.apply(EventAction::ThumbsUp, 20);
        assert_eq!(s.thumbs, Thumbs::Down);
        s.apply(EventAction::ThumbsUp, 40);
        assert_eq!(s.thumbs, Thumbs::Up);
    }
}
