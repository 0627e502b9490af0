//! The production queue store: Redis, every multi-key change in one Lua
//! script (atomic, no locks). Keys share a `{event}` hash tag so one event's
//! state lives in one Redis Cluster slot.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use twinkle_domain::{EventId, QueueCounters, QueueId};

use crate::{
    Error, Result,
    ports::{Projected, Projection, QueueDelta, QueueSnapshot, QueueStore},
};

/// Redis key names of one event.
struct Keys {
    seq: String,
    ids: String,
    ctr: String,
    active: String,
    admitted: String,
    lease: String,
}

impl Keys {
    fn of(event: &EventId) -> Self {
        Self::named(event, "")
    }

    /// Private names for a restore's staged copy.
    fn staged(event: &EventId) -> Self {
        Self::named(event, &format!("stage.{}.", uuid::Uuid::new_v4().simple()))
    }

    fn named(event: &EventId, prefix: &str) -> Self {
        let k = |name: &str| format!("tt:{{{event}}}:q:{prefix}{name}");
        Self {
            seq: k("seq"),
            ids: k("ids"),
            ctr: k("ctr"),
            active: k("active"),
            admitted: k("admitted"),
            lease: k("lease"),
        }
    }
}

/// Customers per request when staging a restore.
const RESTORE_CHUNK: usize = 5000;
/// Staged copies expire in case their writer dies before promoting them.
const STAGE_TTL_MS: i64 = 120_000;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A watermark as Redis holds it (`-1` or absent: none).
fn watermark(raw: Option<i64>) -> Option<u64> {
    raw.and_then(|w| u64::try_from(w).ok())
}

/// Redis-backed [`QueueStore`].
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    project: Script,
    promote: Script,
    expire: Script,
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
            project: Script::new(include_str!("lua/queue_project.lua")),
            promote: Script::new(include_str!("lua/queue_promote.lua")),
            expire: Script::new(include_str!("lua/queue_expire.lua")),
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
    async fn project(
        &self,
        event: &EventId,
        from: u64,
        to: u64,
        delta: &QueueDelta,
    ) -> Result<Projection> {
        let keys = Keys::of(event);
        let ms = |t: Option<Timestamp>| t.map_or(0, Timestamp::as_millisecond);
        let mut inv = self.project.prepare_invoke();
        inv.key(&keys.seq)
            .key(&keys.ids)
            .key(&keys.ctr)
            .key(&keys.active)
            .key(&keys.admitted)
            .arg(from)
            .arg(to)
            .arg(delta.first)
            .arg(delta.serving)
            .arg(ms(delta.admitted_at))
            .arg(ms(delta.first_deadline))
            .arg(u8::from(delta.drew))
            .arg(delta.placed.len());
        for id in delta.placed.iter().chain(&delta.admitted) {
            inv.arg(id.as_str());
        }
        let (code, at): (i64, i64) = inv.invoke_async(&mut self.con()).await?;
        let at = watermark(Some(at));
        Ok(match code {
            1 => Projection::Applied(to),
            -2 => Projection::Ahead(at.unwrap_or(0)),
            _ => Projection::Behind(at),
        })
    }

    async fn restore(
        &self,
        event: &EventId,
        snapshot: &QueueSnapshot<'_>,
        watermark: u64,
    ) -> Result<bool> {
        // Staged under private names (nobody reads them, so chunked writes
        // are fine), then promoted in one script: readers see the old
        // projection or the new one, never a mix.
        let (live, staged) = (Keys::of(event), Keys::staged(event));
        for (i, chunk) in snapshot.order.chunks(RESTORE_CHUNK).enumerate() {
            let base = (i * RESTORE_CHUNK) as u64;
            let by_id: Vec<(&str, u64)> = chunk
                .iter()
                .enumerate()
                .map(|(j, id)| (id.as_str(), base + j as u64 + 1))
                .collect();
            let by_seq: Vec<(u64, &str)> = by_id.iter().map(|(id, s)| (*s, *id)).collect();
            let () = redis::pipe()
                .hset_multiple(&staged.seq, &by_id)
                .ignore()
                .hset_multiple(&staged.ids, &by_seq)
                .ignore()
                .pexpire(&staged.seq, STAGE_TTL_MS)
                .ignore()
                .pexpire(&staged.ids, STAGE_TTL_MS)
                .ignore()
                .query_async(&mut self.con())
                .await?;
        }
        for chunk in snapshot.sessions.chunks(RESTORE_CHUNK) {
            let deadlines: Vec<(i64, &str)> = chunk
                .iter()
                .map(|a| (a.deadline.as_millisecond(), a.id.as_str()))
                .collect();
            let admitted: Vec<(&str, i64)> = chunk
                .iter()
                .map(|a| (a.id.as_str(), a.admitted_at.as_millisecond()))
                .collect();
            let () = redis::pipe()
                .zadd_multiple(&staged.active, &deadlines)
                .ignore()
                .hset_multiple(&staged.admitted, &admitted)
                .ignore()
                .pexpire(&staged.active, STAGE_TTL_MS)
                .ignore()
                .pexpire(&staged.admitted, STAGE_TTL_MS)
                .ignore()
                .query_async(&mut self.con())
                .await?;
        }
        let promoted: i64 = self
            .promote
            .key(&live.seq)
            .key(&live.ids)
            .key(&live.ctr)
            .key(&live.active)
            .key(&live.admitted)
            .key(&staged.seq)
            .key(&staged.ids)
            .key(&staged.active)
            .key(&staged.admitted)
            .arg(watermark)
            .arg(snapshot.order.len())
            .arg(snapshot.serving)
            .arg(u8::from(snapshot.drawn))
            .arg(snapshot.sessions.len())
            .invoke_async(&mut self.con())
            .await?;
        match promoted {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(Error::Backend(
                "the staged queue projection was lost before it was promoted (Redis emptied or failed over mid-restore)".into(),
            )),
        }
    }

    async fn expire(&self, event: &EventId, now: Timestamp) -> Result<Projected<u64>> {
        let keys = Keys::of(event);
        let (wm, active): (i64, u64) = self
            .expire
            .key(&keys.ctr)
            .key(&keys.active)
            .key(&keys.admitted)
            .arg(now.as_millisecond())
            .invoke_async(&mut self.con())
            .await?;
        Ok(Projected {
            watermark: watermark(Some(wm)),
            value: active,
        })
    }

    async fn counters(&self, event: &EventId) -> Result<Projected<QueueCounters>> {
        let keys = Keys::of(event);
        type Read = (Option<u64>, Option<u64>, Option<f64>, Option<i64>);
        let ((assigned, serving, rate, wm), active): (Read, u64) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&keys.ctr)
            .arg(&["assigned", "serving", "rate", "wm"])
            .zcard(&keys.active)
            .query_async(&mut self.con())
            .await?;
        Ok(Projected {
            watermark: watermark(wm),
            value: QueueCounters {
                assigned: assigned.unwrap_or(0),
                serving: serving.unwrap_or(0),
                active,
                admitted_per_second: rate.unwrap_or(0.0),
            },
        })
    }

    async fn sequences(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<u64>>>> {
        let keys = Keys::of(event);
        let mut pipe = redis::pipe();
        pipe.atomic().hget(&keys.ctr, "wm");
        if !ids.is_empty() {
            let names: Vec<&str> = ids.iter().map(QueueId::as_str).collect();
            pipe.cmd("HMGET").arg(&keys.seq).arg(&names);
        }
        let (wm, value): (Option<i64>, Vec<Option<u64>>) = if ids.is_empty() {
            let (wm,): (Option<i64>,) = pipe.query_async(&mut self.con()).await?;
            (wm, Vec::new())
        } else {
            pipe.query_async(&mut self.con()).await?
        };
        Ok(Projected {
            watermark: watermark(wm),
            value,
        })
    }

    async fn sessions(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<Timestamp>>>> {
        let keys = Keys::of(event);
        let mut pipe = redis::pipe();
        pipe.atomic().hget(&keys.ctr, "wm");
        if !ids.is_empty() {
            let names: Vec<&str> = ids.iter().map(QueueId::as_str).collect();
            pipe.cmd("ZMSCORE").arg(&keys.active).arg(&names);
        }
        let (wm, scores): (Option<i64>, Vec<Option<f64>>) = if ids.is_empty() {
            let (wm,): (Option<i64>,) = pipe.query_async(&mut self.con()).await?;
            (wm, Vec::new())
        } else {
            pipe.query_async(&mut self.con()).await?
        };
        #[allow(clippy::cast_possible_truncation)]
        let value = scores
            .into_iter()
            .map(|s| s.and_then(|ms| Timestamp::from_millisecond(ms as i64).ok()))
            .collect();
        Ok(Projected {
            watermark: watermark(wm),
            value,
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

    async fn release(&self, event: &EventId, holder: &str) -> Result<()> {
        let _: i64 = self
            .booking
            .release
            .key(Keys::of(event).lease)
            .arg(holder)
            .invoke_async(&mut self.con())
            .await?;
        Ok(())
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
