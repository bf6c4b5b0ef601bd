//! What training reads: one compact row per (profile, title) interaction, with profiles and
//! countries interned. At 50M interactions a row of owned ids would cost several gigabytes;
//! this one is 24 bytes.

use std::collections::HashMap;

use crate::domain::{Country, Millis, ProfileId, TitleId};
use crate::engine::catalog::{Catalog, TitleIdx};

/// One profile's relation to one title, in owned ids: how tests and the offline evaluation
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
                b.push(i.profile.as_str(), t, i.affinity, i.at, i.country.as_ref());
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

    pub fn country(&self, row: &TrainingRow) -> Option<&Country> {
        self.countries.get(row.country as usize)
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
    pub fn push(
        &mut self,
        profile: &str,
        title: TitleIdx,
        affinity: f32,
        at: Millis,
        country: Option<&Country>,
    ) {
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
