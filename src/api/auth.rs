//! Sign-in over HTTP: the caller of a request (a bearer token or the session cookie), the
//! development issuer's endpoints, and the browser login of the web UI (Marquee as the
//! backend-for-frontend: authorization code + PKCE through the `oauth2` crate; the tokens
//! never reach the browser, which holds only an HttpOnly session cookie).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::ApiState;
use crate::auth::dev_issuer::{self, CodeStore, DEMO_ACCOUNTS, random_token, secret_hash};
use crate::auth::{
    AuthError, Caller, DEFAULT_AUDIENCE, DEV_ISSUER_PATH, DevIssuer, Mode, Role, SessionProfile,
    TokenValidator, ValidatorConfig,
};
use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::domain::AccountId;
use crate::store::Store;
use crate::store::sessions::SessionRecord;

pub const SESSION_COOKIE: &str = "marquee_session";
/// How long a started sign-in may take before its callback is refused.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// The sign-in in progress (state, PKCE verifier, start, where to return), held by the browser
/// that started it and sent back only to the callback: any replica can finish the sign-in,
/// nothing grows on the server, and a callback from another browser (login CSRF) finds no
/// matching state.
const LOGIN_COOKIE: &str = "marquee_login";

type OidcClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What `serve` needs to know to set up sign-in.
pub struct AuthOptions {
    pub mode: Mode,
    pub config: AuthConfig,
    pub data_dir: std::path::PathBuf,
}

struct DevService {
    issuer: DevIssuer,
    codes: CodeStore,
    /// `<base>/dev-issuer`: the `iss` of its tokens.
    url: String,
    /// The only redirect URI it sends codes to: Marquee's own callback.
    callback: String,
    audience: String,
}

/// A sign-in in progress, as its cookie carries it.
struct PendingLogin {
    state: String,
    verifier: String,
    return_to: String,
    started_ms: i64,
}

impl PendingLogin {
    /// `state.verifier.started.base64url(return_to)`: state and verifier are base64url
    /// already, so the dots cannot be ambiguous.
    fn encode(&self) -> String {
        use base64::Engine as _;
        format!(
            "{}.{}.{}.{}",
            self.state,
            self.verifier,
            self.started_ms,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.return_to)
        )
    }

    fn decode(value: &str) -> Option<PendingLogin> {
        use base64::Engine as _;
        let mut parts = value.split('.');
        let (state, verifier, started, return_to) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || state.is_empty() || verifier.is_empty() {
            return None;
        }
        let return_to = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(return_to)
            .ok()?;
        let return_to = String::from_utf8(return_to).ok()?;
        Some(PendingLogin {
            state: state.to_owned(),
            verifier: verifier.to_owned(),
            return_to: local_path(Some(return_to)),
            started_ms: started.parse().ok()?,
        })
    }
}

/// Only local paths: an open redirect after sign-in would be a phishing aid.
fn local_path(path: Option<String>) -> String {
    path.filter(|r| r.starts_with('/') && !r.starts_with("//") && r.len() <= 512)
        .unwrap_or_else(|| "/".to_owned())
}

/// Sign-in state shared by every request.
pub struct AuthService {
    pub validator: TokenValidator,
    dev: Option<DevService>,
    store: Store,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    authorize_params: Vec<(String, String)>,
    callback: String,
    /// The base URL browsers reach Marquee at (`public_url`, else the bound address).
    base: String,
    secure_cookie: bool,
    session_ttl: Duration,
    http: reqwest::Client,
}

/// Why a request's credentials were refused: 401 with a GraphQL-shaped body.
pub struct Unauthenticated {
    message: &'static str,
    code: &'static str,
    status: StatusCode,
}

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "data": null,
            "errors": [{ "message": self.message, "extensions": { "code": self.code } }]
        });
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        resp
    }
}

impl AuthService {
    /// Sets up sign-in for a server reachable at `base` (`http://<bound address>` unless
    /// `public_url` says otherwise).
    pub fn new(opts: &AuthOptions, store: Store, base: &str) -> Result<Self> {
        let cfg = &opts.config;
        let base = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| base.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let dev_enabled = match opts.mode {
            Mode::Development => true,
            Mode::Production => cfg.dev_issuer == Some(true),
        };
        let audience = cfg
            .audience
            .clone()
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let callback = format!("{base}/auth/callback");
        let dev = if dev_enabled {
            let issuer = DevIssuer::load_or_create(&opts.data_dir)?;
            Some(DevService {
                issuer,
                codes: CodeStore::default(),
                url: format!("{base}{DEV_ISSUER_PATH}"),
                callback: callback.clone(),
                audience: audience.clone(),
            })
        } else {
            None
        };
        let issuer = match (&cfg.issuer, &dev) {
            (Some(i), _) => i.trim_end_matches('/').to_owned(),
            (None, Some(d)) => d.url.clone(),
            (None, None) => bail!(
                "production mode needs an OpenID Connect issuer: set [auth] issuer in marquee.toml \
                 (or dev_issuer = true to use the development issuer, never for real viewers)"
            ),
        };
        let mut vc = ValidatorConfig::new(issuer, audience);
        if let Some(c) = &cfg.account_claim {
            vc.account_claim = c.clone();
        }
        if let Some(c) = &cfg.roles_claim {
            vc.roles_claim = c.clone();
        }
        if let Some(s) = cfg.jwks_refetch_seconds {
            vc.refetch_interval = Duration::from_secs(s);
        }
        if let Some(s) = cfg.leeway_seconds {
            vc.leeway = Duration::from_secs(s);
        }
        let validator = TokenValidator::new(vc).map_err(anyhow::Error::from)?;
        let client_secret = match &cfg.client_secret_env {
            None => None,
            Some(var) => Some(std::env::var(var).with_context(|| {
                format!("[auth] client_secret_env names {var}, which is not set")
            })?),
        };
        Ok(AuthService {
            validator,
            dev,
            store,
            client_id: cfg
                .client_id
                .clone()
                .unwrap_or_else(|| "marquee-web".to_owned()),
            client_secret,
            scopes: cfg.scopes.clone().unwrap_or_else(|| vec!["openid".into()]),
            authorize_params: cfg
                .authorize_params
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            callback,
            secure_cookie: base.starts_with("https://"),
            base,
            session_ttl: Duration::from_secs(3600 * cfg.session_hours.unwrap_or(12)),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// The base URL browsers reach Marquee at: its origin is the one the CSRF check accepts.
    pub fn public_url(&self) -> &str {
        &self.base
    }

    pub fn dev_issuer_url(&self) -> Option<&str> {
        self.dev.as_ref().map(|d| d.url.as_str())
    }

    /// The caller of a request: a bearer token (refused with 401 when invalid), else the
    /// session cookie (an unknown or expired session is simply no caller), else nobody.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Option<Caller>, Unauthenticated> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or(Unauthenticated {
                    message: "Authorization must be `Bearer <access token>`",
                    code: "UNAUTHENTICATED",
                    status: StatusCode::UNAUTHORIZED,
                })?;
            return match self.validator.validate(token).await {
                Ok(c) => Ok(Some(c)),
                Err(AuthError::Invalid(why)) => {
                    // The reason, never the token.
                    tracing::info!(%why, "bearer token refused");
                    Err(Unauthenticated {
                        message: "the access token is not valid",
                        code: "UNAUTHENTICATED",
                        status: StatusCode::UNAUTHORIZED,
                    })
                }
                Err(AuthError::IssuerUnavailable(why)) => {
                    tracing::warn!(%why, "cannot validate tokens: issuer unavailable");
                    Err(Unauthenticated {
                        message: "the identity provider is unavailable; retry shortly",
                        code: "UNAVAILABLE",
                        status: StatusCode::SERVICE_UNAVAILABLE,
                    })
                }
            };
        }
        let Some(id) = session_cookie(headers) else {
            return Ok(None);
        };
        let hash = secret_hash(id);
        match self.store.session(&hash, Clock::System.now()).await {
            Ok(Some(s)) => {
                let mut caller = Caller::new(
                    s.account,
                    s.subject,
                    s.roles.split_whitespace().filter_map(Role::parse),
                );
                caller.session_profile = s.profile.map(|profile| SessionProfile {
                    profile,
                    kids_locked: s.kids_locked,
                });
                caller.session_key = Some(hash);
                Ok(Some(caller))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the session");
                Err(Unauthenticated {
                    message: "storage is temporarily unavailable; retry shortly",
                    code: "UNAVAILABLE",
                    status: StatusCode::SERVICE_UNAVAILABLE,
                })
            }
        }
    }

    async fn oidc_client(&self) -> Result<OidcClient> {
        let d = self
            .validator
            .discovery()
            .await
            .map_err(anyhow::Error::from)?;
        let auth = d
            .authorization_endpoint
            .clone()
            .context("the issuer publishes no authorization_endpoint")?;
        let token = d
            .token_endpoint
            .clone()
            .context("the issuer publishes no token_endpoint")?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(auth)?)
            .set_token_uri(TokenUrl::new(token)?)
            .set_redirect_uri(RedirectUrl::new(self.callback.clone())?);
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(client)
    }
}

/// Whether the request carries Marquee's session cookie (so a browser may have added it on
/// another site's behalf: `origin` checks where it comes from).
pub fn has_session_cookie(headers: &HeaderMap) -> bool {
    session_cookie(headers).is_some()
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE).filter(|v| v.len() <= 128)
}

/// The value of the cookie `name` (bounded: 1 KiB), if the request carries one.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 1024)
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route(
            &format!("{DEV_ISSUER_PATH}/.well-known/openid-configuration"),
            get(dev_discovery),
        )
        .route(&format!("{DEV_ISSUER_PATH}/jwks"), get(dev_jwks))
        .route(
            &format!("{DEV_ISSUER_PATH}/authorize"),
            get(dev_authorize_page).post(dev_authorize),
        )
        .route(&format!("{DEV_ISSUER_PATH}/token"), post(dev_token))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>{title}</title>\
             <body style=\"font-family:system-ui;background:#141414;color:#eee;max-width:40em;margin:3em auto\">\
             <h1>{title}</h1>{body}</body>"
        )),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[derive(Deserialize)]
struct LoginParams {
    return_to: Option<String>,
}

/// Starts a sign-in: PKCE verifier and state kept on the server, the browser sent to the
/// issuer.
async fn login(State(api): State<ApiState>, Query(p): Query<LoginParams>) -> Response {
    let auth = &api.auth;
    let client = match auth.oidc_client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "sign-in unavailable");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable",
                "<p>The identity provider cannot be reached. Try again shortly.</p>",
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for s in &auth.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    for (k, v) in &auth.authorize_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, state) = request.url();
    let pending = PendingLogin {
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to: local_path(p.return_to),
        started_ms: Clock::System.now(),
    };
    let cookie = format!(
        "{LOGIN_COOKIE}={}; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age={}{}",
        pending.encode(),
        LOGIN_TTL.as_secs(),
        if auth.secure_cookie { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(url.as_str()).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Ends a sign-in: the code exchanged (with the PKCE verifier) for an access token, which is
/// validated like any bearer token; a session is stored and its id set as an HttpOnly cookie.
async fn callback(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<CallbackParams>,
) -> Response {
    let auth = &api.auth;
    let refused = |why: &str| {
        page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!(
                "<p>{}</p><p><a href=\"/auth/login\" style=\"color:#e50914\">Try again</a></p>",
                escape(why)
            ),
        )
    };
    if let Some(e) = p.error {
        return refused(&format!("The identity provider said: {e}"));
    }
    let (Some(code), Some(state)) = (p.code, p.state) else {
        return refused("The callback carries no code.");
    };
    let age_ms = |l: &PendingLogin| Clock::System.now() - l.started_ms;
    let Some(pending) = cookie(&headers, LOGIN_COOKIE)
        .and_then(PendingLogin::decode)
        .filter(|l| l.state == state && (0..=LOGIN_TTL.as_millis() as i64).contains(&age_ms(l)))
    else {
        return refused("This sign-in was not started in this browser, or took too long.");
    };
    let client = match auth.oidc_client().await {
        Ok(c) => c,
        Err(_) => return refused("The identity provider cannot be reached."),
    };
    let http = auth.http.clone();
    let send = move |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let resp = http.execute(req.try_into()?).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?.to_vec();
            let mut out = oauth2::HttpResponse::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, reqwest::Error>(out)
        }
    };
    let token = match client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&send)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            // The provider's error code only: a body that failed to parse might hold tokens.
            let why = match &e {
                oauth2::RequestTokenError::ServerResponse(r) => r.error().to_string(),
                oauth2::RequestTokenError::Request(_) => "the request failed".to_owned(),
                oauth2::RequestTokenError::Parse(..) => "unparsable response".to_owned(),
                oauth2::RequestTokenError::Other(_) => "other".to_owned(),
            };
            tracing::info!(%why, "code exchange refused");
            return refused("The identity provider refused the code exchange.");
        }
    };
    let caller = match auth.validator.validate(token.access_token().secret()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "access token from the code exchange refused");
            return refused("The identity provider's token is not valid for Marquee.");
        }
    };
    let Some(session_id) = random_token() else {
        return refused("No randomness available.");
    };
    let now = Clock::System.now();
    let record = SessionRecord {
        account: caller.account.clone(),
        subject: caller.subject.clone(),
        roles: caller
            .roles()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        profile: None,
        kids_locked: false,
        expires_at: now + auth.session_ttl.as_millis() as i64,
    };
    if let Err(e) = auth
        .store
        .create_session(&secret_hash(&session_id), &record, now)
        .await
    {
        tracing::warn!(error = %e, "cannot store a session");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "<p>Storage is temporarily unavailable. Try again shortly.</p>",
        );
    }
    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        auth.session_ttl.as_secs(),
        if auth.secure_cookie { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(&pending.return_to).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    // The sign-in is over: its cookie goes (a replayed callback finds no verifier).
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}=; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Signs out: the session is deleted on the server and the cookie cleared.
async fn logout(State(api): State<ApiState>, headers: HeaderMap) -> Response {
    // Another site must not sign a viewer out (a form posted there carries the cookie).
    if has_session_cookie(&headers) && !api.origins.same_site(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "sign-out must come from Marquee's own pages (Origin)",
        )
            .into_response();
    }
    if let Some(id) = session_cookie(&headers)
        && let Err(e) = api.auth.store.delete_session(&secret_hash(id)).await
    {
        tracing::warn!(error = %e, "cannot delete a session");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut resp = Redirect::to("/").into_response();
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if api.auth.secure_cookie {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The development issuer, when it runs (its endpoints are 404 otherwise).
fn dev(api: &ApiState) -> Option<&DevService> {
    api.auth.dev.as_ref()
}

async fn dev_discovery(State(api): State<ApiState>) -> Response {
    match dev(&api) {
        Some(d) => Json(dev_issuer::discovery_document(&d.url)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn dev_jwks(State(api): State<ApiState>) -> Response {
    match dev(&api) {
        Some(d) => Json(d.issuer.jwks()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthorizeParams {
    /// The request is for Marquee's own callback, with an S256 challenge.
    fn check(&self, d: &DevService) -> Result<(), &'static str> {
        if self.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        if self.redirect_uri.as_deref() != Some(d.callback.as_str()) {
            return Err("redirect_uri is not this server's callback");
        }
        if self.code_challenge_method.as_deref() != Some("S256")
            || self
                .code_challenge
                .as_deref()
                .is_none_or(|c| c.len() < 43 || c.len() > 128)
        {
            return Err("PKCE with S256 is required");
        }
        if self
            .state
            .as_deref()
            .is_none_or(|s| s.is_empty() || s.len() > 512)
        {
            return Err("state is required");
        }
        Ok(())
    }
}

/// The development sign-in page: pick a demo account (or type any account number).
async fn dev_authorize_page(
    State(api): State<ApiState>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let Some(d) = dev(&api) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(why) = p.check(d) {
        return page(StatusCode::BAD_REQUEST, "Bad sign-in request", &escape(why));
    }
    let hidden = format!(
        "<input type=hidden name=response_type value=code>\
         <input type=hidden name=client_id value=\"{}\">\
         <input type=hidden name=redirect_uri value=\"{}\">\
         <input type=hidden name=state value=\"{}\">\
         <input type=hidden name=code_challenge value=\"{}\">\
         <input type=hidden name=code_challenge_method value=S256>",
        escape(p.client_id.as_deref().unwrap_or("")),
        escape(p.redirect_uri.as_deref().unwrap_or("")),
        escape(p.state.as_deref().unwrap_or("")),
        escape(p.code_challenge.as_deref().unwrap_or("")),
    );
    let mut body = String::from(
        "<p>Development issuer: anyone may sign in as any account. Never expose it to real viewers.</p>",
    );
    for (account, role, label) in DEMO_ACCOUNTS {
        body.push_str(&format!(
            "<form method=post style=\"margin:.5em 0\">{hidden}\
             <input type=hidden name=account value=\"{account}\"><input type=hidden name=role value=\"{}\">\
             <button type=submit data-account=\"{account}\" data-role=\"{}\" style=\"padding:.6em 1em;font-size:1em\">{}</button></form>",
            role.as_str(),
            role.as_str(),
            escape(label)
        ));
    }
    body.push_str(&format!(
        "<form method=post style=\"margin-top:1.5em\">{hidden}\
         <label>Account <input name=account size=8 required pattern=\"[A-Za-z0-9_-]{{1,64}}\"></label> \
         <select name=role><option>viewer</option><option>pm</option><option>admin</option></select> \
         <button type=submit>Sign in</button></form>"
    ));
    page(StatusCode::OK, "Sign in to Marquee", &body)
}

#[derive(Deserialize)]
struct AuthorizeForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    account: String,
    role: String,
}

/// The sign-in page's answer: a one-time code, sent back to Marquee's callback.
async fn dev_authorize(State(api): State<ApiState>, Form(f): Form<AuthorizeForm>) -> Response {
    let Some(d) = dev(&api) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(why) = f.params.check(d) {
        return page(StatusCode::BAD_REQUEST, "Bad sign-in request", &escape(why));
    }
    let (Ok(account), Some(role)) = (AccountId::parse(f.account.trim()), Role::parse(&f.role))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad sign-in request",
            "Unknown account or role.",
        );
    };
    let redirect = f.params.redirect_uri.clone().unwrap_or_default();
    let Some(code) = d.codes.issue(
        account,
        role,
        redirect.clone(),
        f.params.code_challenge.clone().unwrap_or_default(),
    ) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins",
            "Try again in a minute.",
        );
    };
    let mut url = match reqwest::Url::parse(&redirect) {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", f.params.state.as_deref().unwrap_or(""));
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

/// The token endpoint: a code and its PKCE verifier for an access token.
async fn dev_token(State(api): State<ApiState>, Form(f): Form<TokenForm>) -> Response {
    let Some(d) = dev(&api) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let error = |e: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response()
    };
    if f.grant_type != "authorization_code" {
        return error("unsupported_grant_type");
    }
    let Some(pending) = d.codes.redeem(&f.code, &f.redirect_uri, &f.code_verifier) else {
        return error("invalid_grant");
    };
    match d
        .issuer
        .token(&d.url, &d.audience, &pending.account, pending.role)
    {
        Ok(token) => Json(serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": dev_issuer::TOKEN_TTL.as_secs(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot sign a token");
            error("server_error")
        }
    }
}

/// The issuer URL `dev-token` signs for: `<public_url or http://listen>/dev-issuer`.
pub fn dev_issuer_url(public_url: Option<&str>, listen: std::net::SocketAddr) -> String {
    let base = public_url
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{listen}"));
    format!("{base}{DEV_ISSUER_PATH}")
}
