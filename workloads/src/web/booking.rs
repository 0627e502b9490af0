//! Booking endpoints: book a slot (accepted into the bookings log, decided
//! by the decider), read a booking's outcome, and the live seats.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use twinkle_domain::{
    Booking, BookingStatus, QueueId, RequestId, SlotAvailability, SlotId,
    booking::{self, InvalidIdempotencyKey},
    tokens::TokenKind,
};

use super::{
    AppState, EventRuntime,
    error::{ApiResult, AppError},
    extract::{ApiJson, bearer, queue_ticket},
    queue::admission,
};
use crate::{
    metrics::BookLabels,
    ports::{BookingRequest, Registration},
};

/// Body of a booking request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookRequest {
    /// The slot to book (an id from the event's slots).
    pub slot: String,
}

/// Every slot's live seats.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlotsResponse {
    pub slots: Vec<SlotAvailability>,
}

/// The header a client sets to make retries name the same request.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn book_metric(state: &AppState, event: &str, result: &str) {
    state
        .0
        .metrics
        .book_requests
        .get_or_create(&BookLabels {
            event: event.to_owned(),
            result: result.to_owned(),
        })
        .inc();
}

fn accepted(event: &str, booking: Booking) -> Response {
    let location = format!("/api/events/{event}/bookings/{}", booking.request_id);
    let mut response = (StatusCode::ACCEPTED, Json(booking)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Book a slot.
#[utoipa::path(
    post,
    path = "/api/events/{event}/bookings",
    params(
        ("event" = String, Path, description = "Event id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client retry key (1-128 visible ASCII): the same key names the same request"),
    ),
    request_body = BookRequest,
    responses(
        (status = 202, description = "Accepted; the outcome follows (GET the booking or watch it on the slots WebSocket)", body = Booking),
        (status = 400, description = "Malformed body or Idempotency-Key", body = super::error::ErrorBody),
        (status = 401, description = "Missing, forged, expired or cross-event admission token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown event or slot", body = super::error::ErrorBody),
        (status = 409, description = "Sale closed, or the Idempotency-Key was used for another slot", body = super::error::ErrorBody),
        (status = 410, description = "The admitted session has ended or expired", body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody),
        (status = 503, description = "Backend unavailable: retry with the same Idempotency-Key", body = super::error::ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "booking"
)]
pub async fn book(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BookRequest>,
) -> ApiResult<Response> {
    let rt = state.event(&event)?;
    let cfg = &rt.config;
    let v =
        admission(&state, rt, &headers).inspect_err(|_| book_metric(&state, &event, "refused"))?;
    let now = Timestamp::now();
    if now >= cfg.closes_at {
        book_metric(&state, &event, "refused");
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "sale_closed",
            format!("the sale closed at {}", cfg.closes_at),
        ));
    }
    let slot = body
        .slot
        .parse::<SlotId>()
        .ok()
        .filter(|s| cfg.slots.iter().any(|c| &c.id == s))
        .ok_or_else(|| {
            book_metric(&state, &event, "refused");
            AppError::new(
                StatusCode::NOT_FOUND,
                "unknown_slot",
                format!("event {} has no slot {:?}", cfg.id, body.slot),
            )
        })?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|k| k.to_str().map_err(|_| InvalidIdempotencyKey))
        .transpose()
        .and_then(|k| {
            k.map(|k| booking::request_id_for_key(&cfg.id, &v.queue_id, k))
                .transpose()
        })
        .map_err(|err| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                err.to_string(),
            )
        })?;
    let request = BookingRequest {
        event: cfg.id.clone(),
        request_id: key.clone().unwrap_or_else(booking::new_request_id),
        queue_id: v.queue_id.clone(),
        slot,
        requested_at: now,
    };
    let store = &state.0.bookings;

    // A retry of a request that was accepted before keeps its id even if the
    // session has since ended (e.g. ended by that very booking).
    let mut registrations_complete = true;
    let known = match &key {
        Some(id) => {
            let read = store.bookings(&cfg.id, std::slice::from_ref(id)).await?;
            registrations_complete = read.value.registrations_complete;
            let found = read.value.found.into_iter().next().flatten();
            // Not found in a projection whose decisions are behind: it may
            // have been decided already; wait for the repair rather than
            // judge the retry by the customer's (possibly lost) session. A
            // lost registration alone is harmless here: the request is
            // appended again and the decider answers it once.
            if found.is_none() {
                rt.slots.projection().require_whole(read.watermark)?;
            }
            found
        }
        None => None,
    };
    match known {
        Some(b) if b.customer != request.queue_id || b.booking.slot != request.slot => {
            return Err(conflict());
        }
        Some(b) if b.booking.status != BookingStatus::Pending => {
            book_metric(&state, &event, "repeat");
            return Ok(accepted(&event, b.booking));
        }
        Some(_) => {}
        // A retry whose registration may have been lost with the store,
        // from a customer whose session has ended since, may be the retry
        // of a request still to be decided: "retry", not "gone".
        None => match ensure_session(&state, rt, &v.queue_id).await {
            Err(gone) if gone.status == StatusCode::GONE && !registrations_complete => {
                return Err(super::projection::behind());
            }
            other => other?,
        },
    }
    match store.register(&request).await? {
        Registration::Conflict => return Err(conflict()),
        Registration::New => book_metric(&state, &event, "accepted"),
        Registration::Repeat => book_metric(&state, &event, "repeat"),
    }
    // Appended again on a repeat: the first attempt may have failed before
    // its append; the decider answers a second copy with the same decision.
    state
        .0
        .booking_log
        .append(&request)
        .await
        .inspect_err(|_| book_metric(&state, &event, "failed"))?;
    Ok(accepted(
        &event,
        Booking {
            request_id: request.request_id,
            slot: request.slot,
            status: BookingStatus::Pending,
        },
    ))
}

fn conflict() -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "idempotency_conflict",
        "this Idempotency-Key was already used for a different booking",
    )
}

/// Refuses customers whose admitted session has ended (booked out, left,
/// expired or abandoned): the admission token alone outlives abandonment.
async fn ensure_session(state: &AppState, rt: &EventRuntime, id: &QueueId) -> ApiResult<()> {
    let read = state
        .0
        .store
        .sessions(&rt.config.id, std::slice::from_ref(id))
        .await?;
    let live = read
        .value
        .first()
        .copied()
        .flatten()
        .is_some_and(|deadline| deadline > Timestamp::now());
    if live {
        Ok(())
    } else {
        // A session missing from a queue projection that lost writes is
        // restored by the keeper: "retry", not "gone".
        super::queue::require_whole_queue(rt, read.watermark)?;
        Err(AppError::new(
            StatusCode::GONE,
            "session_ended",
            "your admitted session has ended or expired; enter the queue again",
        ))
    }
}

/// The customer asking: an admission token or queue ticket as bearer, or the
/// ticket cookie. Both carry the queue id; bookings are only shown to theirs.
pub(super) fn customer(
    state: &AppState,
    rt: &EventRuntime,
    headers: &HeaderMap,
) -> ApiResult<QueueId> {
    let keys = &state.0.keys;
    if let Some(token) = bearer(headers) {
        let v = keys
            .verify(token, TokenKind::Admission, &rt.config.id)
            .or_else(|_| keys.verify(token, TokenKind::Queue, &rt.config.id))?;
        return Ok(v.queue_id);
    }
    let ticket =
        queue_ticket(headers, rt.config.id.as_str()).ok_or_else(AppError::missing_ticket)?;
    Ok(keys
        .verify(&ticket, TokenKind::Queue, &rt.config.id)?
        .queue_id)
}

pub(super) fn unknown_booking(id: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "unknown_booking",
        format!("no booking {id:?} of yours"),
    )
}

/// A booking's status.
#[utoipa::path(
    get,
    path = "/api/events/{event}/bookings/{request_id}",
    params(
        ("event" = String, Path, description = "Event id"),
        ("request_id" = String, Path, description = "The requestId from the 202"),
    ),
    responses(
        (status = 200, body = Booking),
        (status = 401, body = super::error::ErrorBody),
        (status = 404, description = "Unknown event, or no such booking of this customer", body = super::error::ErrorBody),
        (status = 503, description = "Bookings are being restored from the log (`projection_behind`) or the backend is unavailable: retry", body = super::error::ErrorBody),
    ),
    security(("bearer" = []), ("ticket_cookie" = [])),
    tag = "booking"
)]
pub async fn booking_status(
    State(state): State<AppState>,
    Path((event, request_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Booking>> {
    let rt = state.event(&event)?;
    let me = customer(&state, rt, &headers)?;
    let id: RequestId = request_id
        .parse()
        .map_err(|_| unknown_booking(&request_id))?;
    let read = state
        .0
        .bookings
        .bookings(&rt.config.id, std::slice::from_ref(&id))
        .await?;
    let complete = read.value.registrations_complete;
    let found = read.value.found.into_iter().next().flatten();
    if found.is_none() {
        // Unknown to a projection behind the log, or one that may have
        // lost the registration of a request not decided yet, is not
        // "unknown".
        rt.slots.projection().require_whole(read.watermark)?;
        if !complete {
            return Err(super::projection::behind());
        }
    }
    let found = found
        .filter(|b| b.customer == me)
        .ok_or_else(|| unknown_booking(&request_id))?;
    Ok(Json(found.booking))
}

/// Every slot's live seats (polling fallback of the slots WebSocket).
#[utoipa::path(
    get,
    path = "/api/events/{event}/slots",
    params(("event" = String, Path, description = "Event id")),
    responses(
        (status = 200, body = SlotsResponse),
        (status = 404, body = super::error::ErrorBody),
        (status = 503, description = "Seats are being restored from the log, or the backend is unavailable: retry", body = super::error::ErrorBody),
    ),
    tag = "booking"
)]
pub async fn slots(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> ApiResult<Json<SlotsResponse>> {
    let rt = state.event(&event)?;
    let slots = match rt.slots.seats() {
        Some(seats) => seats.as_ref().clone(),
        // Before this pod's first tick: read once.
        None => {
            let read = state.0.bookings.slot_counts(&rt.config.id).await?;
            rt.slots.projection().require_whole(read.watermark)?;
            booking::availability(&rt.config.slots, &read.value)
        }
    };
    Ok(Json(SlotsResponse { slots }))
}
