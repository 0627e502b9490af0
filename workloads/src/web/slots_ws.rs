//! The slot picker's WebSocket. The server pushes
//! `{"type":"slots","slots":[…]}` at connect and whenever any slot's seats
//! change (from the pod's slot hub: no per-client store work). A client with
//! a queue ticket (cookie, or `?ticket=`) may send `{"watch":"<requestId>"}`
//! and then receives `{"type":"booking","booking":{…}}` once that booking of
//! theirs is final. Bad messages get `{"type":"error","code":…}`, never a
//! disconnect. On shutdown the server closes with 1012 ("service restart").

use std::pin::Pin;

use axum::{
    extract::{
        Path, Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    http::HeaderMap,
    response::Response,
};
use futures::{StreamExt, stream::FuturesUnordered};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use twinkle_domain::{Booking, QueueId, RequestId, SlotAvailability, tokens::TokenKind};

use super::{AppState, EventRuntime, error::ApiResult, extract::queue_ticket};
use crate::ports::StoredBooking;

/// Most bookings one socket may watch at once (bounds the hub's lookups).
const MAX_WATCHES: usize = 16;

#[derive(Debug, Deserialize)]
pub struct SlotsQuery {
    /// For clients that cannot send the cookie on upgrade.
    ticket: Option<String>,
}

/// Messages the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ServerMessage<'a> {
    Slots { slots: &'a [SlotAvailability] },
    Booking { booking: &'a Booking },
    Error { code: &'static str, message: String },
}

/// Messages the client sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Watch {
    watch: String,
}

pub async fn slots_socket(
    State(state): State<AppState>,
    Path(event): Path<String>,
    Query(query): Query<SlotsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let rt = state.event(&event)?.clone();
    // Seats are public; the ticket (if any) identifies whose bookings may be
    // watched. A bad ticket is refused before the upgrade.
    let customer = match queue_ticket(&headers, rt.config.id.as_str()).or(query.ticket) {
        Some(ticket) => Some(
            state
                .0
                .keys
                .verify(&ticket, TokenKind::Queue, &rt.config.id)?
                .queue_id,
        ),
        None => None,
    };
    Ok(super::ws::small_buffers(upgrade)
        .on_upgrade(move |socket| serve(socket, state, rt, customer)))
}

type Pending = FuturesUnordered<Pin<Box<oneshot::Receiver<StoredBooking>>>>;

async fn serve(mut socket: WebSocket, state: AppState, rt: EventRuntime, me: Option<QueueId>) {
    let mut seats = rt.slots.subscribe();
    seats.mark_changed(); // send the current seats at once
    let mut shutdown = state.0.shutdown.clone();
    let mut watching: Pending = FuturesUnordered::new();
    loop {
        tokio::select! {
            // Draining wins over everything: the client must hear "restart".
            biased;
            _ = shutdown.changed() => return close_for_restart(&mut socket).await,
            changed = seats.changed() => {
                if changed.is_err() { return close_for_restart(&mut socket).await; }
                let current = seats.borrow_and_update().clone();
                if let Some(slots) = current
                    && send(&mut socket, &ServerMessage::Slots { slots: &slots }).await.is_err()
                {
                    return;
                }
            }
            Some(decided) = watching.next(), if !watching.is_empty() => {
                let Ok(b) = decided else { continue };
                // Only the booking's own customer hears about it.
                let message = if Some(&b.customer) == me.as_ref() {
                    ServerMessage::Booking { booking: &b.booking }
                } else {
                    unknown(&b.booking.request_id)
                };
                if send(&mut socket, &message).await.is_err() { return; }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = watch(&rt, me.as_ref(), &text, &mut watching);
                    if let Some(err) = reply
                        && send(&mut socket, &err).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                // Pings are answered by the protocol layer.
                Some(Ok(_)) => {}
            },
        }
    }
}

fn unknown(id: &RequestId) -> ServerMessage<'static> {
    ServerMessage::Error {
        code: "unknown_booking",
        message: format!("no booking {id} of yours"),
    }
}

/// Handles one client message; returns an error message to send, if any.
fn watch(
    rt: &EventRuntime,
    me: Option<&QueueId>,
    text: &str,
    watching: &mut Pending,
) -> Option<ServerMessage<'static>> {
    let Ok(Watch { watch }) = serde_json::from_str::<Watch>(text) else {
        return Some(ServerMessage::Error {
            code: "invalid_message",
            message: r#"expected {"watch":"<requestId>"}"#.to_owned(),
        });
    };
    if me.is_none() {
        return Some(ServerMessage::Error {
            code: "missing_ticket",
            message: "watching a booking needs the queue ticket".to_owned(),
        });
    }
    if watching.len() >= MAX_WATCHES {
        return Some(ServerMessage::Error {
            code: "too_many_watches",
            message: format!("at most {MAX_WATCHES} bookings at once"),
        });
    }
    match watch.parse::<RequestId>() {
        Ok(id) => {
            watching.push(Box::pin(rt.slots.await_final(id)));
            None
        }
        Err(_) => Some(ServerMessage::Error {
            code: "unknown_booking",
            message: format!("no booking {watch:?} of yours"),
        }),
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage<'_>) -> Result<(), ()> {
    let text = serde_json::to_string(message).map_err(|_| ())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ())
}

/// Closes with 1012 ("service restart"): the client reconnects elsewhere.
async fn close_for_restart(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::RESTART,
        reason: Utf8Bytes::from_static("server restarting: reconnect"),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
