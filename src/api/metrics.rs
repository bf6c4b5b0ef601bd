//! GraphQL request metrics: an async-graphql extension that times every request and labels it
//! by operation — its type and root fields (`query home`, `mutation recordEvents`), never the
//! client's free-text operation name, so the label set stays bounded by the schema. Requests
//! that never reach execution (syntax or validation errors) are labelled `invalid`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use async_graphql::{Request, Response, ServerResult, Variables};

use crate::telemetry;

/// Root fields named in a label, at most; more become `…`.
const MAX_LABEL_FIELDS: usize = 4;

/// Registered on the schema (`graphql::build_schema`).
pub struct GraphqlMetrics;

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestMetrics::default())
    }
}

#[derive(Default)]
struct Seen {
    operation_name: Option<String>,
    label: Option<String>,
    executed: bool,
}

#[derive(Default)]
struct RequestMetrics {
    seen: Mutex<Seen>,
}

impl RequestMetrics {
    fn with<R>(&self, f: impl FnOnce(&mut Seen) -> R) -> Option<R> {
        self.seen.lock().ok().map(|mut s| f(&mut s))
    }
}

#[async_trait::async_trait]
impl Extension for RequestMetrics {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let took = started.elapsed();
        let label = self
            .with(|s| s.label.take().filter(|_| s.executed))
            .flatten();
        telemetry::record_graphql(
            label.as_deref().unwrap_or("invalid"),
            response.errors.is_empty(),
            took,
        );
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let name = request.operation_name.clone();
        self.with(|s| s.operation_name = name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        self.with(|s| s.label = operation_label(&document, s.operation_name.as_deref()));
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // Only validated documents execute: their root fields are the schema's.
        self.with(|s| s.executed = true);
        next.run(ctx, operation_name).await
    }
}

/// `query home`, `query profiles,titles`, `mutation recordEvents`: the operation's type and
/// its root fields, sorted.
fn operation_label(document: &ExecutableDocument, name: Option<&str>) -> Option<String> {
    let op = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let mut fields: Vec<&str> = op
        .node
        .selection_set
        .node
        .items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => f.node.name.node.as_str(),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => "…",
        })
        .collect();
    fields.sort_unstable();
    fields.dedup();
    if fields.len() > MAX_LABEL_FIELDS {
        fields.truncate(MAX_LABEL_FIELDS);
        fields.push("…");
    }
    Some(format!("{} {}", op.node.ty, fields.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(query: &str, name: Option<&str>) -> Option<String> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        operation_label(&doc, name)
    }

    #[test]
    fn labels_by_type_and_root_fields() {
        assert_eq!(
            label("{ home(profileId: 1) { requestId } }", None).as_deref(),
            Some("query home")
        );
        assert_eq!(
            label(
                "query A { titles { id } profiles { id } titles { name } }",
                None
            )
            .as_deref(),
            Some("query profiles,titles")
        );
        assert_eq!(
            label(
                "query A { titles { id } } mutation B { recordEvents { accepted } }",
                Some("B")
            )
            .as_deref(),
            Some("mutation recordEvents")
        );
        assert_eq!(label("query A { a } query B { b }", None), None);
        assert_eq!(
            label("{ a b c d e f }", None).as_deref(),
            Some("query a,b,c,d,…")
        );
    }
}
