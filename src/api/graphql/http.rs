//! GraphQL over HTTP, and the codes of errors that stop a request before any resolver runs.
//!
//! Every error a client sees carries `extensions.code` (the usual GraphQL server
//! conventions):
//! - a body that is not a GraphQL request (not JSON, wrong shape, too large, too many
//!   operations in a batch): HTTP 400 or 413 with a JSON body, `BAD_REQUEST` or
//!   `PAYLOAD_TOO_LARGE`;
//! - a query that does not parse: `GRAPHQL_PARSE_FAILED`;
//! - a query that does not validate against the schema, or exceeds the depth or complexity
//!   limit: `GRAPHQL_VALIDATION_FAILED`;
//! - variables or arguments of the wrong type: `BAD_USER_INPUT`;
//! - resolvers' own codes (`NOT_FOUND`, `BAD_USER_INPUT`, `FORBIDDEN_TITLE`, `UNAVAILABLE`,
//!   `INTERNAL`; `graphql/mod.rs`).

use std::sync::Arc;
use std::time::Instant;

use async_graphql::{BatchRequest, Response, ServerError};
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde_json::json;
use tracing::Instrument as _;

use super::MarqueeSchema;
use super::bounds::{MAX_BATCH, MAX_BODY_BYTES};
use super::persisted::{KnownQuery, PersistedQueries};
use crate::api::metrics;
use crate::app::AppState;
use crate::auth::Caller;
use crate::telemetry;

/// `POST /graphql`: a request or a batch of at most `MAX_BATCH`, as JSON, run for `caller`
/// (put into the request's data, where the access rules and the resolvers find it).
pub async fn post(
    app: &AppState,
    schema: &MarqueeSchema,
    persisted: &PersistedQueries,
    caller: Option<Caller>,
    body: Body,
) -> HttpResponse {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
    };
    let request: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!(
                    "the body is not a GraphQL request (JSON with `query` and optional \
                     `variables` and `operationName`, or a list of them): {e}"
                ),
            );
        }
    };
    if let BatchRequest::Batch(list) = &request
        && list.len() > MAX_BATCH
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!(
                "at most {MAX_BATCH} operations per batch, got {}",
                list.len()
            ),
        );
    }
    let request = match caller {
        Some(caller) => request.data(caller),
        None => request,
    };
    execute(app, schema, persisted, request).await
}

/// One operation's answer: a response from the executor, or a home page written directly
/// (`direct`) as its JSON body.
enum Answer {
    Executed(Response),
    Direct(String),
}

impl Answer {
    fn into_json(self) -> String {
        match self {
            Answer::Direct(body) => body,
            Answer::Executed(response) => serde_json::to_string(&response).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot serialize a GraphQL response");
                json!({"errors": [{"message": "internal error", "extensions": {"code": "INTERNAL"}}]})
                    .to_string()
            }),
        }
    }
}

/// Runs one operation: its persisted query resolved (`persisted`), admitted, then answered
/// in `span` — directly when its document has a home plan and the plan takes the request,
/// by the executor otherwise. The operation's label and whether it succeeded.
async fn run_one(
    app: &AppState,
    schema: &MarqueeSchema,
    persisted: &PersistedQueries,
    request: async_graphql::Request,
    span: &tracing::Span,
) -> (Answer, (String, bool)) {
    let mut r = match persisted.resolve(request).await {
        Ok(r) => r,
        Err(e) => {
            let response = Response::from_errors(vec![e]);
            return (Answer::Executed(response), ("invalid".to_owned(), false));
        }
    };
    let op = metrics::operation_label(&r.query, r.operation_name.as_deref());
    let known = match admit(persisted, &mut r).await {
        Ok(known) => known,
        Err(e) => {
            let response = Response::from_errors(vec![bounded_message(e)]);
            return (Answer::Executed(response), (op, false));
        }
    };
    if let Some(plan) = known.plan()
        && let Some(body) = plan.answer(app, &r).instrument(span.clone()).await
    {
        telemetry::record_direct_answer();
        return (Answer::Direct(body), (op, true));
    }
    r.set_parsed_query(known.doc.clone());
    let response = coded(schema.execute(r).instrument(span.clone()).await);
    let ok = response.errors.is_empty();
    if ok {
        known.answered_cleanly();
    }
    (Answer::Executed(response), (op, ok))
}

/// Runs a request (or batch) in its own span with a request number, timed per operation, and
/// its JSON encoding timed (the `serialization` stage). A batch runs its operations one after
/// the other, as async-graphql's `execute_batch` does.
async fn execute(
    app: &AppState,
    schema: &MarqueeSchema,
    persisted: &PersistedQueries,
    request: BatchRequest,
) -> HttpResponse {
    // A number, not a formatted id: the span is created for every request at the default
    // log level, and formatting an id string for it cost more than the page's dedupe.
    let span = tracing::info_span!("graphql", request = app.next_request_number());
    let started = Instant::now();
    let batched = matches!(request, BatchRequest::Batch(_));
    let (answers, operations) = match request {
        BatchRequest::Single(r) => {
            let (answer, op) = run_one(app, schema, persisted, r, &span).await;
            (vec![answer], vec![op])
        }
        BatchRequest::Batch(rs) => {
            let mut answers = Vec::with_capacity(rs.len());
            let mut ops = Vec::with_capacity(rs.len());
            for r in rs {
                let (answer, op) = run_one(app, schema, persisted, r, &span).await;
                answers.push(answer);
                ops.push(op);
            }
            (answers, ops)
        }
    };
    let executed = started.elapsed();
    for (op, ok) in &operations {
        telemetry::record_graphql(op, *ok, executed);
    }
    // A home page answered directly was encoded as it was answered, and timed there.
    let encodes = answers.iter().any(|a| matches!(a, Answer::Executed(_)));
    let started = Instant::now();
    let bodies = answers.into_iter().map(Answer::into_json);
    let body = if batched {
        format!("[{}]", bodies.collect::<Vec<_>>().join(","))
    } else {
        bodies.collect()
    };
    let took = started.elapsed();
    if encodes {
        telemetry::record_stage(telemetry::Stage::Serialization, took);
    }
    span.in_scope(|| {
        tracing::debug!(
            serialization_us = took.as_micros() as u64,
            "response encoded"
        )
    });
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A GraphQL-shaped error body for a request that never reached GraphQL.
/// 429 with `Retry-After` (whole seconds, at least 1) and a `RATE_LIMITED` error.
pub fn rate_limited(wait: std::time::Duration) -> HttpResponse {
    let mut response = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "too many requests; retry after the time in Retry-After",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}

/// 503 `TIMEOUT`: the request ran longer than `--request-timeout-ms`.
pub fn timed_out(limit: std::time::Duration) -> HttpResponse {
    tracing::warn!(limit_ms = limit.as_millis(), "request timed out");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT",
        &format!(
            "the request took longer than {} ms; retry, or ask for less",
            limit.as_millis()
        ),
    )
}

pub fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"message": message, "extensions": {"code": code}}]}).to_string(),
    )
        .into_response()
}

/// Longest error message a client gets back, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// An error whose message is cut to `MAX_MESSAGE_CHARS`: async-graphql's own messages quote
/// the offending value whole ("Expected input type \"Int\", found {…}"), and an error must
/// not echo a large input back.
fn bounded_message(mut e: ServerError) -> ServerError {
    if let Some((cut, _)) = e.message.char_indices().nth(MAX_MESSAGE_CHARS) {
        e.message.truncate(cut);
        e.message.push('…');
    }
    e
}

fn has_code(e: &ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

fn with_code(mut e: ServerError, code: &str) -> ServerError {
    if !has_code(&e) {
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    e
}

/// Validation errors about values (a variable or argument of the wrong type or missing) are
/// the client's input; the rest are queries that do not fit the schema or its limits.
fn validation_code(e: &ServerError) -> &'static str {
    let m = e.message.as_str();
    if m.starts_with("Invalid value for argument")
        || (m.starts_with("Variable \"") && !m.contains("is not used"))
        // A declared variable without a value, met while a list field's cost is computed
        // from its `first` (the rule for undeclared variables quotes the name: `"$f"`).
        || (m.starts_with("Variable ") && m.ends_with(" is not defined."))
    {
        "BAD_USER_INPUT"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    }
}

/// What must hold before a request is answered: its query parses (`GRAPHQL_PARSE_FAILED`)
/// and keeps within the shape limits (`shape`, `GRAPHQL_VALIDATION_FAILED`). The parsed
/// document is kept for the next request with the same text (`PersistedQueries::known`), and
/// handed to the executor from there, so it is not parsed again. Done here rather than in a
/// schema extension, which would cost every field of every response (see `access::Guarded`).
async fn admit(
    persisted: &PersistedQueries,
    request: &mut async_graphql::Request,
) -> Result<Arc<KnownQuery>, ServerError> {
    if let Some(known) = persisted.known(&request.query).await {
        return Ok(known);
    }
    let doc = request
        .parsed_query()
        .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
    super::shape::check(doc).map_err(|message| {
        with_code(ServerError::new(message, None), "GRAPHQL_VALIDATION_FAILED")
    })?;
    let doc = doc.clone();
    Ok(persisted.keep_parsed(request.query.clone(), doc).await)
}

/// Gives a code to every error of a response that has none (resolvers code their own) and
/// bounds its message. An error with a path comes from a field whose arguments failed to
/// convert: the client's input. One without a path was raised before any resolver ran, by
/// async-graphql's checks of the parsed document (its nesting depth, `GRAPHQL_PARSE_FAILED`
/// as for the parser's other limits), by validation and the depth and complexity limits, or
/// by choosing the operation to run (`operationName`).
fn coded(mut response: Response) -> Response {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(bounded_message)
        .map(|e| {
            if has_code(&e) {
                return e;
            }
            let code = if !e.path.is_empty() {
                "BAD_USER_INPUT"
            } else if e.message.starts_with("The recursion depth of the query") {
                "GRAPHQL_PARSE_FAILED"
            } else {
                validation_code(&e)
            };
            with_code(e, code)
        })
        .collect();
    response
}
