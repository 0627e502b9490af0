//! Queue endpoints: enter (the "book" button), status polling, session
//! heartbeat and leave, and the public event description.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use governor::clock::{Clock, DefaultClock};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use twinkle_domain::{
    EventConfig, OpeningMode, QueueId, QueueStatus, Slot,
    queue::{self, EntryWindow},
    tokens::{TokenKind, Verified},
};

use super::{
    AppState, EventRuntime,
    error::{ApiResult, AppError},
    extract::{OptionalJson, bearer, queue_ticket, ticket_cookie_name},
};
use crate::{metrics::EnterLabels, ports::QueueEntry};

/// The client's IP, for rate limiting.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.0.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Self(peer))
    }
}

/// Optional body of the enter request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnterRequest {
    /// Preferred language of the pages (`ko` or `en`); informational.
    #[serde(default)]
    pub lang: Option<String>,
}

/// Answer to entering the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnterResponse {
    pub event_id: String,
    pub queue_id: String,
    /// The signed queue ticket (also set as an HttpOnly cookie).
    pub ticket: String,
    /// True when a valid ticket was presented: the same place is kept.
    pub reentered: bool,
    pub status_url: String,
    pub ws_url: String,
}

fn enter_metric(state: &AppState, event: &str, result: &str) {
    state
        .0
        .metrics
        .enter
        .get_or_create(&EnterLabels {
            event: event.to_owned(),
            result: result.to_owned(),
        })
        .inc();
}

/// Enter the queue ("book" button).
#[utoipa::path(
    post,
    path = "/api/events/{event}/queue",
    params(("event" = String, Path, description = "Event id")),
    request_body(content = Option<EnterRequest>, content_type = "application/json"),
    responses(
        (status = 201, description = "Entered: a new place", body = EnterResponse),
        (status = 200, description = "Re-entered with a valid ticket: same place (an entry this region never saw, made in the other region of a DR pair, is appended again and numbered)", body = EnterResponse),
        (status = 400, description = "Malformed body", body = super::error::ErrorBody),
        (status = 404, description = "Unknown event", body = super::error::ErrorBody),
        (status = 409, description = "Queue not open yet / sale closed", body = super::error::ErrorBody),
        (status = 413, description = "Body too large", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited (see Retry-After)", body = super::error::ErrorBody),
        (status = 503, description = "Backend unavailable", body = super::error::ErrorBody),
    ),
    tag = "queue"
)]
pub async fn enter(
    State(state): State<AppState>,
    Path(event): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<EnterRequest>,
) -> ApiResult<Response> {
    tracing::trace!(lang = ?body.lang, %event, "enter");
    if let Err(not_until) = state.0.limiter.check_key(&ip) {
        enter_metric(&state, &event, "rate_limited");
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Err(AppError::rate_limited(wait.as_secs_f64().ceil() as u64));
    }
    let rt = state.event(&event)?;
    let cfg = &rt.config;
    let now = Timestamp::now();

    // Re-entry with a valid ticket keeps the same place: one per customer.
    if let Some(ticket) = queue_ticket(&headers, cfg.id.as_str())
        && let Ok(v) = state.0.keys.verify(&ticket, TokenKind::Queue, &cfg.id)
    {
        reenter(&state, rt, &v.queue_id, now).await?;
        enter_metric(&state, &event, "reentered");
        return Ok(enter_response(&state, cfg, &v.queue_id, ticket, true));
    }
    let window =
        queue::entry_window(cfg, now).inspect_err(|_| enter_metric(&state, &event, "refused"))?;

    let queue_id: QueueId = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .parse()
        .map_err(crate::Error::from)?;
    let entry = QueueEntry {
        event: cfg.id.clone(),
        queue_id: queue_id.clone(),
        entered_at: now,
        pre_queue: window == EntryWindow::PreQueue,
    };
    let started = std::time::Instant::now();
    state
        .0
        .log
        .append(&entry)
        .await
        .inspect_err(|_| enter_metric(&state, &event, "failed"))?;
    state
        .0
        .metrics
        .produce_seconds
        .get_or_create(&crate::metrics::Metrics::label(&cfg.id))
        .observe(started.elapsed().as_secs_f64());

    let expires = cfg
        .closes_at
        .checked_add(std::time::Duration::from_secs(3600))
        .unwrap_or(cfg.closes_at);
    let ticket = state
        .0
        .keys
        .issue(TokenKind::Queue, &cfg.id, &queue_id, now, expires)
        .map_err(crate::Error::from)?;
    enter_metric(&state, &event, "entered");
    Ok(enter_response(&state, cfg, &queue_id, ticket, false))
}

/// A ticket holder whose place this region's queue does not know gets
/// their entry appended again: tickets are valid in both regions of a DR
/// pair, but an entry made in the other region just before it died may not
/// have been replicated. The keeper places a queue id once, so appending
/// one already placed (or held for the draw) changes nothing.
async fn reenter(
    state: &AppState,
    rt: &EventRuntime,
    queue_id: &QueueId,
    now: Timestamp,
) -> ApiResult<()> {
    let cfg = &rt.config;
    if sequence_of(state, rt, queue_id).await?.is_some() {
        return Ok(());
    }
    // After the sale closed nobody is placed any more.
    let Ok(window) = queue::entry_window(cfg, now) else {
        return Ok(());
    };
    let entry = QueueEntry {
        event: cfg.id.clone(),
        queue_id: queue_id.clone(),
        entered_at: now,
        pre_queue: window == EntryWindow::PreQueue,
    };
    state.0.log.append(&entry).await?;
    Ok(())
}

fn enter_response(
    state: &AppState,
    cfg: &EventConfig,
    queue_id: &QueueId,
    ticket: String,
    reentered: bool,
) -> Response {
    let cookie = cookie::Cookie::build((ticket_cookie_name(cfg.id.as_str()), ticket.clone()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(state.0.config.cookie_secure)
        .path("/")
        .build();
    let body = EnterResponse {
        event_id: cfg.id.to_string(),
        queue_id: queue_id.to_string(),
        ticket,
        reentered,
        status_url: format!("/api/events/{}/queue/status", cfg.id),
        ws_url: format!("/ws/events/{}/queue", cfg.id),
    };
    let status = if reentered {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        [(header::SET_COOKIE, cookie.to_string())],
        Json(body),
    )
        .into_response()
}

/// Verifies the queue ticket of a request for this event.
pub(super) fn verify_ticket(
    state: &AppState,
    rt: &EventRuntime,
    ticket: Option<String>,
) -> ApiResult<Verified> {
    let ticket = ticket.ok_or_else(AppError::missing_ticket)?;
    Ok(state
        .0
        .keys
        .verify(&ticket, TokenKind::Queue, &rt.config.id)?)
}

/// A customer's status: O(1) store work (their number, and for the admitted
/// their session), counters from the pod's hub. While the queue projection
/// is behind (being restored), "retry" rather than a status that lost the
/// customer's place or session.
pub(super) async fn status_of(
    state: &AppState,
    rt: &EventRuntime,
    id: &QueueId,
    sequence: Option<u64>,
) -> ApiResult<QueueStatus> {
    if rt.hub.behind() {
        return Err(super::projection::queue_behind());
    }
    let cfg = &rt.config;
    let now = Timestamp::now();
    let mut status = queue::status(sequence, &rt.hub.counters(), cfg, now);
    if status.admitted {
        let read = state
            .0
            .store
            .sessions(&cfg.id, std::slice::from_ref(id))
            .await?;
        if read.value.first().copied().flatten().is_some() {
            let expires = now
                .checked_add(cfg.queue.session_ttl)
                .unwrap_or(cfg.closes_at)
                .min(cfg.closes_at);
            status.token = Some(
                state
                    .0
                    .keys
                    .issue(TokenKind::Admission, &cfg.id, id, now, expires)
                    .map_err(crate::Error::from)?,
            );
        } else {
            require_whole_queue(rt, read.watermark)?;
            status.admitted = false;
            status.position = None;
            status.ahead = None;
            status.eta_seconds = None;
            status.session_ended = true;
        }
    }
    Ok(status)
}

/// `Ok` if a queue projection read at `watermark` is whole: its absences
/// (no number, no session) are then true.
pub(super) fn require_whole_queue(rt: &EventRuntime, watermark: Option<u64>) -> ApiResult<()> {
    if rt.hub.projection().is_whole(watermark) {
        Ok(())
    } else {
        Err(super::projection::queue_behind())
    }
}

/// A customer's number, if the (whole) projection has one.
pub(super) async fn sequence_of(
    state: &AppState,
    rt: &EventRuntime,
    id: &QueueId,
) -> ApiResult<Option<u64>> {
    let read = state
        .0
        .store
        .sequences(&rt.config.id, std::slice::from_ref(id))
        .await?;
    let sequence = read.value.first().copied().flatten();
    if sequence.is_none() {
        require_whole_queue(rt, read.watermark)?;
    }
    Ok(sequence)
}

/// Poll the queue status (same JSON as the WebSocket pushes).
#[utoipa::path(
    get,
    path = "/api/events/{event}/queue/status",
    params(("event" = String, Path, description = "Event id")),
    responses(
        (status = 200, body = QueueStatus),
        (status = 401, description = "Missing, forged, expired or cross-event ticket", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody),
        (status = 503, description = "Places are being restored from the queue journal (`projection_behind`): retry; the place is kept", body = super::error::ErrorBody),
    ),
    security(("ticket_cookie" = []), ("bearer" = [])),
    tag = "queue"
)]
pub async fn status(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<QueueStatus>> {
    let rt = state.event(&event)?;
    let v = verify_ticket(&state, rt, queue_ticket(&headers, rt.config.id.as_str()))?;
    let sequence = sequence_of(&state, rt, &v.queue_id).await?;
    Ok(Json(status_of(&state, rt, &v.queue_id, sequence).await?))
}

/// Verifies the admission token (`Authorization: Bearer`) for this event.
pub(super) fn admission(
    state: &AppState,
    rt: &EventRuntime,
    headers: &HeaderMap,
) -> ApiResult<Verified> {
    let token = bearer(headers).ok_or_else(AppError::missing_token)?;
    Ok(state
        .0
        .keys
        .verify(token, TokenKind::Admission, &rt.config.id)?)
}

/// Keep an admitted session alive (the booking page calls this).
#[utoipa::path(
    post,
    path = "/api/events/{event}/session/heartbeat",
    params(("event" = String, Path, description = "Event id")),
    responses(
        (status = 204, description = "Session extended"),
        (status = 401, body = super::error::ErrorBody),
        (status = 410, description = "Session ended or expired", body = super::error::ErrorBody),
        (status = 503, description = "Sessions are being restored from the queue journal: retry", body = super::error::ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "session"
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let rt = state.event(&event)?;
    let v = admission(&state, rt, &headers)?;
    let q = &rt.config.queue;
    let live = state
        .0
        .store
        .heartbeat(
            &rt.config.id,
            &v.queue_id,
            Timestamp::now(),
            q.session_ttl,
            q.heartbeat_timeout,
        )
        .await?;
    if live {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Gone from a projection that lost writes is not gone: the keeper
    // revives every session within its lifetime when it restores.
    let read = state.0.store.sessions(&rt.config.id, &[]).await?;
    require_whole_queue(rt, read.watermark)?;
    Err(AppError::new(
        StatusCode::GONE,
        "session_ended",
        "this session has ended or expired",
    ))
}

/// Leave: end the admitted session now, freeing the place for the next.
#[utoipa::path(
    delete,
    path = "/api/events/{event}/session",
    params(("event" = String, Path, description = "Event id")),
    responses((status = 204), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])),
    tag = "session"
)]
pub async fn leave(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let rt = state.event(&event)?;
    let v = admission(&state, rt, &headers)?;
    state
        .0
        .store
        .end_session(&rt.config.id, &v.queue_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the pages need to know about an event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventInfo {
    pub id: String,
    pub title: String,
    #[schema(value_type = String, format = DateTime)]
    pub opens_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub closes_at: Timestamp,
    pub slots: Vec<Slot>,
    pub per_customer_limit: u32,
    pub opening_mode: OpeningMode,
    pub admission_per_second: u32,
}

/// Describe an event.
#[utoipa::path(
    get,
    path = "/api/events/{event}",
    params(("event" = String, Path, description = "Event id")),
    responses((status = 200, body = EventInfo), (status = 404, body = super::error::ErrorBody)),
    tag = "events"
)]
pub async fn event_info(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> ApiResult<Json<EventInfo>> {
    let cfg = &state.event(&event)?.config;
    Ok(Json(EventInfo {
        id: cfg.id.to_string(),
        title: cfg.title.clone(),
        opens_at: cfg.opens_at,
        closes_at: cfg.closes_at,
        slots: cfg.slots.clone(),
        per_customer_limit: cfg.per_customer_limit,
        opening_mode: cfg.queue.opening_mode,
        admission_per_second: cfg.queue.admission_per_second,
    }))
}
