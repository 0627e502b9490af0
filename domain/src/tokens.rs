//! Signed queue tickets and admission tokens (HS256 JWTs).
//!
//! Both are bound to one event (the JWT audience) and one queue id (the
//! subject), carry their kind, and are checked on every request, so a ticket
//! cannot be forged, replayed on another event, or used as an admission
//! token. The booking API verifies admission tokens with the shared key
//! alone, without a Redis round trip.

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    event::{EventId, QueueId},
};

/// Shortest signing secret we accept (HS256 wants at least its output size).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token admits its holder to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TokenKind {
    /// A place in the queue (the "book" button's answer).
    Queue,
    /// An admitted session: may book.
    Admission,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    kind: TokenKind,
    iat: i64,
    exp: i64,
}

/// A verified token's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub event: EventId,
    pub queue_id: QueueId,
    pub kind: TokenKind,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why a token was refused. Every variant is a 401 to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token belongs to another event")]
    WrongEvent,
    #[error("a {found:?} token was presented where a {expected:?} token is needed")]
    WrongKind {
        expected: TokenKind,
        found: TokenKind,
    },
}

/// The HS256 key pair derived from one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::InvalidEvent(format!(
                "token secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Signs a token for `queue_id` at `event`, valid until `expires_at`.
    pub fn issue(
        &self,
        kind: TokenKind,
        event: &EventId,
        queue_id: &QueueId,
        issued_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<String> {
        let claims = Claims {
            sub: queue_id.to_string(),
            aud: event.to_string(),
            kind,
            iat: issued_at.as_second(),
            exp: expires_at.as_second(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::Sign)
    }

    /// Verifies signature, expiry (against the wall clock), event and kind.
    pub fn verify(
        &self,
        token: &str,
        expected_kind: TokenKind,
        event: &EventId,
    ) -> Result<Verified, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.set_audience(&[event.as_str()]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidAudience => TokenError::WrongEvent,
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = data.claims;
        if claims.kind != expected_kind {
            return Err(TokenError::WrongKind {
                expected: expected_kind,
                found: claims.kind,
            });
        }
        let queue_id = claims.sub.parse().map_err(|_| TokenError::Malformed)?;
        let event_id = claims.aud.parse().map_err(|_| TokenError::Malformed)?;
        let at = |secs| Timestamp::from_second(secs).map_err(|_| TokenError::Malformed);
        Ok(Verified {
            event: event_id,
            queue_id,
            kind: claims.kind,
            issued_at: at(claims.iat)?,
            expires_at: at(claims.exp)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }
    fn event() -> EventId {
        "popup".parse().unwrap()
    }
    fn qid() -> QueueId {
        "q-1".parse().unwrap()
    }
    fn issue(kind: TokenKind, ttl_secs: i64) -> String {
        let now = Timestamp::now();
        let exp = now
            .checked_add(jiff::SignedDuration::from_secs(ttl_secs))
            .unwrap();
        keys().issue(kind, &event(), &qid(), now, exp).unwrap()
    }

    #[test]
    fn round_trip() {
        let token = issue(TokenKind::Queue, 60);
        let v = keys().verify(&token, TokenKind::Queue, &event()).unwrap();
        assert_eq!(
            (v.event, v.queue_id, v.kind),
            (event(), qid(), TokenKind::Queue)
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::from_secret(b"short").is_err());
    }

    #[test]
    fn forged_tampered_expired_cross_event_and_wrong_kind_are_refused() {
        let token = issue(TokenKind::Admission, 60);
        let other = TokenKeys::from_secret(&[7u8; 32]).unwrap();
        assert_eq!(
            other.verify(&token, TokenKind::Admission, &event()),
            Err(TokenError::BadSignature)
        );
        // Flip one character of the payload.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
        parts[1].pop();
        parts[1].push(flipped);
        let tampered = parts.join(".");
        assert!(
            keys()
                .verify(&tampered, TokenKind::Admission, &event())
                .is_err()
        );
        assert_eq!(
            keys().verify(
                &issue(TokenKind::Admission, -5),
                TokenKind::Admission,
                &event()
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            keys().verify(&token, TokenKind::Admission, &"other".parse().unwrap()),
            Err(TokenError::WrongEvent)
        );
        assert!(matches!(
            keys().verify(&issue(TokenKind::Queue, 60), TokenKind::Admission, &event()),
            Err(TokenError::WrongKind { .. })
        ));
        assert_eq!(
            keys().verify("not-a-jwt", TokenKind::Queue, &event()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        assert_eq!(format!("{:?}", keys()), "TokenKeys(<redacted>)");
    }
}
