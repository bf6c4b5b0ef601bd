//! Settings from flags, environment and an optional `marquee.toml`, in that order of
//! precedence. Flags and environment variables are declared together in `cli/mod.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::clock::{Clock, EARLIEST_EVENT, EventWindow, parse_rfc3339};
use crate::domain::ParseError;

/// `marquee.toml`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    /// Production serving: Redis for candidate lists and trending counts (`REDIS_URL`).
    pub redis_url: Option<String>,
    /// Production serving: NATS JetStream for the event stream (`NATS_URL`).
    pub nats_url: Option<String>,
    /// Prefix of Redis keys and of the stream's name (default `marquee`).
    pub key_prefix: Option<String>,
    /// Seconds a graceful shutdown may take (default 10): draining requests, then flushing
    /// the impression log and the outbox.
    pub shutdown_secs: Option<u64>,
    pub listen: Option<SocketAddr>,
    pub rows: Option<PathBuf>,
    pub clock: Option<String>,
    pub experiments: Option<PathBuf>,
    /// How far after the server's clock a client-reported `occurredAt` may be, in seconds
    /// (default 300; `clock::EventWindow`).
    pub event_max_ahead_secs: Option<u32>,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub server: ServerConfig,
}

/// `[server]` in `marquee.toml`: the limits and transport of `serve`/`demo`. Every key is
/// optional; a flag (or its `MARQUEE_*` variable) wins over the file. The README's "Limits"
/// table gives each default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Requests per second per account to `POST /graphql` (0: off).
    pub rate_limit_account: Option<u32>,
    /// Requests per second per client IP to `POST /graphql` (0: off).
    pub rate_limit_ip: Option<u32>,
    /// How long one `POST /graphql` request may run, in milliseconds (0: no bound).
    pub request_timeout_ms: Option<u64>,
    /// Schema introspection and GraphiQL.
    pub introspection: Option<bool>,
    /// Connections served at once; more are closed when accepted.
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers, in milliseconds.
    pub header_read_timeout_ms: Option<u64>,
    /// PEM certificate chain and private key: HTTPS when both are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Origins other than Marquee's own that browsers may call the API from (CORS), e.g.
    /// `["https://tv.example.com"]`. None by default.
    pub cors_origins: Option<Vec<String>>,
}

/// `[auth]` in `marquee.toml`: who signs viewers in. Every key is optional; without `issuer`
/// the built-in development issuer is the issuer (development mode, or `dev_issuer = true`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `production` (default of `serve`) or `development` (default of `demo`).
    pub mode: Option<crate::auth::Mode>,
    /// The OpenID Connect issuer (its discovery document is under
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// The `aud` access tokens must carry (default `marquee`).
    pub audience: Option<String>,
    /// The web UI's client at the issuer (authorization code + PKCE).
    pub client_id: Option<String>,
    /// The environment variable holding the client secret, if the client has one (secrets
    /// never live in the file).
    pub client_secret_env: Option<String>,
    /// Scopes asked for at sign-in (default `openid`).
    pub scopes: Option<Vec<String>>,
    /// Extra authorization parameters, e.g. `resource` for providers that need a resource
    /// indicator to issue JWT access tokens.
    pub authorize_params: Option<std::collections::BTreeMap<String, String>>,
    /// The claim naming the account (default `sub`).
    pub account_claim: Option<String>,
    /// The claim holding roles (default `roles`; a dotted path reaches into objects).
    pub roles_claim: Option<String>,
    /// Allows the development issuer in production mode.
    pub dev_issuer: Option<bool>,
    /// The URL browsers reach Marquee at (default `http://<listen address>`); an https URL
    /// makes session cookies `Secure`.
    pub public_url: Option<String>,
    /// How long a browser session lasts (default 12).
    pub session_hours: Option<u64>,
    /// Least seconds between JWKS refetches for unknown key ids (default 10).
    pub jwks_refetch_seconds: Option<u64>,
    /// Clock skew tolerated on `exp`/`nbf` (default 30).
    pub leeway_seconds: Option<u64>,
}

impl FileConfig {
    /// Reads `path`; a missing default file is fine, a missing explicit one is not.
    pub fn load(path: &Path, explicit: bool) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message())
        })
    }
}

/// How "now" is chosen: `system`, `last-event` (the newest event in the database; for
/// replayed datasets) or a fixed RFC 3339 instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockSetting {
    System,
    LastEvent,
    Fixed(i64),
}

impl std::str::FromStr for ClockSetting {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "system" => Ok(Self::System),
            "last-event" => Ok(Self::LastEvent),
            other => parse_rfc3339(other).map(Self::Fixed).map_err(|_| {
                ParseError(format!(
                    "clock must be `system`, `last-event` or an RFC 3339 time, got {other:?}"
                ))
            }),
        }
    }
}

impl ClockSetting {
    /// `last-event` starts at the newest event and keeps ticking, so that events recorded
    /// while serving sort after the replayed ones. Only events within `window` of real time
    /// count: a database that holds an event from the far future (stored before the window
    /// was enforced) does not move the clock there.
    pub async fn resolve(&self, store: &crate::store::Store, window: EventWindow) -> Result<Clock> {
        Ok(match self {
            Self::System => Clock::System,
            Self::Fixed(t) => Clock::Fixed(*t),
            Self::LastEvent => match store
                .last_event_at(EARLIEST_EVENT, window.latest(Clock::System.now()))
                .await?
            {
                Some(t) => Clock::starting_at(t),
                None => bail!("--clock last-event needs events in the database; import some first"),
            },
        })
    }
}
