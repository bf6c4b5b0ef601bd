//! The bundled web UI: plain HTML/CSS/ES modules under `web/`, compiled into the binary so that
//! `marquee serve` needs no files next to it. The UI is a client of the public GraphQL API only.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

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

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, mime, body)| {
            router.route(
                path,
                get(move || async move {
                    (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, mime),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        body,
                    )
                        .into_response()
                }),
            )
        })
}
