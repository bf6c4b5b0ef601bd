//! Access-token validation against an OpenID Connect issuer's published keys.
//!
//! The issuer's discovery document names its JWKS; keys are fetched with reqwest, cached, and
//! refetched when a token names a key id (`kid`) the cache does not know — at most once per
//! `refetch_interval`, so a flood of forged `kid`s cannot make Marquee hammer the issuer —
//! which is how a key rotation is picked up without a restart. Every key carries its
//! algorithm (the JWK's `alg`, else the one its type implies) and a token must be signed
//! with exactly that one: `alg: none`, or HS256 "signed" with the public RSA key, never pass.
//! `iss`, `aud`, `exp` and `nbf` are checked with a small leeway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::caller::{Caller, Role};
use crate::domain::AccountId;

/// Largest discovery document or JWKS accepted (real ones are a few KB).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Largest token accepted; real access tokens are 1–2 KB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The issuer identifier (`iss`); its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// The claim that names the account (default `sub`).
    pub account_claim: String,
    /// The claim holding roles: an array of strings or a space-separated string. A dotted
    /// path reaches into objects (`realm_access.roles`).
    pub roles_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two JWKS fetches triggered by unknown key ids.
    pub refetch_interval: Duration,
}

impl ValidatorConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        ValidatorConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            account_claim: "sub".into(),
            roles_claim: "roles".into(),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(10),
        }
    }
}

/// Why a request is not authenticated. The detail is for the server log; clients learn only
/// that their credentials were refused (`UNAUTHENTICATED`) or that the issuer could not be
/// reached (`UNAVAILABLE`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("issuer unavailable: {0}")]
    IssuerUnavailable(String),
}

/// The parts of a discovery document Marquee uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
}

struct VerifyingKey {
    key: DecodingKey,
    alg: Algorithm,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
}

/// Tokens already verified, so that a client's next requests with the same token cost a
/// lookup instead of an RSA verification. Bounded; entries live at most `VERIFIED_TTL` and
/// never past the token's own `exp`.
const VERIFIED_CAPACITY: usize = 10_000;
const VERIFIED_TTL: Duration = Duration::from_secs(60);

struct Verified {
    caller: Caller,
    /// Seconds since the epoch.
    exp: i64,
    at: Instant,
}

/// Validates access tokens of one issuer. Cheap to share (`Arc`); the keys are cached.
pub struct TokenValidator {
    cfg: ValidatorConfig,
    verified: std::sync::RwLock<HashMap<String, Verified>>,
    http: reqwest::Client,
    discovery: tokio::sync::OnceCell<Discovery>,
    cache: std::sync::RwLock<KeyCache>,
    /// One refetch at a time; others wait for its result instead of fetching too.
    refetch: tokio::sync::Mutex<()>,
}

impl TokenValidator {
    pub fn new(cfg: ValidatorConfig) -> Result<Self, AuthError> {
        check_url(&cfg.issuer)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::IssuerUnavailable(e.to_string()))?;
        Ok(TokenValidator {
            cfg,
            verified: std::sync::RwLock::new(HashMap::new()),
            http,
            discovery: tokio::sync::OnceCell::new(),
            cache: std::sync::RwLock::new(KeyCache::default()),
            refetch: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &ValidatorConfig {
        &self.cfg
    }

    /// The issuer's discovery document, fetched once.
    pub async fn discovery(&self) -> Result<&Discovery, AuthError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.cfg.issuer.trim_end_matches('/')
                );
                let doc: Discovery = serde_json::from_slice(&self.fetch(&url).await?)
                    .map_err(|e| AuthError::IssuerUnavailable(format!("{url}: {e}")))?;
                if doc.issuer != self.cfg.issuer {
                    return Err(AuthError::IssuerUnavailable(format!(
                        "{url} names issuer {:?}, configured {:?}",
                        doc.issuer, self.cfg.issuer
                    )));
                }
                check_url(&doc.jwks_uri)?;
                Ok(doc)
            })
            .await
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, AuthError> {
        let unavailable = |e: String| AuthError::IssuerUnavailable(format!("{url}: {e}"));
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(e.to_string()))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(unavailable(format!(
                    "larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Fetches the JWKS and replaces the cache. Keys of a type Marquee cannot verify are
    /// skipped; a key without `kid` is skipped too, since tokens must name their key.
    async fn refresh_keys(&self) -> Result<(), AuthError> {
        let jwks_uri = self.discovery().await?.jwks_uri.clone();
        let body = self.fetch(&jwks_uri).await;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // A failed fetch counts too: the rate limit protects the issuer either way.
        cache.fetched_at = Some(Instant::now());
        let set: JwkSet = serde_json::from_slice(&body?)
            .map_err(|e| AuthError::IssuerUnavailable(format!("{jwks_uri}: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Some(alg) = key_algorithm(jwk) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, Arc::new(VerifyingKey { key, alg }));
            }
        }
        cache.keys = keys;
        Ok(())
    }

    /// The key `kid`, refetching the JWKS when it is unknown and the last fetch is older than
    /// the refetch interval.
    async fn key(&self, kid: &str) -> Result<Option<Arc<VerifyingKey>>, AuthError> {
        if let Some(k) = self.cached(kid) {
            return Ok(Some(k));
        }
        let _one_at_a_time = self.refetch.lock().await;
        // Someone else may have refetched while this request waited.
        if let Some(k) = self.cached(kid) {
            return Ok(Some(k));
        }
        let due = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache
                .fetched_at
                .is_none_or(|t| t.elapsed() >= self.cfg.refetch_interval)
        };
        if due {
            self.refresh_keys().await?;
        }
        Ok(self.cached(kid))
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.keys.get(kid).cloned()
    }

    /// Fetches discovery and keys now (at start), so the first request does not pay for it.
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        self.refresh_keys().await
    }

    /// Validates `token` and returns who it speaks for.
    pub async fn validate(&self, token: &str) -> Result<Caller, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("token too long".into()));
        }
        let now = crate::clock::Clock::System.now() / 1000;
        if let Some(v) = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .filter(|v| v.at.elapsed() < VERIFIED_TTL && now <= v.exp)
        {
            return Ok(v.caller.clone());
        }
        // `alg: none` (or any algorithm jsonwebtoken does not know) fails right here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("header: {e}")))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id (kid) in the header".into()))?;
        let key = self
            .key(&kid)
            .await?
            .ok_or_else(|| AuthError::Invalid(format!("unknown key id {kid:?}")))?;
        // The algorithm is the key's, never the token's choice.
        if header.alg != key.alg {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not the key's ({:?})",
                header.alg, key.alg
            )));
        }
        let (caller, exp) = self.verify(token, &key)?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, v| v.at.elapsed() < VERIFIED_TTL && now <= v.exp);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(
            token.to_owned(),
            Verified {
                caller: caller.clone(),
                exp,
                at: Instant::now(),
            },
        );
        Ok(caller)
    }

    /// The caller and `exp` of a token whose signature and claims check out.
    fn verify(&self, token: &str, key: &VerifyingKey) -> Result<(Caller, i64), AuthError> {
        let mut validation = Validation::new(key.alg);
        validation.algorithms = vec![key.alg];
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_audience(&[&self.cfg.audience]);
        validation.leeway = self.cfg.leeway.as_secs();
        validation.validate_nbf = true;
        validation.required_spec_claims = ["exp", "iss", "aud"]
            .into_iter()
            .map(String::from)
            .collect();
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
                .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok((self.caller_from_claims(&data.claims)?, exp))
    }

    /// The account and roles the claims name.
    pub fn caller_from_claims(
        &self,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<Caller, AuthError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let account = claim(claims, &self.cfg.account_claim)
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| AuthError::Invalid(format!("no {:?} claim", self.cfg.account_claim)))?;
        let account = AccountId::parse(&account)
            .map_err(|e| AuthError::Invalid(format!("{}: {e}", self.cfg.account_claim)))?;
        let roles: Vec<Role> = match claim(claims, &self.cfg.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Role::parse)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().filter_map(Role::parse).collect(),
            _ => vec![],
        };
        Ok(Caller::new(account, subject, roles))
    }
}

/// `a.b.c` inside the claims.
fn claim<'a>(claims: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// The one algorithm a key verifies: its `alg`, else what its type implies.
fn key_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // A symmetric key in a public JWKS is a misconfiguration; never verify with one.
        AlgorithmParameters::OctetKey(_) => return None,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(a) => {
            let alg: Algorithm = a.to_string().parse().ok()?;
            // An HMAC `alg` on an asymmetric key is refused as well.
            matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
                .then_some(())
                .map_or(Some(alg), |_| None)
        }
    }
}

/// Issuer and key URLs must be https, except on loopback (the development issuer, tests).
fn check_url(url: &str) -> Result<(), AuthError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| AuthError::IssuerUnavailable(format!("{url:?} is not a URL: {e}")))?;
    let loopback = parsed.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    });
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(AuthError::IssuerUnavailable(format!(
            "{url} must be https (plain http only on loopback)"
        )))
    }
}
