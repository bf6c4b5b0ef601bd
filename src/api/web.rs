//! The bundled web UI: plain HTML/CSS/ES modules under `web/`, compiled into the binary so that
//! `marquee serve` needs no files next to it. The UI is a client of the public GraphQL API only.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// (URL path, content type, file contents). Add new files under `web/` here.
const ASSETS: &[(&str, &str, &str)] = &[(
    "/",
    "text/html; charset=utf-8",
    include_str!("../../web/index.html"),
)];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, &(path, mime, body)| {
        router.route(
            path,
            get(move || async move {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")],
                    body,
                )
                    .into_response()
            }),
        )
    })
}
