//! The waiting screen's WebSocket: pushes the same status JSON as the polling
//! endpoint whenever it changes. The ticket is checked before the upgrade
//! (401 otherwise). On shutdown the server closes with 1012 ("service
//! restart"): the client reconnects and keeps its place (the place is in the
//! shared store and the ticket, not in the connection).

use axum::{
    extract::{
        Path, Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    http::HeaderMap,
    response::Response,
};
use serde::Deserialize;
use twinkle_domain::{QueueStatus, tokens::Verified};

use super::{
    AppState, EventRuntime,
    error::ApiResult,
    extract::queue_ticket,
    queue::{status_of, verify_ticket},
};
use crate::metrics::Metrics;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// For clients that cannot send the cookie or a header on upgrade.
    ticket: Option<String>,
}

pub async fn queue_socket(
    State(state): State<AppState>,
    Path(event): Path<String>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let rt = state.event(&event)?.clone();
    let ticket = queue_ticket(&headers, rt.config.id.as_str()).or(query.ticket);
    let verified = verify_ticket(&state, &rt, ticket)?;
    Ok(small_buffers(upgrade).on_upgrade(move |socket| serve(socket, state, rt, verified)))
}

/// Clients of our sockets send only control frames and tiny JSON, so the
/// default 128 KiB read buffer (resident, and zero-filled on every read by
/// tungstenite) would be most of a waiting client's memory and idle CPU:
/// `bench_ws` measured ~131 KiB per socket with it.
pub(super) fn small_buffers(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4096)
        .max_message_size(super::extract::BODY_LIMIT)
        .max_frame_size(super::extract::BODY_LIMIT)
}

/// Counts this pod's open sockets for the metric, also on early return.
struct ClientGuard(prometheus_client::metrics::gauge::Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve(mut socket: WebSocket, state: AppState, rt: EventRuntime, v: Verified) {
    let gauge = state
        .0
        .metrics
        .ws_clients
        .get_or_create(&Metrics::label(&rt.config.id))
        .clone();
    gauge.inc();
    let _guard = ClientGuard(gauge);

    let mut counters = rt.hub.subscribe();
    let mut shutdown = state.0.shutdown.clone();
    let mut sequence = state
        .0
        .store
        .sequences(&rt.config.id, std::slice::from_ref(&v.queue_id))
        .await
        .ok()
        .and_then(|s| s.value.first().copied().flatten());
    let mut waiting_for_number = sequence
        .is_none()
        .then(|| rt.hub.await_sequence(v.queue_id.clone()));
    let mut last: Option<QueueStatus> = None;
    let mut dirty = true;
    // Set when the status could not be read: the hub only wakes us on a
    // visible change (or every few seconds), so retry on our own.
    let mut retry = false;

    loop {
        if dirty {
            dirty = false;
            match push(&mut socket, &state, &rt, &v, sequence, &mut last).await {
                Ok(Pushed::Done) => retry = false,
                Ok(Pushed::Unreadable) => retry = true,
                Err(()) => return,
            }
        }
        tokio::select! {
            // Draining wins over everything: the client must hear "restart".
            biased;
            _ = shutdown.changed() => return close_for_restart(&mut socket).await,
            () = tokio::time::sleep(super::hub::TICK), if retry => dirty = true,
            changed = counters.changed() => {
                // The hub stops only when the process drains.
                if changed.is_err() { return close_for_restart(&mut socket).await; }
                dirty = true;
            }
            assigned = async { waiting_for_number.as_mut().expect("guarded by the select condition").await },
                if waiting_for_number.is_some() => {
                waiting_for_number = None;
                if let Ok(seq) = assigned { sequence = Some(seq); dirty = true; }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the protocol layer; text is ignored.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Closes with 1012 ("service restart"): the client reconnects (to another
/// pod) and keeps its place, which lives in the store and the ticket.
async fn close_for_restart(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::RESTART,
        reason: Utf8Bytes::from_static("server restarting: reconnect, your place is kept"),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// What a push attempt did (the socket failing is `Err`).
enum Pushed {
    /// Sent, or nothing new to send.
    Done,
    /// The status could not be read (backend hiccup): try again soon.
    Unreadable,
}

/// Sends the status if it changed since the last push (a fresh admission
/// token is not a change by itself).
async fn push(
    socket: &mut WebSocket,
    state: &AppState,
    rt: &EventRuntime,
    v: &Verified,
    sequence: Option<u64>,
    last: &mut Option<QueueStatus>,
) -> Result<Pushed, ()> {
    if last.as_ref().is_some_and(|l| l.admitted) {
        return Ok(Pushed::Done); // admitted: the token was sent; nothing more to say
    }
    let Ok(status) = status_of(state, rt, &v.queue_id, sequence).await else {
        return Ok(Pushed::Unreadable);
    };
    if last.as_ref() == Some(&status) {
        return Ok(Pushed::Done);
    }
    let text = serde_json::to_string(&status).map_err(|_| ())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ())?;
    *last = Some(status);
    Ok(Pushed::Done)
}
