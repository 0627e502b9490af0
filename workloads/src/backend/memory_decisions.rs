//! The embedded decision log: the same contract as the Kafka one (open
//! fences every earlier session; decisions and the consumed position are
//! committed together or not at all), over the in-process logs.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::memory::{MemoryLog, MemorySource, lock};
use crate::{
    Error, Result,
    ports::{BookingOutcome, BookingRequest, DecisionLog, Log, LogEnd, Progress, Source},
};

/// One event's bookings and outcomes logs, shared by its decider sessions.
#[derive(Debug, Clone)]
pub struct MemoryDecisions {
    requests: MemoryLog<BookingRequest>,
    outcomes: MemoryLog<BookingOutcome>,
    /// The newest session's epoch; a commit under an older one is refused.
    /// Held across a whole commit, so an open sees all of it or none.
    epoch: Arc<Mutex<u64>>,
}

impl MemoryDecisions {
    pub fn new(requests: MemoryLog<BookingRequest>, outcomes: MemoryLog<BookingOutcome>) -> Self {
        Self {
            requests,
            outcomes,
            epoch: Arc::new(Mutex::new(0)),
        }
    }

    /// A session, not yet open.
    pub fn session(&self) -> MemoryDecisionLog {
        MemoryDecisionLog {
            shared: self.clone(),
            open: None,
        }
    }
}

/// One decider's session on [`MemoryDecisions`].
#[derive(Debug)]
pub struct MemoryDecisionLog {
    shared: MemoryDecisions,
    open: Option<(u64, MemorySource<BookingRequest>)>,
}

#[async_trait]
impl DecisionLog for MemoryDecisionLog {
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<BookingOutcome>> {
        {
            let mut epoch = lock(&self.shared.epoch)?;
            *epoch += 1;
            self.open = Some((*epoch, self.shared.requests.source()));
        }
        // Every commit of an older session finished before the bump or is
        // refused after it: what is replayed now is final.
        self.shared.outcomes.replay(progress).await
    }

    async fn next_batch(
        &mut self,
        max: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<BookingRequest>> {
        match &mut self.open {
            Some((_, source)) => source.next_batch(max, wait).await,
            None => Err(Error::Backend("the decision log is not open".into())),
        }
    }

    async fn end(&mut self) -> Result<LogEnd> {
        Ok(LogEnd(vec![self.shared.requests.len() as i64]))
    }

    fn reached(&self, end: &LogEnd) -> bool {
        match &self.open {
            Some((_, source)) => end.0.iter().all(|e| source.position() as i64 >= *e),
            None => false,
        }
    }

    fn close(&mut self) {
        self.open = None;
    }

    async fn commit(&mut self, outcomes: &[BookingOutcome]) -> Result<()> {
        let Some((mine, source)) = &mut self.open else {
            return Err(Error::Backend("the decision log is not open".into()));
        };
        let fenced = {
            let epoch = lock(&self.shared.epoch)?;
            let fenced = *epoch != *mine;
            if !fenced {
                self.shared.outcomes.extend(outcomes)?;
                source.commit_now()?;
            }
            fenced
        };
        if fenced {
            self.open = None;
            return Err(Error::Fenced);
        }
        Ok(())
    }
}
