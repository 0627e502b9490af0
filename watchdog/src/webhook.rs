//! Slack-compatible notifications (`{"text": …}`) and the provisioning hook.
//!
//! Delivery never blocks the watch loop: messages go into a bounded queue
//! drained by one task (so they arrive in order) that retries each with
//! backoff. A full queue drops the message with a warning — a slow chat
//! service must not delay a failover. Webhook URLs are credentials: they
//! are never logged, and errors are logged without them.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use twinkle_dr::{Alarm, Transition};

use crate::config::{SecretUrl, WebhookConfig};

/// Which hook a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Notify,
    Provisioning,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Notify => "notify",
            Hook::Provisioning => "provisioning",
        }
    }
}

#[derive(Debug)]
struct Message {
    hook: Hook,
    url: SecretUrl,
    body: Value,
}

/// The Slack-compatible text for a transition.
pub fn transition_text(record: &str, transition: &Transition) -> String {
    format!(
        "DR {record}: {} → {} (weights primary/drEks/drEcs {}){} — {:?}",
        transition.from,
        transition.to,
        transition.weights,
        if transition.manual {
            ", by operator"
        } else {
            ""
        },
        transition.reason,
    )
}

/// The text for an alarm raised or cleared.
pub fn alarm_text(record: &str, alarm: Alarm, raised: bool) -> String {
    let what = match alarm {
        Alarm::NoHealthyTarget => {
            "no healthy target: traffic stays where it is on a down target".to_owned()
        }
        Alarm::OverrideTargetDown { target } => {
            format!("operator override pins traffic on {target}, which is down")
        }
    };
    if raised {
        format!("DR {record} ALARM: {what}")
    } else {
        format!("DR {record} alarm cleared: {what}")
    }
}

/// POSTs `body` as JSON, retrying 5xx, 429 and network errors with backoff.
/// Returns the failure without the URL.
pub async fn post(
    client: &reqwest::Client,
    url: &SecretUrl,
    body: &Value,
    attempts: usize,
) -> Result<(), String> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(attempts.saturating_sub(1))
        .with_jitter();
    let send = || async {
        let response = client
            .post(url.url().clone())
            .json(body)
            .send()
            .await
            .map_err(|e| (true, e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let retry = status.is_server_error() || status.as_u16() == 429;
            Err((retry, format!("HTTP {}", status.as_u16())))
        }
    };
    send.retry(backoff)
        .when(|(retry, _)| *retry)
        .await
        .map_err(|(_, error)| error)
}

/// The sending side of the delivery queue.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Message>>,
    record: String,
    notify_url: Option<SecretUrl>,
    provisioning_url: Option<SecretUrl>,
}

impl Notifier {
    /// Starts the delivery task (when any hook is configured).
    pub fn spawn(
        config: &WebhookConfig,
        record: &str,
        client: reqwest::Client,
    ) -> (Notifier, Option<JoinHandle<()>>) {
        let configured = config.notify_url.is_some() || config.provisioning_url.is_some();
        let (queue, task) = if configured {
            let (tx, mut rx) = mpsc::channel::<Message>(64);
            let attempts = config.attempts;
            let task = tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    match post(&client, &message.url, &message.body, attempts).await {
                        Ok(()) => tracing::debug!(hook = message.hook.name(), "webhook delivered"),
                        Err(error) => tracing::warn!(
                            hook = message.hook.name(),
                            host = %message.url,
                            %error,
                            "webhook delivery failed; message dropped"
                        ),
                    }
                }
            });
            (Some(tx), Some(task))
        } else {
            (None, None)
        };
        let notifier = Notifier {
            queue,
            record: record.to_owned(),
            notify_url: config.notify_url.clone(),
            provisioning_url: config.provisioning_url.clone(),
        };
        (notifier, task)
    }

    fn enqueue(&self, hook: Hook, url: Option<&SecretUrl>, body: Value) {
        let (Some(queue), Some(url)) = (&self.queue, url) else {
            return;
        };
        let message = Message {
            hook,
            url: url.clone(),
            body,
        };
        if queue.try_send(message).is_err() {
            tracing::warn!(
                hook = hook.name(),
                "webhook queue full or closed; message dropped"
            );
        }
    }

    /// Announces a transition; also calls the provisioning hook when
    /// traffic leaves the primary.
    pub fn transition(&self, transition: &Transition) {
        self.enqueue(
            Hook::Notify,
            self.notify_url.as_ref(),
            notify_body(&self.record, transition),
        );
        if leaves_primary(transition) {
            self.enqueue(
                Hook::Provisioning,
                self.provisioning_url.as_ref(),
                provisioning_body(&self.record, transition),
            );
        }
    }

    pub fn alarm(&self, alarm: Alarm, raised: bool) {
        self.enqueue(
            Hook::Notify,
            self.notify_url.as_ref(),
            json!({
                "text": alarm_text(&self.record, alarm, raised),
                "alarm": alarm,
                "raised": raised,
            }),
        );
    }
}

/// Traffic moved off the primary: time to build the standby EKS.
pub fn leaves_primary(transition: &Transition) -> bool {
    transition.from.weights().primary > 0 && transition.to.weights().primary == 0
}

pub fn notify_body(record: &str, transition: &Transition) -> Value {
    json!({
        "text": transition_text(record, transition),
        "transition": transition,
    })
}

pub fn provisioning_body(record: &str, transition: &Transition) -> Value {
    json!({
        "text": format!("DR {record}: traffic left the primary; provision the standby EKS"),
        "event": "primaryLeft",
        "record": record,
        "transition": transition,
    })
}

/// Delivers at once (for one-shot commands that exit right after): the
/// same messages, awaited instead of queued.
pub async fn deliver_now(
    config: &WebhookConfig,
    client: &reqwest::Client,
    record: &str,
    transition: &Transition,
) {
    let mut messages = Vec::new();
    if let Some(url) = &config.notify_url {
        messages.push((Hook::Notify, url, notify_body(record, transition)));
    }
    if leaves_primary(transition)
        && let Some(url) = &config.provisioning_url
    {
        messages.push((
            Hook::Provisioning,
            url,
            provisioning_body(record, transition),
        ));
    }
    for (hook, url, body) in messages {
        if let Err(error) = post(client, url, &body, config.attempts).await {
            tracing::warn!(hook = hook.name(), host = %url, %error, "webhook delivery failed");
        }
    }
}
