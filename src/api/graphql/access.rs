//! Who may call each root field. Every field of `Query` and `Mutation` has a rule in `RULES`;
//! the roots are wrapped in `Guarded`, which enforces it before the resolver runs, and a field
//! without a rule is refused — so a new field is closed until someone decides who may call it
//! (`tests/auth.rs` walks the schema by introspection and fails on a field without a rule).
//! Nested fields are reachable only through a root field, so the root's rule covers them.
//!
//! A rule is about roles. Which *profile* a caller may use is the app layer's decision
//! (`AppState::owned_profile`), taken by the resolvers that name one.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{
    Context, ContextSelectionSet, ObjectType, OutputType, Positioned, ServerError, ServerResult,
    Value,
};

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

/// A root (`Query` or `Mutation`) whose fields run only for callers `RULES` allows.
///
/// The check sits in the root's own `resolve_field`, not in a schema extension: with any
/// extension installed, async-graphql sends *every* field of a response (each title of every
/// row, each of its fields) through the extension chain — a registry lookup and a boxed future
/// per extension per field, about a fifth of a home page's CPU — while only root fields have
/// rules. A refused root field is an error at its own path, and the operation's other root
/// fields still run. Introspection (`__schema`, `__type`,
/// `__typename`) never reaches a root's `resolve_field`; whether it is offered at all is a
/// schema setting.
pub struct Guarded<T>(pub T);

impl<T: ContainerType> OutputType for Guarded<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl<T: ContainerType> ContainerType for Guarded<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        let parent = T::type_name();
        let field = ctx.item.node.name.node.as_str();
        let caller = ctx.data_opt::<Caller>();
        let refused = |code: &'static str, message: String| {
            let mut e = ServerError::new(message, Some(ctx.item.pos));
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", code);
            e.extensions = Some(ext);
            Err(ctx.set_error_path(e))
        };
        match rule(&parent, field) {
            None => refused("FORBIDDEN", format!("{parent}.{field} has no access rule")),
            Some(a) if !a.allows(caller) => match caller {
                None => refused(
                    "UNAUTHENTICATED",
                    format!("{field} needs a signed-in caller"),
                ),
                Some(_) => refused(
                    "FORBIDDEN",
                    format!("{field} needs the {a:?} role").to_lowercase(),
                ),
            },
            Some(_) => self.0.resolve_field(ctx).await,
        }
    }
}

impl<T: ObjectType> ObjectType for Guarded<T> {}
