//! A profile's viewing history, reduced to one `WatchState` per title.
//!
//! The events table is the log; watch state is its projection, kept up to date by the store
//! on every write so that a page request reads one small row set instead of replaying events.
//! The reduction lives here, in the engine, so that import, live events and tests share it.

use std::collections::HashMap;

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

/// Everything the engine knows about one profile's past, indexed by title.
#[derive(Debug, Clone, Default)]
pub struct History {
    states: HashMap<TitleId, WatchState>,
}

impl History {
    pub fn new(states: impl IntoIterator<Item = WatchState>) -> Self {
        Self {
            states: states
                .into_iter()
                .map(|s| (s.title_id.clone(), s))
                .collect(),
        }
    }

    pub fn get(&self, title: &TitleId) -> Option<&WatchState> {
        self.states.get(title)
    }

    pub fn states(&self) -> impl Iterator<Item = &WatchState> {
        self.states.values()
    }
}

/// How much a profile liked a title it rated (or finished without rating): 5★ → 1.0,
/// 4★ → 0.6, 3★ → 0.2, 2.5★ and below → nothing; finished, unrated → 0.8.
pub fn completed_affinity(rating: Option<StarRating>) -> f64 {
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
    fn latest_thumb_wins() {
        let mut s = WatchState::new(t("1"));
        s.apply(EventAction::ThumbsDown, 30);
        s.apply(EventAction::ThumbsUp, 20);
        assert_eq!(s.thumbs, Thumbs::Down);
        s.apply(EventAction::ThumbsUp, 40);
        assert_eq!(s.thumbs, Thumbs::Up);
    }
}
