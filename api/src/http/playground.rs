//! Self-hosted GraphiQL playground at `GET /playground`.
//!
//! async-graphql's `GraphiQLSource` makes the browser load GraphiQL and React
//! from unpkg, so admins on an offline or firewalled network got a blank page.
//! Here the page and its assets are embedded in the binary (`build.rs` takes them
//! from `playground/node_modules`) and served under `/playground/assets/`.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};

use super::accept;

#[cfg(not(playground_without_assets))]
const INDEX_HTML: &str = include_str!("../../playground/index.html");

/// What `/playground` shows when the build had no npm to fetch GraphiQL with.
#[cfg(playground_without_assets)]
const INDEX_HTML: &str = "<!doctype html><meta charset=utf-8><title>Tweet Meet</title>\
<h1>No playground in this build</h1>\
<p>This server was built without npm, so GraphiQL is not embedded. \
Install Node.js and npm and build again (<code>cargo build --release</code> runs \
<code>npm ci</code> in <code>api/playground</code>). \
The GraphQL endpoint itself works: <code>POST /graphql</code>.</p>";

#[cfg(not(playground_without_assets))]
const CSS: &str = "text/css; charset=utf-8";
#[cfg(not(playground_without_assets))]
const JS: &str = "text/javascript; charset=utf-8";
const CACHE_CONTROL: &str = "public, max-age=86400";

/// `(name under /playground/assets/, content type, bytes)`.
#[cfg(playground_without_assets)]
const ASSETS: &[(&str, &str, &[u8])] = &[];

#[cfg(not(playground_without_assets))]
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.css",
        CSS,
        include_bytes!(env!("PLAYGROUND_GRAPHIQL_CSS")),
    ),
    (
        "graphiql.min.js",
        JS,
        include_bytes!(env!("PLAYGROUND_GRAPHIQL_JS")),
    ),
    (
        "react.production.min.js",
        JS,
        include_bytes!(env!("PLAYGROUND_REACT_JS")),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!(env!("PLAYGROUND_REACT_DOM_JS")),
    ),
];

/// Routes for the playground page and its embedded assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/playground", get(index))
        .route("/playground/assets/{file}", get(asset))
}

/// Where a browser that opened an API address is sent.
pub fn redirect() -> Response {
    Redirect::to("/playground").into_response()
}

/// `GET /`: a browser is led to the playground; other clients are told
/// where the API is.
pub async fn lead_browsers(headers: HeaderMap) -> Response {
    if accept::wants_html(&headers) {
        redirect()
    } else {
        (
            StatusCode::NOT_FOUND,
            "GraphQL is served at /graphql (WebSocket: /graphql/ws)",
        )
            .into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some(&(_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, CACHE_CONTROL),
            ],
            bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(all(test, not(playground_without_assets)))]
mod tests {
    use super::*;

    #[test]
    fn page_uses_only_embedded_assets_and_no_other_host() {
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        let referenced: Vec<&str> = INDEX_HTML
            .split("/playground/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or_default())
            .collect();
        let embedded: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(referenced.len(), embedded.len());
        for name in referenced {
            assert!(embedded.contains(&name), "{name} is not embedded");
        }
    }

    #[tokio::test]
    async fn serves_assets_with_type_and_cache_headers() {
        let res = asset(Path("graphiql.min.js".to_owned())).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(res.headers()[header::CACHE_CONTROL], CACHE_CONTROL);

        let res = asset(Path("../Cargo.toml".to_owned())).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
