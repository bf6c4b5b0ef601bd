//! What training reads: one compact row per (profile, title) interaction, with profiles and
//! countries interned. At 50M interactions a row of owned ids would cost several gigabytes;
//! this one is 24 bytes.

use std::collections::HashMap;

use crate::domain::{Country, Millis, ProfileId, StarRating, TitleId};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::history::{Thumbs, WatchState, imported_event};

/// What one (profile, title) watch state teaches training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingSignal {
    /// How much the profile liked the title, 0–1 (`WatchState::affinity`).
    pub affinity: f32,
    /// When the profile last did anything with it (`WatchState::last_activity`): trending
    /// windows and decay count from here.
    pub at: Millis,
}

impl TrainingSignal {
    /// The one rule from watch state to training row, for `marquee train`
    /// (`Store::training_set`), the offline evaluation and the scale benchmark alike, so that
    /// what is measured offline is what production trains on. `None` for a title the profile
    /// turned down: a thumbs-down says the title was a mistake, not a taste to learn from.
    pub fn of(state: &WatchState) -> Option<Self> {
        if state.thumbs == Thumbs::Down {
            return None;
        }
        Some(Self {
            affinity: state.affinity() as f32,
            at: state.last_activity(),
        })
    }
}

/// `TrainingSignal::of` the watch state that one imported interaction leaves on a title
/// (`imported_event`), for readers that stream a dataset line by line (`bench --training`:
/// 50M lines, a handful of distinct ratings) and cannot afford a `WatchState` per line. A
/// one-event state is active at its event's time, so only the affinity depends on the line,
/// through its rating alone: it is worked out once per distinct rating.
#[derive(Debug, Default)]
pub struct ImportedSignals {
    affinity_by_rating: HashMap<u64, Option<f32>>,
}

impl ImportedSignals {
    pub fn get(
        &mut self,
        title: &TitleId,
        rating: Option<StarRating>,
        at: Millis,
    ) -> Option<TrainingSignal> {
        let key = rating.map_or(u64::MAX, |r| r.get().to_bits());
        let affinity = *self.affinity_by_rating.entry(key).or_insert_with(|| {
            let mut state = WatchState::new(title.clone());
            state.apply(imported_event(rating), at);
            TrainingSignal::of(&state).map(|s| s.affinity)
        });
        Some(TrainingSignal {
            affinity: affinity?,
            at,
        })
    }
}

/// One profile's relation to one title, in owned ids, its signal already decided: how tests
/// describe training input before `TrainingSet::from_interactions` compacts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub profile: ProfileId,
    pub title: TitleId,
    /// How much the profile liked it, 0–1 (see `WatchState::affinity`).
    pub affinity: f32,
    pub at: Millis,
    pub country: Option<Country>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingRow {
    /// Dense profile number, 0..profiles.
    pub profile: u32,
    pub title: TitleIdx,
    pub affinity: f32,
    /// Index into `TrainingSet::countries`, or `NO_COUNTRY`.
    pub country: u16,
    pub at: Millis,
}

pub const NO_COUNTRY: u16 = u16::MAX;

#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    profiles: usize,
    rows: Vec<TrainingRow>,
    countries: Vec<Country>,
}

impl TrainingSet {
    /// Interactions with titles the catalogue does not have are left out.
    pub fn from_interactions(catalog: &Catalog, interactions: &[Interaction]) -> Self {
        let mut b = TrainingSetBuilder::default();
        for i in interactions {
            if let Some(t) = catalog.idx(&i.title) {
                let signal = TrainingSignal {
                    affinity: i.affinity,
                    at: i.at,
                };
                b.push(i.profile.as_str(), t, signal, i.country.as_ref());
            }
        }
        b.finish()
    }

    pub fn profiles(&self) -> usize {
        self.profiles
    }

    pub fn rows(&self) -> &[TrainingRow] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows before `t` (profiles and countries keep their numbers): what was known at `t`.
    pub fn before(&self, t: Millis) -> TrainingSet {
        TrainingSet {
            profiles: self.profiles,
            rows: self.rows.iter().filter(|r| r.at < t).copied().collect(),
            countries: self.countries.clone(),
        }
    }

    pub fn country(&self, row: &TrainingRow) -> Option<&Country> {
        self.country_at(row.country)
    }

    /// The country interned as `k` (`TrainingRow::country`); `None` for `NO_COUNTRY`.
    pub fn country_at(&self, k: u16) -> Option<&Country> {
        self.countries.get(k as usize)
    }
}

/// Interns profiles (by any string key) and countries while rows are added.
#[derive(Debug, Default)]
pub struct TrainingSetBuilder {
    profiles: HashMap<String, u32>,
    countries: HashMap<Country, u16>,
    set: TrainingSet,
}

impl TrainingSetBuilder {
    /// Adds what `state` teaches (see `TrainingSignal::of`); a turned-down title adds nothing.
    pub fn push_state(
        &mut self,
        profile: &str,
        title: TitleIdx,
        state: &WatchState,
        country: Option<&Country>,
    ) {
        if let Some(signal) = TrainingSignal::of(state) {
            self.push(profile, title, signal, country);
        }
    }

    pub fn push(
        &mut self,
        profile: &str,
        title: TitleIdx,
        signal: TrainingSignal,
        country: Option<&Country>,
    ) {
        let TrainingSignal { affinity, at } = signal;
        let next = self.profiles.len() as u32;
        let profile = match self.profiles.get(profile) {
            Some(p) => *p,
            None => {
                self.profiles.insert(profile.to_owned(), next);
                next
            }
        };
        let country = match country {
            None => NO_COUNTRY,
            Some(c) => match self.countries.get(c) {
                Some(k) => *k,
                // Past 65,535 countries a row simply counts as country-less.
                None if self.set.countries.len() >= NO_COUNTRY as usize => NO_COUNTRY,
                None => {
                    let k = self.set.countries.len() as u16;
                    self.countries.insert(c.clone(), k);
                    self.set.countries.push(c.clone());
                    k
                }
            },
        };
        self.set.rows.push(TrainingRow {
            profile,
            title,
            affinity,
            country,
            at,
        });
    }

    pub fn finish(mut self) -> TrainingSet {
        self.set.profiles = self.profiles.len();
        self.set.rows.shrink_to_fit();
        self.set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventAction;

    #[test]
    fn streamed_imported_interactions_teach_what_their_watch_state_does() {
        let title = TitleId::parse("7").unwrap();
        let mut memo = ImportedSignals::default();
        let ratings = [None, Some(5.0), Some(2.0), Some(3.5), Some(5.0), None];
        for (n, stars) in ratings.into_iter().enumerate() {
            let rating = stars.map(|s| StarRating::new(s).unwrap());
            let at = 1_000 * n as Millis;
            let mut state = WatchState::new(title.clone());
            state.apply(imported_event(rating), at);
            assert_eq!(
                memo.get(&title, rating, at),
                TrainingSignal::of(&state),
                "{stars:?}"
            );
        }
    }

    #[test]
    fn a_turned_down_title_teaches_nothing() {
        let mut state = WatchState::new(TitleId::parse("1").unwrap());
        state.apply(EventAction::Complete, 10);
        assert!(TrainingSignal::of(&state).is_some());
        state.apply(EventAction::ThumbsDown, 20);
        assert_eq!(TrainingSignal::of(&state), None);
    }
}
