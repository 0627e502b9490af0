//! Request extractors whose rejections are our JSON errors, and where queue
//! tickets and admission tokens are read from.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::{HeaderMap, header},
};
use serde::de::DeserializeOwned;

use super::error::AppError;

/// Largest request body any endpoint accepts.
pub const BODY_LIMIT: usize = 4096;

/// An optional JSON body: empty means `T::default()`; anything else must be
/// valid JSON for `T` (400), at most [`BODY_LIMIT`] bytes (413).
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(AppError::invalid_json)
    }
}

/// A required JSON body: must be valid JSON for `T` (400 `invalid_json`,
/// also when empty), at most [`BODY_LIMIT`] bytes (413).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::invalid_json("a JSON body is required"));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(AppError::invalid_json)
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_) => AppError::payload_too_large(BODY_LIMIT),
            other => AppError::invalid_json(other.body_text()),
        })
}

/// The cookie holding an event's queue ticket.
pub fn ticket_cookie_name(event: &str) -> String {
    format!("tt_queue_{event}")
}

/// A bearer token from `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The queue ticket: `Authorization: Bearer` first, then the event's cookie.
pub fn queue_ticket(headers: &HeaderMap, event: &str) -> Option<String> {
    if let Some(token) = bearer(headers) {
        return Some(token.to_owned());
    }
    let wanted = ticket_cookie_name(event);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == wanted)
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn ticket_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(queue_ticket(&h, "demo"), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tt_queue_demo=abc; tt_queue_other=x"),
        );
        assert_eq!(queue_ticket(&h, "demo").as_deref(), Some("abc"));
        assert_eq!(queue_ticket(&h, "nope"), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(queue_ticket(&h, "demo").as_deref(), Some("xyz"));
    }
}
