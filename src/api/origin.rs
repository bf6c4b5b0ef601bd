//! Where browser requests may come from: the CSRF defence of `POST /graphql` and the CORS
//! allowlist.
//!
//! CSRF: a browser attaches the session cookie to requests other sites make, so a request
//! that authenticates with the cookie must show it comes from Marquee's own pages. Two checks,
//! each enough against a plain form or `fetch` from another site:
//! - the body must be `application/json` (`415 UNSUPPORTED_MEDIA_TYPE` otherwise): an HTML
//!   form cannot send it, and a cross-site `fetch` with it needs a CORS preflight, which only
//!   the allowlist passes;
//! - a request carrying the session cookie (and no `Authorization` header) must name an
//!   `Origin` (or, without one, a `Referer`) that is Marquee's own — its public URL, the host
//!   the request was sent to — or an allowlisted origin (`403 CSRF_REFUSED` otherwise).
//!   Browsers send `Origin` with every POST; a request with neither header is refused too.
//!
//! Bearer-token requests (TV and mobile apps, scripts) are not CSRF-able: a browser never
//! adds an `Authorization` header on its own.
//!
//! CORS: only the configured origins (`[server] cors_origins`, `--cors-origin`) get CORS
//! headers; none by default. Credentials are not allowed cross-origin: other origins call
//! with bearer tokens.

use axum::http::{HeaderMap, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Marquee's own origin and the allowlisted ones, as `scheme://host[:port]`, lower case.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    own: String,
    allowed: Vec<String>,
}

/// Why a POST was refused before GraphQL: (status, code, message).
pub type Refusal = (axum::http::StatusCode, &'static str, &'static str);

impl Origins {
    /// `own`: the base URL browsers reach Marquee at; `allowed`: the CORS allowlist.
    pub fn new(own: &str, allowed: &[String]) -> Self {
        Origins {
            own: origin_of(own).unwrap_or_default(),
            allowed: allowed.iter().filter_map(|o| origin_of(o)).collect(),
        }
    }

    /// The allowlist, for the CORS layer.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// The CSRF checks of a `POST /graphql` (see the module's comment).
    pub fn check_post(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        use axum::http::StatusCode;
        if !is_json(headers) {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "POST /graphql takes `Content-Type: application/json`",
            ));
        }
        let cookie_auth = !headers.contains_key(header::AUTHORIZATION)
            && super::auth::has_session_cookie(headers);
        if cookie_auth && !self.same_site(headers) {
            return Err((
                StatusCode::FORBIDDEN,
                "CSRF_REFUSED",
                "a request signed in with the session cookie must come from Marquee's own pages \
                 (Origin); other clients sign in with a bearer token",
            ));
        }
        Ok(())
    }

    /// Whether the request's `Origin` (else `Referer`) is Marquee's own or allowlisted.
    pub fn same_site(&self, headers: &HeaderMap) -> bool {
        let claimed = match headers.get(header::ORIGIN) {
            Some(o) => o.to_str().ok().and_then(origin_of),
            None => headers
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(origin_of),
        };
        let Some(claimed) = claimed else {
            return false;
        };
        if claimed == self.own || self.allowed.contains(&claimed) {
            return true;
        }
        // The host the browser sent the request to: the cookie is scoped to it, so a page
        // of that same host and port is Marquee's own (the scheme may differ behind a proxy
        // that terminates TLS).
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        match (host, claimed.split_once("://")) {
            (Some(host), Some((_, authority))) => authority == host,
            _ => false,
        }
    }

    /// The CORS layer for the allowlist, or None when it is empty (no CORS headers at all).
    pub fn cors(&self) -> Option<CorsLayer> {
        if self.allowed.is_empty() {
            return None;
        }
        let list: Vec<HeaderValue> = self
            .allowed
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(list))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .max_age(std::time::Duration::from_secs(600)),
        )
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// `scheme://host[:port]` of a URL (default ports left out, as browsers write `Origin`),
/// lower case; None for anything else (including the `null` origin).
pub fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
    .map(|o| o.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("https://Example.com:443/x?y").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc/passwd"), None);
    }

    #[test]
    fn cookie_posts_need_a_matching_origin() {
        let o = Origins::new("http://127.0.0.1:8080", &["https://tv.example.com".into()]);
        let json = ("content-type", "application/json");
        let cookie = ("cookie", "marquee_session=abc");
        let ok = |h: &[(&'static str, &str)]| o.check_post(&headers(h)).is_ok();
        assert!(ok(&[json, cookie, ("origin", "http://127.0.0.1:8080")]));
        assert!(ok(&[json, cookie, ("origin", "https://tv.example.com")]));
        assert!(ok(&[
            json,
            cookie,
            ("origin", "http://localhost:9000"),
            ("host", "localhost:9000")
        ]));
        assert!(ok(&[
            json,
            cookie,
            ("referer", "http://127.0.0.1:8080/#/x")
        ]));
        assert!(!ok(&[json, cookie, ("origin", "https://evil.example")]));
        assert!(!ok(&[json, cookie, ("origin", "null")]));
        assert!(!ok(&[json, cookie]));
        // Bearer tokens and anonymous requests need no origin.
        assert!(ok(&[json, cookie, ("authorization", "Bearer x")]));
        assert!(ok(&[json]));
        // Not JSON: refused whoever calls.
        assert!(!ok(&[("content-type", "text/plain")]));
        assert!(!ok(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )]));
        assert!(!ok(&[]));
        assert!(ok(&[("content-type", "application/json; charset=utf-8")]));
    }
}
