//! The queue as its journal says it is: every place given (in the order
//! given), the pre-queue entries held for the opening draw, and how far
//! admission has come. The queue keeper is its only writer: it keeps these
//! [`Places`] in memory, appends each change to the journal as a
//! [`QueueStep`] before anyone can see it, and projects it into the store
//! (Redis) afterwards. A store that lost writes is restored from here, so a
//! customer's number, and whether they were admitted, survive any loss of
//! the store.
//!
//! Pure: no I/O; the keeper brings the clock, the randomness of the draw
//! and the live-session count.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{OpeningMode, QueueId, queue::session_deadline};

/// Most customers named in one step (a journal record stays small).
pub const STEP_CHUNK: usize = 500;

/// One change to the queue, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "step")]
pub enum QueueStep {
    /// These customers got the next numbers, `first` onwards, in order.
    #[serde(rename_all = "camelCase")]
    Placed { first: u64, ids: Vec<QueueId> },
    /// Held for the opening draw (shuffle mode, before it).
    #[serde(rename_all = "camelCase")]
    Held { entries: Vec<HeldEntry> },
    /// The opening draw is done (its order is in the `Placed` steps
    /// journaled with it); entries arriving later are placed at once.
    Drew,
    /// The serving counter reached `serving` at `at`: everyone numbered up
    /// to it has been admitted.
    #[serde(rename_all = "camelCase")]
    Admitted { serving: u64, at: Timestamp },
}

/// An entry held for the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldEntry {
    pub id: QueueId,
    /// Entered in the pre-queue window (shuffled), not after opening.
    pub pre_queue: bool,
}

/// A journal that cannot have been written by a keeper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("step {step}: places from {first} follow {assigned} given places")]
    Gap {
        step: u64,
        first: u64,
        assigned: u64,
    },
    #[error("step {step}: {id} was already placed")]
    Twice { step: u64, id: QueueId },
    #[error("step {step}: serving {serving} is past {assigned} given places")]
    ServingPastPlaces {
        step: u64,
        serving: u64,
        assigned: u64,
    },
}

/// A customer admitted and not yet past their session's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub id: QueueId,
    pub admitted_at: Timestamp,
    /// When the session ends unless renewed.
    pub deadline: Timestamp,
}

/// The queue's places and admissions (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Places {
    order: Vec<QueueId>,
    seq_of: HashMap<QueueId, u64>,
    held: Vec<HeldEntry>,
    held_ids: HashSet<QueueId>,
    drawn: bool,
    serving: u64,
    /// (serving reached, when), in journal order.
    admissions: Vec<(u64, Timestamp)>,
    steps: u64,
}

impl Places {
    /// Rebuilds from a journal, refusing one no keeper could have written.
    /// A serving counter journaled lower than an earlier one (two keepers a
    /// tick apart) never moves it back.
    pub fn replay<'a>(
        steps: impl IntoIterator<Item = &'a QueueStep>,
    ) -> Result<Self, JournalError> {
        let mut places = Self::default();
        for step in steps {
            places.check(step)?;
            places.apply(step);
        }
        Ok(places)
    }

    fn check(&self, step: &QueueStep) -> Result<(), JournalError> {
        let at = self.steps;
        match step {
            QueueStep::Placed { first, ids } => {
                if *first != self.assigned() + 1 {
                    return Err(JournalError::Gap {
                        step: at,
                        first: *first,
                        assigned: self.assigned(),
                    });
                }
                let mut seen = HashSet::new();
                if let Some(id) = ids
                    .iter()
                    .find(|id| self.seq_of.contains_key(*id) || !seen.insert(*id))
                {
                    return Err(JournalError::Twice {
                        step: at,
                        id: id.clone(),
                    });
                }
            }
            QueueStep::Admitted { serving, .. } if *serving > self.assigned() => {
                return Err(JournalError::ServingPastPlaces {
                    step: at,
                    serving: *serving,
                    assigned: self.assigned(),
                });
            }
            QueueStep::Held { .. } | QueueStep::Drew | QueueStep::Admitted { .. } => {}
        }
        Ok(())
    }

    fn apply(&mut self, step: &QueueStep) {
        self.steps += 1;
        match step {
            QueueStep::Placed { ids, .. } => {
                for id in ids {
                    self.order.push(id.clone());
                    self.seq_of.insert(id.clone(), self.order.len() as u64);
                }
            }
            QueueStep::Held { entries } => {
                for e in entries {
                    if self.held_ids.insert(e.id.clone()) {
                        self.held.push(e.clone());
                    }
                }
            }
            QueueStep::Drew => {
                self.drawn = true;
                self.held.clear();
                self.held_ids.clear();
            }
            QueueStep::Admitted { serving, at } => {
                if *serving > self.serving {
                    self.serving = *serving;
                    self.admissions.push((*serving, *at));
                }
            }
        }
    }

    /// Applies `step` and returns it, for the keeper to journal.
    fn take(&mut self, step: QueueStep, out: &mut Vec<QueueStep>) {
        self.apply(&step);
        out.push(step);
    }

    /// Steps journaled so far: the watermark of a projection of these.
    pub fn watermark(&self) -> u64 {
        self.steps
    }

    /// Places given.
    pub fn assigned(&self) -> u64 {
        self.order.len() as u64
    }

    pub fn serving(&self) -> u64 {
        self.serving
    }

    pub fn drawn(&self) -> bool {
        self.drawn
    }

    /// Entries held for the draw.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// A customer's number, if placed.
    pub fn sequence(&self, id: &QueueId) -> Option<u64> {
        self.seq_of.get(id).copied()
    }

    /// Every placed customer, in number order (number = index + 1).
    pub fn order(&self) -> &[QueueId] {
        &self.order
    }

    /// Customers numbered `from + 1 ..= to`.
    pub fn numbered(&self, from: u64, to: u64) -> &[QueueId] {
        let (from, to) = (from as usize, (to as usize).min(self.order.len()));
        self.order.get(from..to).unwrap_or_default()
    }

    /// Places new entries in the given (log) order; one seen before keeps
    /// its place (a redelivery), so nobody is placed twice. In shuffle mode
    /// before the draw, entries are held instead. Returns the steps to
    /// journal (already applied here).
    pub fn enter<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a QueueId, bool)>,
        mode: OpeningMode,
    ) -> Vec<QueueStep> {
        let hold = mode == OpeningMode::ShuffleAtOpen && !self.drawn;
        let mut fresh = Vec::new();
        let mut seen = HashSet::new();
        for (id, pre_queue) in entries {
            let known = self.seq_of.contains_key(id) || self.held_ids.contains(id);
            if !known && seen.insert(id.clone()) {
                fresh.push(HeldEntry {
                    id: id.clone(),
                    pre_queue,
                });
            }
        }
        let mut out = Vec::new();
        for chunk in fresh.chunks(STEP_CHUNK) {
            let step = if hold {
                QueueStep::Held {
                    entries: chunk.to_vec(),
                }
            } else {
                QueueStep::Placed {
                    first: self.assigned() + 1,
                    ids: chunk.iter().map(|e| e.id.clone()).collect(),
                }
            };
            self.take(step, &mut out);
        }
        out
    }

    /// The opening draw, once: the pre-queue entries in the order `shuffle`
    /// leaves them, then the entries held after opening in arrival order.
    /// Returns the steps to journal (none if already drawn).
    pub fn draw(&mut self, shuffle: impl FnOnce(&mut [QueueId])) -> Vec<QueueStep> {
        if self.drawn {
            return Vec::new();
        }
        let (early, late): (Vec<&HeldEntry>, Vec<&HeldEntry>) =
            self.held.iter().partition(|e| e.pre_queue);
        let mut early: Vec<QueueId> = early.into_iter().map(|e| e.id.clone()).collect();
        shuffle(&mut early);
        let drawn: Vec<QueueId> = early
            .into_iter()
            .chain(late.into_iter().map(|e| e.id.clone()))
            .collect();
        let mut out = Vec::new();
        for chunk in drawn.chunks(STEP_CHUNK) {
            let step = QueueStep::Placed {
                first: self.assigned() + 1,
                ids: chunk.to_vec(),
            };
            self.take(step, &mut out);
        }
        self.take(QueueStep::Drew, &mut out);
        out
    }

    /// Advances the serving counter by up to `budget`, never past
    /// `max_active` live sessions (`active` now) nor past the last place.
    /// Returns the step to journal, if anyone was admitted.
    pub fn admit(
        &mut self,
        now: Timestamp,
        budget: u64,
        max_active: u64,
        active: u64,
    ) -> Option<QueueStep> {
        let n = budget
            .min(max_active.saturating_sub(active))
            .min(self.assigned() - self.serving);
        if n == 0 {
            return None;
        }
        let step = QueueStep::Admitted {
            serving: self.serving + n,
            at: now,
        };
        self.apply(&step);
        Some(step)
    }

    /// When the last admission step admitted `id`, if it did.
    fn admitted_at(&self, seq: u64) -> Option<Timestamp> {
        let i = self
            .admissions
            .partition_point(|(serving, _)| *serving < seq);
        self.admissions.get(i).map(|(_, at)| *at)
    }

    /// Everyone admitted whose session's lifetime has not passed at `now`,
    /// with a deadline as if they had just sent a heartbeat (a store that
    /// lost their session lost their heartbeats too): what a restored store
    /// holds, so an admitted customer's token keeps working. Sessions that
    /// ended earlier (booked, left, abandoned) come back too, and lapse
    /// within `heartbeat_timeout` unless their customer is still there.
    pub fn live_admissions(
        &self,
        now: Timestamp,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Vec<Admission> {
        // Admission steps are in time order: walk back to the first one
        // whose sessions may still be within their lifetime.
        let first_live = self.admissions.partition_point(|(_, at)| {
            at.checked_add(session_ttl).unwrap_or(Timestamp::MAX) <= now
        });
        let from = match first_live {
            0 => 0,
            i => self.admissions[i - 1].0,
        };
        (from + 1..=self.serving)
            .filter_map(|seq| {
                let admitted_at = self.admitted_at(seq)?;
                let deadline = session_deadline(admitted_at, now, session_ttl, heartbeat_timeout);
                (deadline > now).then(|| Admission {
                    id: self.order[(seq - 1) as usize].clone(),
                    admitted_at,
                    deadline,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
