//! The one error type of the HTTP layer: every failure is JSON
//! `{"code", "message"}` with a stable code and the right status; a backend
//! failure is a 503 with a generic message (details go to the log only).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use twinkle_domain::{queue::EnterRefusal, tokens::TokenError};

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unknown_event`, `invalid_ticket`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

/// An HTTP error answer.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn unknown_event(event: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_event",
            format!("no event {event:?} is on sale here"),
        )
    }

    pub fn missing_ticket() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_ticket",
            "a queue ticket is required: enter the queue first",
        )
    }

    pub fn missing_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "an admission token is required (Authorization: Bearer …)",
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this client; retry later",
            )
        }
    }

    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid: {detail}"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }
}

impl From<TokenError> for AppError {
    fn from(err: TokenError) -> Self {
        let code = match err {
            TokenError::Expired => "expired_token",
            TokenError::WrongEvent => "wrong_event",
            _ => "invalid_token",
        };
        Self::new(StatusCode::UNAUTHORIZED, code, err.to_string())
    }
}

impl From<EnterRefusal> for AppError {
    fn from(refusal: EnterRefusal) -> Self {
        let code = match refusal {
            EnterRefusal::NotOpenYet { .. } => "queue_not_open",
            EnterRefusal::Closed { .. } => "sale_closed",
        };
        Self::new(StatusCode::CONFLICT, code, refusal.to_string())
    }
}

impl From<crate::Error> for AppError {
    fn from(err: crate::Error) -> Self {
        tracing::error!(%err, "backend failure");
        Self {
            retry_after_secs: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                "the service is briefly unavailable; retry in a moment (your place is kept)",
            )
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(value) = self
            .retry_after_secs
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, AppError>;
