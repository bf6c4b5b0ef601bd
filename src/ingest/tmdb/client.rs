//! An HTTP client for TMDb that behaves: it keeps under TMDb's rate limit (a token bucket and
//! a cap on requests in flight), retries what is worth retrying (429 and 5xx, honouring
//! `Retry-After`; timeouts and dropped connections) with exponential backoff and jitter, gives
//! up on everything else at once, bounds every wait and every body, and never lets the API
//! key reach a log line or an error message.
//!
//! TMDb documents its limit as "somewhere in the 50 requests per second range", answered
//! with HTTP 429 beyond it; the default here is 40 per second with at most 8 requests in
//! flight. A 429 pauses every worker, not just the one that got it: the limit is per key, so
//! the other workers would only collect 429s of their own.

use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::TmdbId;
use super::response::{Configuration, ErrorBody, MovieDetails, SearchPage};
use crate::clock::Clock;
use crate::domain::Millis;
use crate::rng::SplitMix64;

pub const DEFAULT_BASE_URL: &str = "https://api.themoviedb.org/3";
/// Largest response body read (a blockbuster's full credits are a few hundred KB).
const MAX_BODY_BYTES: usize = 4 << 20;
/// Longest single wait, whatever `Retry-After` or the backoff say.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TmdbError {
    /// Bad settings; nothing was sent.
    #[error("{0}")]
    Config(String),
    /// 401: the key is wrong or revoked. Fatal for a run: every request would fail the same.
    #[error("TMDb refused the credentials (HTTP 401: {message}); check the API key")]
    Unauthorized { message: String },
    #[error("TMDb has no such resource (HTTP 404)")]
    NotFound,
    /// Other 4xx: a request TMDb will never accept as sent; not retried.
    #[error("TMDb refused the request (HTTP {status}: {message})")]
    Rejected { status: u16, message: String },
    #[error("still rate limited (HTTP 429) after {attempts} attempts")]
    RateLimited { attempts: u32 },
    #[error("TMDb server error (HTTP {status}) after {attempts} attempts")]
    Server { status: u16, attempts: u32 },
    #[error("no response within {timeout:?} after {attempts} attempts")]
    Timeout { timeout: Duration, attempts: u32 },
    #[error("connection failed after {attempts} attempts: {message}")]
    Connection { message: String, attempts: u32 },
    /// A 2xx whose body is not the documented shape (or not JSON at all).
    #[error("malformed response from {endpoint}: {message}")]
    Malformed { endpoint: String, message: String },
}

impl TmdbError {
    /// Errors after which no other request can succeed either: the run stops.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Unauthorized { .. } | Self::Config(_))
    }

    /// A short class for report counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "configuration",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound => "not found",
            Self::Rejected { .. } => "rejected",
            Self::RateLimited { .. } => "rate limited",
            Self::Server { .. } => "server error",
            Self::Timeout { .. } => "timeout",
            Self::Connection { .. } => "connection",
            Self::Malformed { .. } => "malformed response",
        }
    }
}

/// A string that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How requests are authenticated. TMDb accepts a v3 API key as the `api_key` query
/// parameter or a v4 read access token (a JWT) as a bearer header; either works for the
/// read-only v3 endpoints used here.
#[derive(Debug, Clone)]
pub enum Credential {
    ApiKey(Secret),
    ReadAccessToken(Secret),
}

impl Credential {
    /// Recognises the kind of credential by its shape. The value is never echoed back, not
    /// even in the error.
    pub fn parse(raw: &str) -> Result<Self, TmdbError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(TmdbError::Config("the API key is empty".into()));
        }
        if raw.len() > 2_000 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(TmdbError::Config(
                "the API key contains characters no TMDb key has (whitespace, control or non-ASCII)"
                    .into(),
            ));
        }
        let jwt = raw.split('.').count() == 3 && raw.len() > 60;
        Ok(if jwt {
            Self::ReadAccessToken(Secret(raw.to_owned()))
        } else {
            Self::ApiKey(Secret(raw.to_owned()))
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// API root, e.g. `https://api.themoviedb.org/3`; plain http only for loopback hosts (a
    /// local mirror or test server), so a key never crosses a network in clear text.
    pub base_url: String,
    pub credential: Credential,
    /// Token bucket refill rate, requests per second.
    pub rate_per_second: u32,
    /// Requests in flight at most (also the bucket's burst).
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// Whole request, connect to last body byte.
    pub request_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff step; each retry doubles it, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// What "now" is when a `Retry-After` names a date.
    pub clock: Clock,
}

impl ClientOptions {
    pub fn new(base_url: impl Into<String>, credential: Credential) -> Self {
        Self {
            base_url: base_url.into(),
            credential,
            rate_per_second: 40,
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            clock: Clock::System,
        }
    }
}

/// What the client did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// 5xx answers received.
    pub server_errors: u64,
    pub timeouts: u64,
    pub connection_errors: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    connection_errors: AtomicU64,
}

pub struct TmdbClient {
    http: reqwest::Client,
    base: Url,
    credential: Credential,
    limiter: DefaultDirectRateLimiter,
    in_flight: Semaphore,
    /// Set by a 429 (or a 503 with `Retry-After`): no request starts before it.
    paused_until: Mutex<Option<Instant>>,
    jitter: Mutex<SplitMix64>,
    options: ClientOptions,
    counters: Counters,
}

/// One failed attempt, before the retry decision.
enum Failure {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        message: String,
    },
    Timeout,
    Connection(String),
    /// The body passed `MAX_BODY_BYTES`: not what TMDb sends, and not worth asking again.
    TooLarge,
}

impl TmdbClient {
    pub fn new(options: ClientOptions) -> Result<Self, TmdbError> {
        let base = parse_base_url(&options.base_url)?;
        let rate = NonZeroU32::new(options.rate_per_second).ok_or_else(|| {
            TmdbError::Config("the rate limit must be at least 1 per second".into())
        })?;
        if options.concurrency == 0 || options.max_attempts == 0 {
            return Err(TmdbError::Config(
                "concurrency and attempts must be at least 1".into(),
            ));
        }
        let burst = NonZeroU32::new(
            u32::try_from(options.concurrency)
                .unwrap_or(u32::MAX)
                .min(rate.get()),
        )
        .unwrap_or(rate);
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // TMDb's API does not redirect; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("marquee/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                TmdbError::Config(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        // Jitter only has to differ between clients, not be unpredictable: the standard
        // library's hasher keys are random per process, and no clock is read.
        let seed = RandomState::new().hash_one(std::process::id());
        Ok(Self {
            http,
            base,
            credential: options.credential.clone(),
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            in_flight: Semaphore::new(options.concurrency),
            paused_until: Mutex::new(None),
            jitter: Mutex::new(SplitMix64(seed)),
            options,
            counters: Counters::default(),
        })
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            requests: get(&c.requests),
            retries: get(&c.retries),
            rate_limited: get(&c.rate_limited),
            server_errors: get(&c.server_errors),
            timeouts: get(&c.timeouts),
            connection_errors: get(&c.connection_errors),
        }
    }

    /// `GET /configuration`: the image base URL and sizes.
    pub async fn configuration(&self) -> Result<Configuration, TmdbError> {
        self.get("configuration", &[]).await
    }

    /// `GET /search/movie?query=…[&year=…]`, first page (TMDb's most relevant 20).
    pub async fn search_movie(
        &self,
        query: &str,
        year: Option<i32>,
    ) -> Result<SearchPage, TmdbError> {
        let mut params = vec![
            ("query", query.to_owned()),
            ("include_adult", "false".into()),
        ];
        if let Some(y) = year {
            params.push(("year", y.to_string()));
        }
        self.get("search/movie", &params).await
    }

    /// `GET /movie/{id}?append_to_response=credits,release_dates`: one request for details,
    /// credits and certifications.
    pub async fn movie_details(&self, id: TmdbId) -> Result<MovieDetails, TmdbError> {
        let details: MovieDetails = self
            .get(
                &format!("movie/{}", id.0),
                &[("append_to_response", "credits,release_dates".into())],
            )
            .await?;
        if details.id != id.0 {
            return Err(TmdbError::Malformed {
                endpoint: format!("movie/{}", id.0),
                message: format!("the response describes movie {}", details.id),
            });
        }
        Ok(details)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<T, TmdbError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| TmdbError::Config("the base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(endpoint.split('/'));
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in params {
                query.append_pair(k, v);
            }
            if let Credential::ApiKey(Secret(key)) = &self.credential {
                query.append_pair("api_key", key);
            }
        }
        // What logs and errors may say about the request: the endpoint and its public
        // parameters, never the URL (which may carry the key).
        let described = describe(endpoint, params);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(&url, &described, attempt).await {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|e| TmdbError::Malformed {
                        endpoint: endpoint.to_owned(),
                        message: e.to_string(),
                    });
                }
                Err(f) => f,
            };
            let retry_after = match &failure {
                Failure::Status {
                    status,
                    retry_after,
                    ..
                } if *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
                    *retry_after
                }
                Failure::Timeout | Failure::Connection(_) => None,
                Failure::Status { .. } | Failure::TooLarge => {
                    return Err(self.final_error(failure, attempt, &described));
                }
            };
            if attempt >= self.options.max_attempts {
                return Err(self.final_error(failure, attempt, &described));
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let wait = self.backoff(attempt, retry_after);
            if let Some(server_wait) = retry_after {
                // Everyone waits: the limit is per key, not per worker.
                let until = Instant::now() + server_wait.min(MAX_WAIT);
                let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
                if paused.is_none_or(|p| p < until) {
                    *paused = Some(until);
                }
            }
            tracing::debug!(request = %described, attempt, wait_ms = wait.as_millis() as u64, "TMDb request will be retried");
            tokio::time::sleep(wait).await;
        }
    }

    /// One request: waits for a pause to end, a token and a slot, then sends.
    async fn attempt(&self, url: &Url, described: &str, attempt: u32) -> Result<Vec<u8>, Failure> {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Failure::Connection("client closed".into()))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self.http.get(url.clone());
        if let Credential::ReadAccessToken(Secret(token)) = &self.credential {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Failure::Connection("the access token is not a valid header value".into())
            })?;
            // Keeps it out of `Debug` output of the request and of HTTP/2 header tables.
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let result = async {
            let mut response = request.send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, self.options.clock.now()));
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Ok((status, retry_after, None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, retry_after, Some(body)))
        }
        .await;
        let (status, retry_after, body) = match result {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(request = %described, attempt, "TMDb request timed out");
                return Err(Failure::Timeout);
            }
            Err(e) => {
                self.counters
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                let message = error_chain(e);
                tracing::debug!(request = %described, attempt, error = %message, "TMDb request failed");
                return Err(Failure::Connection(message));
            }
        };
        tracing::debug!(request = %described, attempt, status = status.as_u16(), "TMDb response");
        let Some(body) = body else {
            return Err(Failure::TooLarge);
        };
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.status_message)
            .map(|m| m.chars().filter(|c| !c.is_control()).take(200).collect())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
        Err(Failure::Status {
            status,
            retry_after,
            message,
        })
    }

    fn final_error(&self, failure: Failure, attempts: u32, described: &str) -> TmdbError {
        match failure {
            Failure::TooLarge => TmdbError::Malformed {
                endpoint: described.to_owned(),
                message: format!("response larger than {MAX_BODY_BYTES} bytes"),
            },
            Failure::Status {
                status, message, ..
            } => match status {
                StatusCode::UNAUTHORIZED => TmdbError::Unauthorized { message },
                StatusCode::NOT_FOUND => TmdbError::NotFound,
                StatusCode::TOO_MANY_REQUESTS => TmdbError::RateLimited { attempts },
                s if s.is_server_error() => TmdbError::Server {
                    status: s.as_u16(),
                    attempts,
                },
                s => TmdbError::Rejected {
                    status: s.as_u16(),
                    message,
                },
            },
            Failure::Timeout => TmdbError::Timeout {
                timeout: self.options.request_timeout,
                attempts,
            },
            Failure::Connection(message) => TmdbError::Connection { message, attempts },
        }
    }

    /// Exponential backoff with "equal jitter" (half the step fixed, half random, so that
    /// workers that failed together do not retry together), and never less than the server
    /// asked for.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let step = self
            .options
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.options.backoff_cap);
        let unit = self.jitter.lock().unwrap_or_else(|p| p.into_inner()).unit();
        let jittered = step / 2 + step.mul_f64(unit / 2.0);
        match retry_after {
            // A little jitter on top of the server's wait spreads the restart.
            Some(server) => server.min(MAX_WAIT) + jittered / 4,
            None => jittered,
        }
        .min(MAX_WAIT)
    }
}

fn parse_base_url(raw: &str) -> Result<Url, TmdbError> {
    let url = Url::parse(raw)
        .map_err(|e| TmdbError::Config(format!("--base-url {raw:?} is not a URL: {e}")))?;
    let loopback = url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(TmdbError::Config(format!(
                "--base-url {raw:?} must be https (plain http only to a loopback address): the API key travels with every request"
            )));
        }
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(TmdbError::Config(
            "--base-url must not carry a query or credentials; the key comes from the environment"
                .into(),
        ));
    }
    Ok(url)
}

/// `Retry-After`: seconds, or an HTTP date (a wait from `now`).
fn parse_retry_after(value: &str, now: Millis) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - now;
    Some(Duration::from_millis(wait.max(0) as u64))
}

fn describe(endpoint: &str, params: &[(&str, String)]) -> String {
    let mut out = endpoint.to_owned();
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&format!("{k}={v:?}"));
    }
    out
}

/// The error and its causes, without the URL (which may carry the key).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised_and_never_printed() {
        let key = Credential::parse(" 0123456789abcdef0123456789abcdef \n").unwrap();
        assert!(matches!(key, Credential::ApiKey(_)));
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "a".repeat(80));
        assert!(matches!(
            Credential::parse(&token).unwrap(),
            Credential::ReadAccessToken(_)
        ));
        let shown = format!("{:?}", Credential::parse(&token).unwrap());
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(Credential::parse("").is_err());
        let err = Credential::parse("abc def\r\nX-Evil: 1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("abc"), "{err}");
    }

    #[test]
    fn base_urls_are_https_or_loopback() {
        assert!(parse_base_url("https://api.themoviedb.org/3").is_ok());
        assert!(parse_base_url("http://127.0.0.1:9000/3").is_ok());
        assert!(parse_base_url("http://localhost:9000").is_ok());
        assert!(parse_base_url("http://[::1]:9000").is_ok());
        assert!(parse_base_url("http://api.themoviedb.org/3").is_err());
        assert!(parse_base_url("https://api.themoviedb.org/3?api_key=x").is_err());
        assert!(parse_base_url("ftp://x").is_err());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = crate::clock::parse_rfc3339("2015-10-21T07:28:00Z").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn backoff_grows_with_jitter_and_respects_the_server() {
        let mut o = ClientOptions::new("http://127.0.0.1:9/3", Credential::parse("k").unwrap());
        o.backoff_base = Duration::from_millis(100);
        o.backoff_cap = Duration::from_secs(1);
        let c = TmdbClient::new(o).unwrap();
        for attempt in 1..=6 {
            let step =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let w = c.backoff(attempt, None);
            assert!(w >= step / 2 && w <= step, "attempt {attempt}: {w:?}");
        }
        assert!(c.backoff(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert!(c.backoff(1, Some(Duration::from_secs(3600))) <= MAX_WAIT);
    }

    #[tokio::test]
    async fn the_tls_client_builds_and_connection_errors_carry_no_key() {
        // https with the one crypto provider: building must not fail or panic, and a failed
        // request's message must not name the URL (the key is in its query).
        let key = "0123456789abcdef0123456789abcdef";
        let c = TmdbClient::new(ClientOptions {
            max_attempts: 1,
            ..ClientOptions::new("https://127.0.0.1:9/3", Credential::parse(key).unwrap())
        })
        .unwrap();
        let err = c.configuration().await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, TmdbError::Connection { .. }), "{text}");
        assert!(!text.contains(key), "{text}");
        assert_eq!(c.stats().connection_errors, 1);
    }
}
