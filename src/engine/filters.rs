//! What a profile may never be shown. These rules are policy, not tuning: no row definition
//! can switch them off, except `show_watched` for rows that exist to show watched titles.

use std::fmt;

use crate::domain::{Country, MaturityRating, Profile, Title};
use crate::engine::history::{History, Thumbs};

/// Kids profiles without an explicit limit get this one.
pub const DEFAULT_KIDS_LIMIT: MaturityRating = MaturityRating::Pg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// Completed or rated already.
    Watched,
    ThumbedDown,
    NotInCountry,
    AboveMaturityLimit,
    /// Kids profiles see unrated titles only when they are made for children.
    UnratedForKids,
}

/// The highest limit a kids profile may be given: above it, it would not be a kids profile.
pub const KIDS_MAX_LIMIT: MaturityRating = MaturityRating::Pg;

/// Whether a profile may be created with `limit`: a kids profile at most `KIDS_MAX_LIMIT`.
pub fn check_maturity_limit(
    is_kids: bool,
    limit: Option<MaturityRating>,
) -> Result<(), crate::domain::ParseError> {
    match limit {
        Some(l) if is_kids && l > KIDS_MAX_LIMIT => Err(crate::domain::ParseError(format!(
            "a kids profile's limit is at most {KIDS_MAX_LIMIT}, got {l}"
        ))),
        _ => Ok(()),
    }
}

/// The effective maturity limit of a profile.
pub fn maturity_limit(profile: &Profile) -> Option<MaturityRating> {
    match (profile.maturity_limit, profile.is_kids) {
        (Some(limit), _) => Some(limit),
        (None, true) => Some(DEFAULT_KIDS_LIMIT),
        (None, false) => None,
    }
}

/// Everything `suitable` reads of a profile, and nothing else: profiles of one audience may
/// see exactly the same titles. Shared (segment) lists are made and keyed per audience
/// (`engine::segments`), so a list made for one audience can never reach another — a kids
/// profile never gets a list made for a higher limit, or for grown-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Audience<'a> {
    pub country: Option<&'a Country>,
    /// The effective limit (`maturity_limit`).
    pub limit: Option<MaturityRating>,
    pub kids: bool,
}

impl<'a> Audience<'a> {
    pub fn of(profile: &'a Profile) -> Self {
        Self {
            country: profile.country.as_ref(),
            limit: maturity_limit(profile),
            kids: profile.is_kids,
        }
    }
}

/// The text a segment key carries: `US/PG/kids`, `*/none/all` (no country).
impl fmt::Display for Audience<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.country.map_or("*", |c| c.as_str()),
            self.limit.map_or("none", |l| l.as_str()),
            if self.kids { "kids" } else { "all" }
        )
    }
}

/// Rules that depend only on the profile and the title, not on history.
pub fn suitable(profile: &Profile, title: &Title) -> Result<(), Hidden> {
    suitable_for(Audience::of(profile), title)
}

/// `suitable` for every profile of `audience`.
pub fn suitable_for(audience: Audience<'_>, title: &Title) -> Result<(), Hidden> {
    if !title.available_in(audience.country) {
        return Err(Hidden::NotInCountry);
    }
    if let (Some(limit), Some(rating)) = (audience.limit, title.maturity)
        && rating > limit
    {
        return Err(Hidden::AboveMaturityLimit);
    }
    if audience.kids && title.maturity.is_none() && !title.is_for_children() {
        return Err(Hidden::UnratedForKids);
    }
    Ok(())
}

/// Every rule, for a title about to be placed on a page.
pub fn allowed(
    profile: &Profile,
    history: &History,
    title: &Title,
    show_watched: bool,
) -> Result<(), Hidden> {
    suitable(profile, title)?;
    if let Some(state) = history.get(&title.id) {
        if state.thumbs == Thumbs::Down {
            return Err(Hidden::ThumbedDown);
        }
        if state.is_watched() && !show_watched {
            return Err(Hidden::Watched);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Country, EventAction, ProfileId, TitleId};
    use crate::engine::history::WatchState;

    fn title(rating: Option<MaturityRating>, genres: &[&str]) -> Title {
        Title {
            genres: genres.iter().map(|g| g.to_string()).collect(),
            maturity: rating,
            ..Title::new(TitleId::parse("1").unwrap(), "x")
        }
    }

    fn profile(kids: bool) -> Profile {
        Profile {
            id: ProfileId::parse("p").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "p".into(),
            is_kids: kids,
            maturity_limit: None,
            country: Some(Country::parse("US").unwrap()),
            onboarding_genres: vec![],
        }
    }

    #[test]
    fn kids_rules() {
        let kid = profile(true);
        assert_eq!(
            suitable(&kid, &title(Some(MaturityRating::R), &["Animation"])),
            Err(Hidden::AboveMaturityLimit)
        );
        assert_eq!(
            suitable(&kid, &title(Some(MaturityRating::G), &["Drama"])),
            Ok(())
        );
        assert_eq!(
            suitable(&kid, &title(None, &["Drama"])),
            Err(Hidden::UnratedForKids)
        );
        assert_eq!(suitable(&kid, &title(None, &["Children's"])), Ok(()));
        assert_eq!(suitable(&profile(false), &title(None, &["Drama"])), Ok(()));
    }

    #[test]
    fn region_and_history_rules() {
        let mut t = title(None, &["Drama"]);
        t.countries = Some(vec![Country::parse("DE").unwrap()]);
        assert_eq!(suitable(&profile(false), &t), Err(Hidden::NotInCountry));

        let t = title(None, &["Drama"]);
        let mut s = WatchState::new(t.id.clone());
        s.apply(EventAction::Complete, 1);
        let h = History::new([s.clone()]);
        assert_eq!(
            allowed(&profile(false), &h, &t, false),
            Err(Hidden::Watched)
        );
        assert_eq!(allowed(&profile(false), &h, &t, true), Ok(()));
        s.apply(EventAction::ThumbsDown, 2);
        let h = History::new([s]);
        assert_eq!(
            allowed(&profile(false), &h, &t, true),
            Err(Hidden::ThumbedDown)
        );
    }
}
