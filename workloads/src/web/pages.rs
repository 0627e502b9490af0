//! The customer pages (issue #5): one small single-page app — plain HTML,
//! CSS and JavaScript under `workloads/assets/`, no build step, no CDN —
//! embedded in the binary and served with a strict Content-Security-Policy
//! (this origin only, no inline script or style).
//!
//! `/` and `/events/{event}` answer the same document; its script reads the
//! event from the path, or from the `tt-events` meta tag on `/` (the events
//! this process serves), and drives the public API from there. Assets are
//! referenced as `/assets/{file}?v={version}` where the version is a hash of
//! all of them: a versioned URL may be cached for a year, anything else must
//! revalidate (ETag), so a deploy never mixes old and new files.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::LazyLock,
};

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{AppState, error::AppError};

/// Only this origin; no inline script or style; not framable. `'self'` in
/// `connect-src` covers same-origin WebSockets (CSP Level 3).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// A versioned asset URL never changes content.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The document and unversioned asset URLs: always revalidate (cheap 304).
const CACHE_REVALIDATE: &str = "no-cache";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/i18n.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/icon.svg"),
    },
];

const INDEX: &str = include_str!("../../assets/index.html");

fn hash_hex(parts: &[&[u8]]) -> String {
    // SipHash with fixed keys: stable within a build, which is all a cache
    // validator of embedded files needs (no cryptographic claim).
    let mut hasher = DefaultHasher::new();
    for part in parts {
        part.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Version of the embedded assets, in their URLs.
static VERSION: LazyLock<String> =
    LazyLock::new(|| hash_hex(&ASSETS.iter().map(|a| a.body).collect::<Vec<_>>()));

/// The document with asset URLs versioned; `{{EVENTS}}` is left per request.
static SHELL: LazyLock<String> = LazyLock::new(|| INDEX.replace("{{V}}", &VERSION));

/// Headers every page response carries.
fn page_headers(content_type: &'static str, cache: &'static str, etag: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    h
}

/// True when the request's `If-None-Match` lists this ETag.
fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

fn respond(
    request: &HeaderMap,
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<axum::body::Body> + AsRef<[u8]>,
) -> Response {
    let etag = format!("\"{}\"", hash_hex(&[body.as_ref()]));
    let headers = page_headers(content_type, cache, &etag);
    if status == StatusCode::OK && not_modified(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (status, headers, body.into()).into_response()
}

/// The document, listing the events this process serves.
fn shell(state: &AppState, request: &HeaderMap, status: StatusCode) -> Response {
    // Event ids are DNS labels (a-z, 0-9, '-'): safe in an attribute as is.
    let mut ids: Vec<&str> = state.0.events.keys().map(|id| id.as_str()).collect();
    ids.sort_unstable();
    let html = SHELL.replace("{{EVENTS}}", &ids.join(","));
    respond(
        request,
        status,
        "text/html; charset=utf-8",
        CACHE_REVALIDATE,
        html,
    )
}

/// `/`: the event served (or the list when there are several).
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    shell(&state, &headers, StatusCode::OK)
}

/// `/events/{event}`: that event's pages; 404 (same document, which then
/// says so) for an event this process does not serve.
pub async fn event(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let status = match state.event(&event) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::NOT_FOUND,
    };
    shell(&state, &headers, status)
}

/// `/assets/{file}`: an embedded file; long-cached when the URL carries the
/// current version.
pub async fn asset(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, "not_found", "no such asset"))?;
    let versioned = query
        .as_deref()
        .and_then(|q| q.strip_prefix("v="))
        .is_some_and(|v| v == VERSION.as_str());
    let cache = if versioned {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    Ok(respond(
        &headers,
        StatusCode::OK,
        asset.content_type,
        cache,
        asset.body,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use axum::{body::Body, http::Request};
    use tower::ServiceExt;
    use twinkle_domain::tokens::TokenKeys;

    use super::*;
    use crate::{
        backend::memory::{MemoryLog, MemoryStore},
        metrics::Metrics,
        ports::{BookingRequest, QueueEntry},
        web::{Backends, EventRuntime, Hub, SlotHub, WebConfig, app},
    };

    fn router() -> axum::Router {
        let store = Arc::new(MemoryStore::default());
        let metrics = Arc::new(Metrics::default());
        let config = Arc::new(crate::runtime::demo_event(jiff::Timestamp::now()));
        let hub = Hub::spawn(config.id.clone(), store.clone(), std::future::pending());
        let slots = SlotHub::spawn(
            config.clone(),
            store.clone(),
            metrics.clone(),
            std::future::pending(),
        );
        let (_, shutdown) = tokio::sync::watch::channel(false);
        app(super::AppState::new(
            vec![EventRuntime { config, hub, slots }],
            TokenKeys::from_secret(b"test-secret-test-secret-test-secret!").unwrap(),
            Backends {
                queue_log: Arc::new(MemoryLog::<QueueEntry>::default()),
                queue_store: store.clone(),
                booking_log: Arc::new(MemoryLog::<BookingRequest>::default()),
                bookings: store,
            },
            metrics,
            WebConfig::default(),
            shutdown,
        ))
    }

    async fn get(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = router()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h.get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn index_is_html_with_strict_csp_and_versioned_assets() {
        let (status, h, body) = get("/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&h, "cache-control"), "no-cache");
        let csp = header(&h, "content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
        assert!(body.contains(r#"<meta name="tt-events" content="demo">"#));
        assert!(body.contains(&format!("/assets/app.js?v={}", *VERSION)));
        assert!(!body.contains("{{"), "every placeholder filled");
        // No inline script: every <script> has a src.
        assert_eq!(
            body.matches("<script").count(),
            body.matches("<script src=").count()
        );
        assert!(!body.contains(" style="), "no inline styles");
    }

    #[tokio::test]
    async fn event_pages_and_unknown_events() {
        let (status, h, body) = get("/events/demo", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert!(body.contains("/assets/app.css?v="));
        let (status, h, _) = get("/events/nope", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(header(&h, "content-type").starts_with("text/html"));
        let (status, ..) = get("/events/NOT_AN_ID", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn assets_have_types_and_cache_rules() {
        for (file, ct) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("i18n.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let (status, h, body) = get(&format!("/assets/{file}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "{file}");
            assert_eq!(header(&h, "content-type"), ct, "{file}");
            assert_eq!(header(&h, "cache-control"), "no-cache", "{file}");
            assert!(h.contains_key("content-security-policy"));
            assert!(!body.is_empty());
            let versioned = format!("/assets/{file}?v={}", *VERSION);
            let (_, h, _) = get(&versioned, &[]).await;
            assert_eq!(header(&h, "cache-control"), CACHE_IMMUTABLE, "{file}");
            let (_, h, _) = get(&format!("/assets/{file}?v=old"), &[]).await;
            assert_eq!(header(&h, "cache-control"), "no-cache", "{file}");
        }
    }

    #[tokio::test]
    async fn etag_revalidation_answers_304() {
        let (_, h, _) = get("/assets/app.js", &[]).await;
        let etag = header(&h, "etag").to_owned();
        let (status, h, body) = get("/assets/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&h, "etag"), etag);
        let (status, ..) = get("/assets/app.js", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(status, StatusCode::OK);
        let (_, h, _) = get("/", &[]).await;
        let etag = header(&h, "etag").to_owned();
        let (status, ..) = get("/", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn unknown_assets_are_json_404s() {
        for uri in [
            "/assets/nope.js",
            "/assets/..%2Fsrc%2Flib.rs",
            "/assets/index.html",
            "/assets/",
        ] {
            let (status, h, body) = get(uri, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(header(&h, "content-type").starts_with("application/json"));
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["code"], "not_found", "{uri}");
        }
    }

    #[test]
    fn every_asset_the_document_names_is_served() {
        for part in INDEX.split("/assets/").skip(1) {
            let name = part.split('?').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is linked but not embedded"
            );
        }
    }
}
