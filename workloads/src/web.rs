//! The HTTP surface of the local stack.

use axum::{Json, Router, response::Html, routing::get};
use serde::Serialize;

/// What `/healthz` answers.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// Builds the router. Kept free of sockets so tests drive it with `oneshot`.
pub fn app() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
}

async fn index() -> Html<&'static str> {
    // Honest placeholder until the customer pages land (issue #5).
    Html(include_str!("placeholder.html"))
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request, http::StatusCode};
    use tower::ServiceExt;

    async fn get_body(uri: &str) -> (StatusCode, String) {
        let response = app()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_reports_ok_and_version() {
        let (status, body) = get_body("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    }

    #[tokio::test]
    async fn index_says_it_is_a_placeholder() {
        let (status, body) = get_body("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Twinkle Ticket"));
        assert!(body.contains("not built yet"), "placeholder must say so");
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let (status, _) = get_body("/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
