//! The stateful shell around the pure `decide` module: records
//! observations, applies decisions and commands, and reports transitions and
//! alarms.

use crate::config::Config;
use crate::decide::{Decision, Situation, decide};
use crate::health::{Health, Observations, TargetHealth};
use crate::target::{PerTarget, Target};
use crate::time::Millis;
use crate::transition::{Alarm, Command, Status, Step, Transition, TransitionReason};
use crate::weights::{RouteState, Weights};
use crate::{Error, Result};

/// The failover state machine for one set of three weighted records.
///
/// Feed it [`observe`](Self::observe) on every probe round (also with no
/// observations, so dwell timers can elapse) and [`command`](Self::command)
/// for operator instructions; write [`Step::weights`] to Route53 whenever
/// [`Step::weights_changed`].
#[derive(Debug, Clone)]
pub struct FailoverMachine {
    config: Config,
    state: RouteState,
    state_since: Millis,
    health: PerTarget<TargetHealth>,
    alarms: Vec<Alarm>,
    last_step_at: Millis,
}

impl FailoverMachine {
    /// Starts in [`RouteState::Normal`] with every target's health unknown:
    /// start-up never fails over before the primary has failed
    /// `probe.failuresToDown` probes.
    pub fn new(config: Config, now: Millis) -> Result<FailoverMachine> {
        FailoverMachine::resume(config, RouteState::Normal, now)
    }

    /// Starts in `state`, e.g. the one [`RouteState::from_weights`] finds for
    /// the weights in Route53 after a restart. Health starts unknown, so the
    /// machine moves only once observations prove something.
    pub fn resume(config: Config, state: RouteState, now: Millis) -> Result<FailoverMachine> {
        config.validate()?;
        Ok(FailoverMachine {
            config,
            state,
            state_since: now,
            health: PerTarget::from_fn(|_| TargetHealth::new(now)),
            alarms: Vec::new(),
            last_step_at: now,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> RouteState {
        self.state
    }

    pub fn weights(&self) -> Weights {
        self.state.weights()
    }

    pub fn health(&self) -> &PerTarget<TargetHealth> {
        &self.health
    }

    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            weights: self.weights(),
            state_since: self.state_since,
            health: self.health,
            alarms: self.alarms.clone(),
        }
    }

    /// Records one round of observations taken at `now` and moves traffic if
    /// the rules say so.
    pub fn observe(&mut self, now: Millis, observations: &Observations) -> Result<Step> {
        self.advance_clock(now)?;
        let before = self.weights();
        for (target, observation) in observations.iter() {
            self.health[target].record(
                *observation,
                self.config.probe,
                self.config.route53,
                self.config.signals,
                now,
            );
        }
        let mut transitions = Vec::new();
        self.decide_automatically(now, &mut transitions);
        Ok(self.finish_step(now, before, transitions))
    }

    /// Applies an operator command at `now`. Commands skip the dwell (the
    /// operator decided), are idempotent (a controller may resend them every
    /// reconcile) and are recorded as manual transitions.
    pub fn command(&mut self, now: Millis, command: Command) -> Result<Step> {
        self.advance_clock(now)?;
        let before = self.weights();
        let mut transitions = Vec::new();
        let target_state = match command {
            Command::FailoverTo { target } => Some((
                RouteState::pinned_to(target),
                TransitionReason::OperatorFailover { target },
            )),
            Command::FailbackToPrimary if self.state == RouteState::Normal => None,
            Command::FailbackToPrimary => {
                let primary = self.health[Target::Primary].health;
                if primary != Health::Up {
                    return Err(Error::FailbackRefused { primary });
                }
                Some((RouteState::Normal, TransitionReason::OperatorFailback))
            }
            Command::ClearOverride => self.state.pinned_target().map(|_| {
                (
                    self.state.automatic_equivalent(),
                    TransitionReason::OperatorClearedOverride,
                )
            }),
        };
        if let Some((to, reason)) = target_state
            && to != self.state
        {
            transitions.push(self.enter(to, reason, now, true));
            // Automatic control resumes at once: a cleared override on a
            // down target escapes in the same step.
            self.decide_automatically(now, &mut transitions);
        }
        Ok(self.finish_step(now, before, transitions))
    }

    fn advance_clock(&mut self, now: Millis) -> Result<()> {
        if now < self.last_step_at {
            return Err(Error::TimeWentBackwards {
                previous: self.last_step_at,
                now,
            });
        }
        self.last_step_at = now;
        Ok(())
    }

    /// At most one automatic move per step: every destination serves only
    /// targets that are up, and the next optional move needs a dwell longer
    /// than zero (config validation guarantees it).
    fn decide_automatically(&mut self, now: Millis, transitions: &mut Vec<Transition>) {
        let decision = decide(&Situation {
            state: self.state,
            state_since: self.state_since,
            health: &self.health,
            now,
            config: &self.config,
        });
        if let Decision::Move { to, reason } = decision {
            transitions.push(self.enter(to, reason, now, false));
        }
    }

    fn enter(
        &mut self,
        to: RouteState,
        reason: TransitionReason,
        now: Millis,
        manual: bool,
    ) -> Transition {
        let from = self.state;
        self.state = to;
        self.state_since = now;
        Transition {
            from,
            to,
            reason,
            weights: to.weights(),
            at: now,
            manual,
            health: self.health.map(|_, target| target.health),
        }
    }

    fn finish_step(&mut self, now: Millis, before: Weights, transitions: Vec<Transition>) -> Step {
        let alarms = self.current_alarms();
        let alarms_raised = alarms
            .iter()
            .filter(|alarm| !self.alarms.contains(alarm))
            .copied()
            .collect();
        let alarms_cleared = self
            .alarms
            .iter()
            .filter(|alarm| !alarms.contains(alarm))
            .copied()
            .collect();
        self.alarms = alarms;
        Step {
            at: now,
            state: self.state,
            weights: self.weights(),
            weights_changed: self.weights() != before,
            transitions,
            alarms: self.alarms.clone(),
            alarms_raised,
            alarms_cleared,
        }
    }

    /// Alarms follow from the state alone: after deciding, traffic is on a
    /// down target only if nothing was up to take it, or an override pins it.
    fn current_alarms(&self) -> Vec<Alarm> {
        let mut alarms: Vec<Alarm> = self
            .weights()
            .serving()
            .filter(|&target| self.health[target].health == Health::Down)
            .map(|target| match self.state.pinned_target() {
                Some(_) => Alarm::OverrideTargetDown { target },
                None => Alarm::NoHealthyTarget,
            })
            .collect();
        alarms.sort();
        alarms.dedup();
        alarms
    }
}
