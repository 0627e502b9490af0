//! The one periodic loop of the background tasks (admission, the hubs,
//! rate-limit pruning): run `tick` every `period` until `stop` resolves. A
//! tick that overruns delays the next rather than bunching them up, and
//! stop is only noticed between ticks, so a tick is never cut in half.

use std::{future::Future, time::Duration};

pub async fn every(period: Duration, stop: impl Future<Output = ()>, mut tick: impl AsyncFnMut()) {
    tokio::pin!(stop);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = interval.tick() => tick().await,
        }
    }
}
