//! The bundled web UI: plain HTML/CSS/ES modules under `web/`, compiled into the binary so that
//! `marquee serve` needs no files next to it. The UI is a client of the public GraphQL API only.
//!
//! Its pages carry a Content-Security-Policy: scripts, styles, fetches and forms from Marquee
//! itself only, no framing (`frame-ancestors 'none'`), and images from Marquee, `data:` (the
//! favicon) and the origins of the catalogue's poster URLs — the TMDb image server, or the
//! `--image-base-url` given to `marquee import tmdb` (posters are full URLs stored at import:
//! `ingest/tmdb`), read from the served catalogue. Every response also gets
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;
use crate::engine::Engine;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// (URL path, content type, file contents). Add new files under `web/` here.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../web/index.html")),
    ("/style.css", CSS, include_str!("../../web/style.css")),
    ("/app.js", JS, include_str!("../../web/app.js")),
    ("/api.js", JS, include_str!("../../web/api.js")),
    ("/session.js", JS, include_str!("../../web/session.js")),
    ("/events.js", JS, include_str!("../../web/events.js")),
    ("/nav.js", JS, include_str!("../../web/nav.js")),
    ("/ui.js", JS, include_str!("../../web/ui.js")),
    ("/poster.js", JS, include_str!("../../web/poster.js")),
    (
        "/views/home.js",
        JS,
        include_str!("../../web/views/home.js"),
    ),
    (
        "/views/console.js",
        JS,
        include_str!("../../web/views/console.js"),
    ),
    (
        "/views/title.js",
        JS,
        include_str!("../../web/views/title.js"),
    ),
    (
        "/views/browse.js",
        JS,
        include_str!("../../web/views/browse.js"),
    ),
    (
        "/views/search.js",
        JS,
        include_str!("../../web/views/search.js"),
    ),
    (
        "/views/profiles.js",
        JS,
        include_str!("../../web/views/profiles.js"),
    ),
    (
        "/views/experiments.js",
        JS,
        include_str!("../../web/views/experiments.js"),
    ),
];

pub fn routes() -> Router<ApiState> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, mime, body)| {
            router.route(
                path,
                get(move |State(api): State<ApiState>| async move {
                    let csp = api.csp.header(&api.app.engine.load_full());
                    (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                            (header::CONTENT_SECURITY_POLICY, csp),
                        ],
                        body,
                    )
                        .into_response()
                }),
            )
        })
}

/// Poster origins in one policy at most; a catalogue with more (a data problem) shows the
/// others' posters as the generated artwork.
const MAX_IMAGE_ORIGINS: usize = 8;

/// The UI's Content-Security-Policy, computed once per served catalogue.
#[derive(Default)]
pub struct ContentSecurityPolicy {
    cached: Mutex<Option<(Weak<Engine>, HeaderValue)>>,
}

impl ContentSecurityPolicy {
    pub fn header(&self, engine: &Arc<Engine>) -> HeaderValue {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, value)) = cached.as_ref()
            && Weak::ptr_eq(seen, &Arc::downgrade(engine))
        {
            return value.clone();
        }
        let origins: BTreeSet<String> = engine
            .catalog
            .titles()
            .filter_map(|(_, t)| t.details.as_ref()?.poster_url.as_deref())
            .filter_map(super::origin::origin_of)
            .collect();
        let value = HeaderValue::from_str(&policy(origins.iter().take(MAX_IMAGE_ORIGINS)))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        *cached = Some((Arc::downgrade(engine), value.clone()));
        value
    }
}

/// The policy text with `image_origins` allowed for images. Inline `style` attributes are
/// allowed (the generated posters' SVG uses them); inline scripts are not.
fn policy<'a>(image_origins: impl Iterator<Item = &'a String>) -> String {
    let mut img = String::from("'self' data:");
    for o in image_origins {
        img.push(' ');
        img.push_str(o);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src {img}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    )
}

/// Headers every response gets.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
