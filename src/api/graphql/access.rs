//! Who may call each root field. Every field of `Query` and `Mutation` has a rule in `RULES`;
//! the `AccessRules` extension enforces it before the resolver runs, and a field without a
//! rule is refused — so a new field is closed until someone decides who may call it
//! (`tests/auth.rs` walks the schema by introspection and fails on a field without a rule).
//! Nested fields are reachable only through a root field, so the root's rule covers them.
//!
//! A rule is about roles. Which *profile* a caller may use is the app layer's decision
//! (`AppState::owned_profile`), taken by the resolvers that name one.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};

use crate::auth::{Caller, Role};

/// Who may call a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (the catalogue without a profile).
    Public,
    /// Any signed-in caller; profile-scoped fields check ownership on top.
    Viewer,
    /// Product managers (and admins).
    Pm,
    /// Admins.
    Admin,
}

impl Access {
    pub fn allows(self, caller: Option<&Caller>) -> bool {
        match (self, caller) {
            (Access::Public, _) => true,
            (_, None) => false,
            (Access::Viewer, Some(_)) => true,
            (Access::Pm, Some(c)) => c.has(Role::Pm),
            (Access::Admin, Some(c)) => c.has(Role::Admin),
        }
    }
}

/// (type, field, rule) for every root field.
pub const RULES: &[(&str, &str, Access)] = &[
    ("Query", "home", Access::Viewer),
    ("Query", "previewHome", Access::Pm),
    ("Query", "me", Access::Viewer),
    ("Query", "profiles", Access::Viewer),
    ("Query", "profile", Access::Viewer),
    ("Query", "viewerState", Access::Viewer),
    ("Query", "title", Access::Public),
    ("Query", "search", Access::Public),
    ("Query", "browse", Access::Public),
    ("Query", "genres", Access::Public),
    ("Query", "similar", Access::Public),
    ("Query", "experiments", Access::Pm),
    ("Query", "experimentReport", Access::Pm),
    ("Query", "experimentPlan", Access::Pm),
    ("Query", "experimentHistory", Access::Pm),
    ("Query", "features", Access::Pm),
    ("Query", "validateFeature", Access::Pm),
    ("Query", "previewAudit", Access::Admin),
    ("Query", "models", Access::Admin),
    ("Query", "adminJob", Access::Admin),
    ("Mutation", "createProfile", Access::Viewer),
    ("Mutation", "renameProfile", Access::Viewer),
    ("Mutation", "removeProfile", Access::Viewer),
    ("Mutation", "selectProfile", Access::Viewer),
    ("Mutation", "recordEvents", Access::Viewer),
    ("Mutation", "saveFeature", Access::Pm),
    ("Mutation", "launchExperiment", Access::Pm),
    ("Mutation", "stopExperiment", Access::Pm),
    ("Mutation", "startExperimentPhase", Access::Pm),
    ("Mutation", "chooseWinner", Access::Pm),
    ("Mutation", "activateModel", Access::Admin),
    ("Mutation", "rollbackModel", Access::Admin),
    ("Mutation", "trainModel", Access::Admin),
    ("Mutation", "importMovieLens", Access::Admin),
];

pub fn rule(parent: &str, field: &str) -> Option<Access> {
    RULES
        .iter()
        .find(|(t, f, _)| *t == parent && *f == field)
        .map(|(_, _, a)| *a)
}

/// The extension that enforces `RULES`.
pub struct AccessRules;

impl ExtensionFactory for AccessRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AccessRulesExtension)
    }
}

struct AccessRulesExtension;

fn refused(code: &'static str, message: String, info: &ResolveInfo<'_>) -> ServerError {
    let mut e = ServerError::new(message, None);
    e.path = vec![async_graphql::PathSegment::Field(
        info.alias.unwrap_or(info.name).to_owned(),
    )];
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

#[async_graphql::async_trait::async_trait]
impl Extension for AccessRulesExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root = matches!(info.parent_type, "Query" | "Mutation" | "Subscription");
        // Introspection (`__schema`, `__type`, `__typename`) is not a resolver of ours; whether
        // it is offered at all is a schema setting.
        let introspection = info.is_for_introspection || info.name.starts_with("__");
        if root && !introspection {
            let caller = ctx.data_opt::<Caller>();
            match rule(info.parent_type, info.name) {
                None => {
                    return Err(refused(
                        "FORBIDDEN",
                        format!("{}.{} has no access rule", info.parent_type, info.name),
                        &info,
                    ));
                }
                Some(a) if !a.allows(caller) => {
                    return Err(match caller {
                        None => refused(
                            "UNAUTHENTICATED",
                            format!("{} needs a signed-in caller", info.name),
                            &info,
                        ),
                        Some(_) => refused(
                            "FORBIDDEN",
                            format!("{} needs the {:?} role", info.name, a).to_lowercase(),
                            &info,
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        next.run(ctx, info).await
    }
}
