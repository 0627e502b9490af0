//! The ownership record: which region sells, written with the weights.
//!
//! One TXT record, `_twinkle-dr-owner.<record>`, holding
//! `"region=<primary|dr> epoch=<n>"`. Absent means the primary at epoch 0
//! (ownership never moved). Whoever writes weights — the lease holder, or an
//! operator's command — puts the ownership change (DELETE the value read,
//! CREATE the next) in the very same batch, so weights and ownership move
//! together or not at all, and a batch built on a stale read is refused
//! whole. Deciders read this record to learn whether they may decide (see
//! [`twinkle_dr::OwnerGate`]).

use aws_sdk_route53::types::{Change, ChangeAction};
use twinkle_dr::{Ownership, RouteState};

use crate::route53::Route53;
use crate::{Error, Result};

/// TTL of the ownership record. Readers use the API, never DNS.
const OWNER_TTL: i64 = 60;

/// What the ownership record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerView {
    Absent,
    Present {
        ownership: Ownership,
        /// The exact value and TTL listed: what a DELETE must repeat.
        raw: String,
        ttl: i64,
    },
}

impl OwnerView {
    /// The ownership in force (absent: the primary, epoch 0).
    pub fn ownership(&self) -> Ownership {
        match self {
            OwnerView::Absent => Ownership::INITIAL,
            OwnerView::Present { ownership, .. } => *ownership,
        }
    }

    /// What a write of `state`'s weights does to ownership: the changes to
    /// put in its batch (none while the same region sells) and the view once
    /// that batch has applied (this one when nothing moves, so an absent
    /// record stays absent).
    pub fn moved_by(
        &self,
        route53: &Route53,
        name: &str,
        state: RouteState,
    ) -> Result<(OwnerView, Vec<Change>)> {
        let next = self.ownership().after(state);
        if next == self.ownership() {
            return Ok((self.clone(), Vec::new()));
        }
        let mut changes = Vec::with_capacity(2);
        if let OwnerView::Present { raw, ttl, .. } = self {
            changes.push(route53.txt_change(ChangeAction::Delete, name, *ttl, raw)?);
        }
        let raw = next.to_txt();
        changes.push(route53.txt_change(ChangeAction::Create, name, OWNER_TTL, &raw)?);
        let written = OwnerView::Present {
            ownership: next,
            raw,
            ttl: OWNER_TTL,
        };
        Ok((written, changes))
    }
}

/// Reads the ownership record; refuses a value that is not one.
pub async fn read(route53: &Route53, name: &str) -> Result<OwnerView> {
    let Some(txt) = route53.read_txt(name).await? else {
        return Ok(OwnerView::Absent);
    };
    let foreign = || Error::ForeignOwnerRecord {
        name: name.to_owned(),
        value: txt.values.join(" "),
    };
    let [raw] = txt.values.as_slice() else {
        return Err(foreign());
    };
    let ownership = Ownership::parse_txt(raw).ok_or_else(foreign)?;
    Ok(OwnerView::Present {
        ownership,
        raw: raw.clone(),
        ttl: txt.ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_the_primary_at_epoch_zero() {
        assert_eq!(OwnerView::Absent.ownership(), Ownership::INITIAL);
    }
}
