//! The policy of a request: which profile's rules apply to it, and which titles they let a
//! response name. This is the one entry point every answer that names titles goes through —
//! home page rows (items, evidence, anchors and the row titles naming them), `title`,
//! `similar`, `search`, `browse` — and the check `recordEvents` makes. The rules themselves
//! (maturity limit, kids and unrated titles, region) are `engine::filters::suitable`; this
//! module decides only whose profile they are applied for.
//!
//! "The request's profile" is what the API hands to `AppState::policy` with the caller: the
//! `profileId` argument, which must be one of the caller's profiles, or — when the request
//! names none — the kids profile a locked session selected, which it cannot drop or swap.

use std::sync::Arc;

use super::{AppError, AppState};
use crate::auth::Caller;
use crate::domain::{Profile, ProfileId, Title, TitleId};
use crate::engine::Engine;
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters;
use crate::engine::page::Page;

/// The rules a request is answered under: those of its profile, or none for a request made
/// for no profile.
#[derive(Debug, Clone)]
pub struct Policy {
    profile: Option<Profile>,
}

impl Policy {
    /// The policy of `profile`.
    pub fn of(profile: Profile) -> Self {
        Policy {
            profile: Some(profile),
        }
    }

    /// A request made for no profile (a catalogue query without one): no profile rules.
    pub fn no_profile() -> Self {
        Policy { profile: None }
    }

    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// May a response to this request name `title` (show it, or mention it in a reason, an
    /// evidence list or a row title)?
    pub fn may_see(&self, title: &Title) -> bool {
        self.profile
            .as_ref()
            .is_none_or(|p| filters::suitable(p, title).is_ok())
    }

    /// `AppError::ForbiddenTitle` unless the request may name `title`.
    pub fn check(&self, title: &Title) -> Result<(), AppError> {
        if self.may_see(title) {
            Ok(())
        } else {
            Err(AppError::ForbiddenTitle(title.id.clone()))
        }
    }

    /// Removes from `page` everything that names a title this request may not see: items
    /// (by their title or their evidence) and rows (by their anchor, or when no item is left).
    /// Page assembly already applies the same rules, so this removes nothing unless a source
    /// misbehaves — it is the last check before a page leaves the service, and a removal is
    /// logged as the defect it is. Returns how many items and rows were removed.
    pub fn screen(&self, catalog: &Catalog, page: &mut Page) -> usize {
        let ok = |t: &TitleIdx| self.may_see(catalog.title(*t));
        let mut removed = 0;
        page.rows.retain_mut(|row| {
            if !row.anchor.iter().all(ok) {
                removed += 1;
                return false;
            }
            let before = row.items.len();
            row.items
                .retain(|item| ok(&item.title) && item.evidence.iter().all(ok));
            removed += before - row.items.len();
            if row.items.is_empty() {
                removed += 1;
                return false;
            }
            true
        });
        if removed > 0 {
            tracing::error!(
                removed,
                "page named titles its profile may not see; removed before serving"
            );
        }
        removed
    }
}

impl AppState {
    /// The policy that applies to `caller`'s request made for `request_profile` (see the
    /// module comment): that profile's, when the caller may use it (`owned_profile`:
    /// `ProfileNotFound` for a missing profile and for another account's); without one, the
    /// kids profile a locked session selected — a kids session cannot drop the argument to
    /// escape its rules — or no profile rules.
    pub async fn policy(
        &self,
        caller: &Caller,
        request_profile: Option<&ProfileId>,
    ) -> Result<Policy, AppError> {
        match request_profile.or(caller.policy_profile()) {
            None => Ok(Policy::no_profile()),
            Some(id) => Ok(Policy::of(self.owned_profile(caller, id).await?)),
        }
    }

    /// The title `id`: `None` when there is none, `AppError::ForbiddenTitle` when the request
    /// may not see it.
    pub async fn title(
        &self,
        policy: &Policy,
        id: &TitleId,
    ) -> Result<Option<(Arc<Engine>, TitleIdx)>, AppError> {
        let engine = self.engine.load_full();
        let Some(idx) = engine.catalog.idx(id) else {
            return Ok(None);
        };
        policy.check(engine.catalog.title(idx))?;
        Ok(Some((engine, idx)))
    }

    /// More Like This for `id`, titles the request may not see left out (and, for a profile,
    /// titles it watched or thumbed down). `TitleNotFound` or `ForbiddenTitle` for the anchor.
    pub async fn similar(
        &self,
        policy: &Policy,
        id: &TitleId,
        first: usize,
    ) -> Result<(Arc<Engine>, Vec<TitleIdx>), AppError> {
        let engine = self.engine.load_full();
        let anchor = engine
            .catalog
            .by_id(id)
            .ok_or_else(|| AppError::TitleNotFound(id.clone()))?;
        policy.check(anchor)?;
        let history = match policy.profile() {
            Some(p) => Some(self.store.history(&p.id).await?),
            None => None,
        };
        let viewer = policy.profile().zip(history.as_ref());
        let list = engine
            .similar(id, first, viewer)
            .ok_or_else(|| AppError::TitleNotFound(id.clone()))?;
        let list = names_only_allowed(policy, &engine, list);
        Ok((engine, list))
    }

    /// Search results the request may see (see `Engine::search`).
    pub fn search(
        &self,
        policy: &Policy,
        query: &str,
        first: usize,
    ) -> (Arc<Engine>, Vec<TitleIdx>) {
        let engine = self.engine.load_full();
        let list = engine.search(query, first, policy.profile());
        let list = names_only_allowed(policy, &engine, list);
        (engine, list)
    }

    /// The catalogue (or a genre of it) as the request may see it, in browse order.
    pub fn browse(&self, policy: &Policy, genre: Option<&str>) -> (Arc<Engine>, Vec<TitleIdx>) {
        let engine = self.engine.load_full();
        let list = engine.browse(genre, policy.profile());
        let list = names_only_allowed(policy, &engine, list);
        (engine, list)
    }
}

/// The engine filtered already; the policy checks again what leaves the service, so that no
/// engine path can leak a title past it.
fn names_only_allowed(policy: &Policy, engine: &Engine, mut list: Vec<TitleIdx>) -> Vec<TitleIdx> {
    let before = list.len();
    list.retain(|t| policy.may_see(engine.catalog.title(*t)));
    if list.len() != before {
        tracing::error!(
            removed = before - list.len(),
            "catalogue answer named titles its profile may not see; removed"
        );
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, MaturityRating};
    use crate::engine::page::{PageItem, PageRow};

    fn title(id: &str, rating: MaturityRating) -> Title {
        Title {
            maturity: Some(rating),
            ..Title::new(TitleId::parse(id).unwrap(), id)
        }
    }

    fn kid() -> Profile {
        Profile {
            id: ProfileId::parse("k").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "k".into(),
            is_kids: true,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        }
    }

    fn item(title: TitleIdx, evidence: Vec<TitleIdx>) -> PageItem {
        PageItem {
            title,
            score: 1.0,
            reason: None,
            evidence,
            progress: None,
        }
    }

    fn row(id: &str, anchor: Option<TitleIdx>, items: Vec<PageItem>) -> PageRow {
        PageRow {
            id: id.into(),
            definition: id.into(),
            anchor,
            title: id.into(),
            model_version: "m".into(),
            items,
        }
    }

    #[test]
    fn screen_removes_everything_that_names_a_title_the_profile_may_not_see() {
        // 0 and 1 are G, 2 is R.
        let catalog = Catalog::new(vec![
            title("0", MaturityRating::G),
            title("1", MaturityRating::G),
            title("2", MaturityRating::R),
        ]);
        let mut page = Page {
            rows: vec![
                row("anchored-on-r", Some(2), vec![item(0, vec![2])]),
                row(
                    "mixed",
                    None,
                    vec![item(0, vec![]), item(2, vec![]), item(1, vec![2])],
                ),
                row("only-r", None, vec![item(2, vec![])]),
            ],
        };
        let policy = Policy::of(kid());
        assert_eq!(policy.screen(&catalog, &mut page), 5);
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].id, "mixed");
        assert_eq!(page.rows[0].items, vec![item(0, vec![])]);
        assert!(policy.check(catalog.title(2)).is_err());
        // A request made for no profile has no profile rules.
        assert!(Policy::no_profile().may_see(catalog.title(2)));
    }
}
