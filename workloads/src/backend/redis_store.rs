//! The production queue store: Redis, every multi-key change in one Lua
//! script (atomic, no locks). Keys share a `{event}` hash tag so one event's
//! state lives in one Redis Cluster slot.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rand::{SeedableRng, seq::SliceRandom};
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use twinkle_domain::{EventId, OpeningMode, QueueCounters, QueueId, queue::session_deadline};

use crate::{
    Error, Result,
    ports::{AdmitOutcome, Assignment, QueueEntry, QueueStore},
};

/// Redis key names of one event.
struct Keys {
    seq: String,
    ids: String,
    ctr: String,
    pending: String,
    pending_set: String,
    active: String,
    admitted: String,
    lease: String,
}

impl Keys {
    fn of(event: &EventId) -> Self {
        let k = |name: &str| format!("tt:{{{event}}}:q:{name}");
        Self {
            seq: k("seq"),
            ids: k("ids"),
            ctr: k("ctr"),
            pending: k("pending"),
            pending_set: k("pendingset"),
            active: k("active"),
            admitted: k("admitted"),
            lease: k("lease"),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Redis-backed [`QueueStore`].
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    assign: Script,
    draw: Script,
    admit: Script,
    heartbeat: Script,
    lease: Script,
    pub(super) booking: super::redis_booking::Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// Connects (with automatic reconnection) to `url`.
    ///
    /// `rediss://` speaks TLS, as ElastiCache with in-transit encryption
    /// requires: the server is verified against the system's roots, or the
    /// bundle named by `SSL_CERT_FILE` / `SSL_CERT_DIR` (how a private CA is
    /// added). The AUTH token goes in the URL: `rediss://:TOKEN@host:6379`.
    pub async fn connect(url: &str) -> Result<Self> {
        install_tls_provider();
        let client = redis::Client::open(url)?;
        let con = ConnectionManager::new(client).await?;
        Ok(Self {
            con,
            assign: Script::new(include_str!("lua/assign.lua")),
            draw: Script::new(include_str!("lua/draw.lua")),
            admit: Script::new(include_str!("lua/admit.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
            booking: super::redis_booking::Scripts::default(),
        })
    }

    pub(super) fn con(&self) -> ConnectionManager {
        self.con.clone()
    }
}

/// rustls needs one process-wide crypto provider; redis builds its TLS
/// config from that default (for `rediss://`, and any other TLS scheme it
/// accepts, so it is installed whatever the URL). Installing fails only if
/// one is installed already, which is fine.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `url` without its password (the AUTH token), for messages and logs:
/// `rediss://:TOKEN@host:6379/0` → `rediss://:***@host:6379/0`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redis url>".to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{userinfo}@{host}"),
        },
        None => url.to_owned(),
    }
}

#[async_trait]
impl QueueStore for RedisStore {
    async fn assign(&self, entries: &[QueueEntry], mode: OpeningMode) -> Result<Vec<Assignment>> {
        let mut out = Vec::with_capacity(entries.len());
        // One script call per event run (a batch normally holds one event).
        for group in entries.chunk_by(|a, b| a.event == b.event) {
            let keys = Keys::of(&group[0].event);
            let mut inv = self.assign.prepare_invoke();
            inv.key(&keys.seq)
                .key(&keys.ids)
                .key(&keys.ctr)
                .key(&keys.pending)
                .key(&keys.pending_set)
                .arg(u8::from(mode == OpeningMode::ShuffleAtOpen));
            for e in group {
                inv.arg(e.queue_id.as_str()).arg(u8::from(e.pre_queue));
            }
            let seqs: Vec<u64> = inv.invoke_async(&mut self.con()).await?;
            out.extend(seqs.into_iter().map(|s| {
                if s == 0 {
                    Assignment::AwaitingDraw
                } else {
                    Assignment::Sequence(s)
                }
            }));
        }
        Ok(out)
    }

    async fn draw(&self, event: &EventId, seed: u64) -> Result<Option<u64>> {
        let keys = Keys::of(event);
        let mut con = self.con();
        for _ in 0..10 {
            let ids: Vec<String> = con.lrange(&keys.pending, 0, -1).await?;
            let flags: std::collections::HashMap<String, String> =
                con.hgetall(&keys.pending_set).await?;
            let (mut early, late): (Vec<String>, Vec<String>) = ids
                .into_iter()
                .partition(|id| flags.get(id).map(String::as_str) == Some("1"));
            early.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut inv = self.draw.prepare_invoke();
            inv.key(&keys.seq)
                .key(&keys.ids)
                .key(&keys.ctr)
                .key(&keys.pending)
                .key(&keys.pending_set);
            for id in early.iter().chain(&late) {
                inv.arg(id);
            }
            let placed: i64 = inv.invoke_async(&mut con).await?;
            match placed {
                -1 => return Ok(None),
                -2 => continue, // an entry arrived meanwhile: read again
                n => return Ok(Some(u64::try_from(n).unwrap_or(0))),
            }
        }
        Err(Error::Backend(
            "opening draw kept racing new entries".into(),
        ))
    }

    async fn drawn(&self, event: &EventId) -> Result<bool> {
        let flag: Option<String> = self.con().hget(Keys::of(event).ctr, "drawn").await?;
        Ok(flag.as_deref() == Some("1"))
    }

    async fn counters(&self, event: &EventId) -> Result<QueueCounters> {
        let keys = Keys::of(event);
        let ((assigned, serving, rate), active): ((Option<u64>, Option<u64>, Option<f64>), u64) =
            redis::pipe()
                .cmd("HMGET")
                .arg(&keys.ctr)
                .arg(&["assigned", "serving", "rate"])
                .zcard(&keys.active)
                .query_async(&mut self.con())
                .await?;
        Ok(QueueCounters {
            assigned: assigned.unwrap_or(0),
            serving: serving.unwrap_or(0),
            active,
            admitted_per_second: rate.unwrap_or(0.0),
        })
    }

    async fn sequences(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<u64>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = ids.iter().map(QueueId::as_str).collect();
        Ok(redis::cmd("HMGET")
            .arg(Keys::of(event).seq)
            .arg(&names)
            .query_async(&mut self.con())
            .await?)
    }

    async fn sessions(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<Timestamp>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = ids.iter().map(QueueId::as_str).collect();
        let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
            .arg(Keys::of(event).active)
            .arg(&names)
            .query_async(&mut self.con())
            .await?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(scores
            .into_iter()
            .map(|s| s.and_then(|ms| Timestamp::from_millisecond(ms as i64).ok()))
            .collect())
    }

    async fn admit(
        &self,
        event: &EventId,
        now: Timestamp,
        budget: u64,
        max_active: u64,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<AdmitOutcome> {
        let keys = Keys::of(event);
        let now_ms = now.as_millisecond();
        // Admission counts as the first heartbeat; admit.lua stores this.
        let first_deadline =
            session_deadline(now, now, session_ttl, heartbeat_timeout).as_millisecond();
        let (admitted, expired, assigned, serving, active): (u64, u64, u64, u64, u64) = self
            .admit
            .key(&keys.ctr)
            .key(&keys.ids)
            .key(&keys.active)
            .key(&keys.admitted)
            .arg(now_ms)
            .arg(budget)
            .arg(max_active)
            .arg(first_deadline)
            .invoke_async(&mut self.con())
            .await?;
        Ok(AdmitOutcome {
            admitted,
            expired,
            counters: QueueCounters {
                assigned,
                serving,
                active,
                admitted_per_second: 0.0,
            },
        })
    }

    async fn publish_rate(&self, event: &EventId, per_second: f64) -> Result<()> {
        let _: () = self
            .con()
            .hset(Keys::of(event).ctr, "rate", format!("{per_second:.3}"))
            .await?;
        Ok(())
    }

    async fn heartbeat(
        &self,
        event: &EventId,
        id: &QueueId,
        now: Timestamp,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<bool> {
        let keys = Keys::of(event);
        let live: i64 = self
            .heartbeat
            .key(&keys.active)
            .key(&keys.admitted)
            .arg(id.as_str())
            .arg(now.as_millisecond())
            .arg(millis(session_ttl))
            .arg(millis(heartbeat_timeout))
            .invoke_async(&mut self.con())
            .await?;
        Ok(live == 1)
    }

    async fn end_session(&self, event: &EventId, id: &QueueId) -> Result<bool> {
        let keys = Keys::of(event);
        let (removed, _): (u64, u64) = redis::pipe()
            .atomic()
            .zrem(&keys.active, id.as_str())
            .hdel(&keys.admitted, id.as_str())
            .query_async(&mut self.con())
            .await?;
        Ok(removed == 1)
    }

    async fn lead(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool> {
        let held: i64 = self
            .lease
            .key(Keys::of(event).lease)
            .arg(holder)
            .arg(millis(ttl))
            .invoke_async(&mut self.con())
            .await?;
        Ok(held == 1)
    }

    async fn ready(&self) -> Result<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.con()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn redaction_hides_the_password_only() {
        assert_eq!(
            redacted("rediss://:s3cret@cache.example:6379/0"),
            "rediss://:***@cache.example:6379/0"
        );
        assert_eq!(
            redacted("redis://app:p@ss@10.0.0.1:6379"),
            "redis://app:***@10.0.0.1:6379"
        );
        assert_eq!(redacted("redis://app@h:1"), "redis://app@h:1");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("not a url"), "<redis url>");
    }
}
