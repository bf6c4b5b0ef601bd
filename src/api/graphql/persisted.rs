//! Automatic persisted queries (Apollo's protocol, version 1), for TV clients on slow links:
//! the client sends `extensions.persistedQuery.sha256Hash` without the query; the server
//! answers `PERSISTED_QUERY_NOT_FOUND` until the client has sent the hash with the query once,
//! and runs the stored query for the hash alone afterwards.
//!
//! Not async-graphql's `ApolloPersistedQueries` extension: it hands the stored *parsed*
//! document to the executor, which then skips the `parse_query` hooks — and with them the
//! field and alias limits of `shape` (a fragment bomb registered once would run from its hash
//! without being counted). Here the query *text* is stored and filled into the request
//! before it reaches the schema, so a persisted query goes through exactly the same parse,
//! shape, validation and cost limits as any other. The hash is checked against the text
//! (SHA-256, aws-lc-rs), so nobody can store another query under a hash clients will send.
//! The store is bounded by bytes (`MAX_BYTES`, least recently used out first).
//!
//! Beside it, the parsed documents of recent query texts (`known`): clients send the same few
//! queries again and again, and parsing the home query (pest) cost 0.19 M instructions of a
//! page's 3.5 M; finding its document by text and cloning it costs about 0.03 M. With a
//! document the executor has answered without errors goes its `HomePlan` (`direct`), once
//! compiled.

use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, Value};

use super::direct::HomePlan;

/// Bytes of query text kept (keys included).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Parsed documents kept, weighed as `PARSED_WEIGHT` × the bytes of their query text (a parsed
/// document is several times larger than its text).
pub const MAX_PARSED_BYTES: u64 = 32 * 1024 * 1024;
const PARSED_WEIGHT: usize = 16;

/// Query texts by their SHA-256 (lower-case hex), and parsed documents by query text.
#[derive(Clone)]
pub struct PersistedQueries {
    cache: moka::future::Cache<String, String>,
    /// Only documents that passed the shape limits (`http::admit`) are kept.
    parsed: moka::future::Cache<String, Arc<KnownQuery>>,
}

/// A query text's parsed document, admitted by `http::admit`.
pub struct KnownQuery {
    pub doc: ExecutableDocument,
    /// Set once the executor has answered the document without any error: its plan, or
    /// `None` when the executor must answer it every time.
    plan: OnceLock<Option<HomePlan>>,
}

impl KnownQuery {
    /// The plan of a document the executor has answered without errors.
    pub fn plan(&self) -> Option<&HomePlan> {
        self.plan.get()?.as_ref()
    }

    /// Notes that the executor answered the document without any error (so it is valid and
    /// within every limit), and compiles its plan the first time.
    pub fn answered_cleanly(&self) {
        self.plan.get_or_init(|| HomePlan::compile(&self.doc));
    }
}

impl Default for PersistedQueries {
    fn default() -> Self {
        Self::new()
    }
}

impl PersistedQueries {
    pub fn new() -> Self {
        PersistedQueries {
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|k: &String, v: &String| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build(),
            parsed: moka::future::Cache::builder()
                .max_capacity(MAX_PARSED_BYTES)
                .weigher(|k: &String, _: &Arc<KnownQuery>| {
                    u32::try_from(k.len().saturating_mul(PARSED_WEIGHT)).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The parsed document of `query`, if it was parsed (and admitted) recently.
    pub async fn known(&self, query: &str) -> Option<Arc<KnownQuery>> {
        self.parsed.get(query).await
    }

    /// Keeps `doc`, parsed from `query` and admitted.
    pub async fn keep_parsed(&self, query: String, doc: ExecutableDocument) -> Arc<KnownQuery> {
        let known = Arc::new(KnownQuery {
            doc,
            plan: OnceLock::new(),
        });
        self.parsed.insert(query, known.clone()).await;
        known
    }

    /// The request with its persisted query resolved: unchanged without the extension; the
    /// stored text filled in for a hash alone; the text stored when it comes with its hash.
    /// `Err` is the GraphQL error to answer with (coded).
    pub async fn resolve(&self, mut request: Request) -> Result<Request, ServerError> {
        let Some(ext) = request.extensions.remove("persistedQuery") else {
            return Ok(request);
        };
        let (version, hash) = parse_extension(&ext)
            .ok_or_else(|| coded("BAD_USER_INPUT", "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}"))?;
        if version != 1 {
            return Err(coded(
                "PERSISTED_QUERY_NOT_SUPPORTED",
                "only version 1 of persisted queries is supported",
            ));
        }
        if request.query.is_empty() {
            return match self.cache.get(&hash).await {
                Some(query) => {
                    request.query = query;
                    Ok(request)
                }
                None => Err(coded("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")),
            };
        }
        if sha256_hex(&request.query) != hash {
            return Err(coded(
                "BAD_USER_INPUT",
                "persistedQuery.sha256Hash is not the SHA-256 of the query",
            ));
        }
        self.cache.insert(hash, request.query.clone()).await;
        Ok(request)
    }
}

fn parse_extension(ext: &Value) -> Option<(i64, String)> {
    let Value::Object(fields) = ext else {
        return None;
    };
    let version = match fields.get("version")? {
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    let hash = match fields.get("sha256Hash")? {
        Value::String(s) => s.to_ascii_lowercase(),
        _ => return None,
    };
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some((version, hash))
}

pub fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn coded(code: &str, message: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ext(query: &str, hash: &str) -> Request {
        let mut r = Request::new(query);
        r.extensions.insert(
            "persistedQuery".into(),
            Value::from_json(serde_json::json!({"version": 1, "sha256Hash": hash})).unwrap(),
        );
        r
    }

    #[tokio::test]
    async fn hash_then_query_then_hash() {
        let store = PersistedQueries::new();
        let q = "{ __typename }";
        let h = sha256_hex(q);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = store.resolve(with_ext("", &h)).await.unwrap_err();
        assert_eq!(e.message, "PersistedQueryNotFound");
        assert!(store.resolve(with_ext(q, &"0".repeat(64))).await.is_err());
        assert_eq!(store.resolve(with_ext(q, &h)).await.unwrap().query, q);
        assert_eq!(store.resolve(with_ext("", &h)).await.unwrap().query, q);
        // Without the extension nothing changes.
        assert_eq!(store.resolve(Request::new(q)).await.unwrap().query, q);
    }
}
