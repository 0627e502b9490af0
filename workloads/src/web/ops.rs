//! Liveness, readiness, metrics, OpenAPI and the JSON 404/405 fallbacks.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;
use utoipa::OpenApi;

use super::{AppState, error::AppError};

/// Alive (the process answers).
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive")), tag = "ops")]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Ready: the log and the store answer.
#[utoipa::path(
    get,
    path = "/readyz",
    responses((status = 200, description = "Backends reachable"), (status = 503, body = super::error::ErrorBody)),
    tag = "ops"
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.0.store.ready().await?;
    state.0.log.ready().await?;
    state.0.booking_log.ready().await?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for rt in state.0.events.values() {
        state
            .0
            .metrics
            .observe_counters(&rt.config.id, &rt.hub.counters());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.0.metrics.render(),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Twinkle Ticket API", description = "Virtual waiting room and booking. Errors are `{\"code\", \"message\"}`."),
    paths(
        super::queue::event_info,
        super::queue::enter,
        super::queue::status,
        super::queue::heartbeat,
        super::queue::leave,
        super::booking::slots,
        super::booking::book,
        super::booking::booking_status,
        healthz,
        readyz,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ticket_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("tt_queue_{event}"))),
        );
    }
}

/// The OpenAPI 3 document of every HTTP endpoint.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}
