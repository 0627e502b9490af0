//! The embedded fenced log: the same contract as the Kafka one (open
//! fences every earlier session; the records written and the consumed
//! position are committed together or not at all), over the in-process
//! logs.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::memory::{MemoryLog, MemorySource, lock};
use crate::{
    Error, Result,
    ports::{BookingOutcome, BookingRequest, FencedLog, Log, LogEnd, Progress, Record, Source},
};

/// One event's input and output logs, shared by its writer's sessions.
#[derive(Debug)]
pub struct MemoryFenced<In, Out> {
    input: MemoryLog<In>,
    output: MemoryLog<Out>,
    /// The newest session's epoch; a commit under an older one is refused.
    /// Held across a whole commit, so an open sees all of it or none.
    epoch: Arc<Mutex<u64>>,
}

impl<In, Out> Clone for MemoryFenced<In, Out> {
    fn clone(&self) -> Self {
        Self {
            input: self.input.clone(),
            output: self.output.clone(),
            epoch: self.epoch.clone(),
        }
    }
}

/// The decider's: bookings in, outcomes out.
pub type MemoryDecisions = MemoryFenced<BookingRequest, BookingOutcome>;

impl<In, Out> MemoryFenced<In, Out> {
    pub fn new(input: MemoryLog<In>, output: MemoryLog<Out>) -> Self {
        Self {
            input,
            output,
            epoch: Arc::new(Mutex::new(0)),
        }
    }

    /// A session, not yet open.
    pub fn session(&self) -> MemoryFencedLog<In, Out> {
        MemoryFencedLog {
            shared: self.clone(),
            open: None,
        }
    }
}

/// One writer's session on [`MemoryFenced`].
#[derive(Debug)]
pub struct MemoryFencedLog<In, Out> {
    shared: MemoryFenced<In, Out>,
    open: Option<(u64, MemorySource<In>)>,
}

fn not_open() -> Error {
    Error::Backend("the fenced log is not open".into())
}

#[async_trait]
impl<In: Record, Out: Record> FencedLog<In, Out> for MemoryFencedLog<In, Out> {
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<Out>> {
        {
            let mut epoch = lock(&self.shared.epoch)?;
            *epoch += 1;
            self.open = Some((*epoch, self.shared.input.source()));
        }
        // Every commit of an older session finished before the bump or is
        // refused after it: what is replayed now is final.
        self.shared.output.replay(progress).await
    }

    async fn next_batch(&mut self, max: usize, wait: std::time::Duration) -> Result<Vec<In>> {
        match &mut self.open {
            Some((_, source)) => source.next_batch(max, wait).await,
            None => Err(not_open()),
        }
    }

    async fn end(&mut self) -> Result<LogEnd> {
        Ok(LogEnd(vec![self.shared.input.len() as i64]))
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

    async fn commit(&mut self, records: &[Out]) -> Result<()> {
        let Some((mine, source)) = &mut self.open else {
            return Err(not_open());
        };
        let fenced = {
            let epoch = lock(&self.shared.epoch)?;
            let fenced = *epoch != *mine;
            if !fenced {
                self.shared.output.extend(records)?;
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
