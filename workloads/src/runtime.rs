//! Wires a running queue process: backends, background loops and the HTTP
//! server. `main` and the integration tests start exactly the same thing.

use std::{net::SocketAddr, sync::Arc};

use tokio::{sync::watch, task::JoinHandle};
use twinkle_domain::{EventConfig, tokens::TokenKeys};

use crate::{
    Error, Result,
    admission::Admission,
    assigner,
    backend::{
        kafka::{self, KafkaLog, KafkaSource, Topics},
        kafka_decisions::KafkaDecisionLog,
        memory::{MemoryLog, MemoryStore},
        memory_decisions::MemoryDecisions,
        redis_store::RedisStore,
    },
    decider::Decider,
    metrics::Metrics,
    ports::{BookingOutcome, BookingRequest, BookingStore, DecisionLog, QueueEntry, Source},
    web::{self, AppState, EventRuntime, Hub, SlotHub, WebConfig, app},
};

/// Where the queue's log and state live.
#[derive(Debug, Clone)]
pub enum Backends {
    /// In-process (the local stack).
    Embedded,
    /// Kafka bootstrap servers and a Redis URL (production).
    Real { kafka: String, redis: String },
}

/// What to run in this process.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub listen: SocketAddr,
    pub events: Vec<EventConfig>,
    pub backends: Backends,
    pub token_secret: Vec<u8>,
    pub web: WebConfig,
    /// Run the assigner (queue consumer) in this process.
    pub assigner: bool,
    /// Run the decider (booking consumer) in this process.
    pub decider: bool,
    /// Run the admission loop (it only advances the counter while holding
    /// the event's lease, so every API pod may run it).
    pub admission: bool,
    /// Identity in the admission lease (pod name).
    pub holder: String,
    /// Kafka consumer group prefix: the assigner joins `<group>.assigner`,
    /// the decider `<group>.decider`.
    pub group: String,
    /// Kafka topic prefix; `None` keeps `twinkle.<event>`. The operator sets
    /// its namespaced `<namespace>.<name>`.
    pub topic_prefix: Option<String>,
}

/// A started process; `shutdown` drains it.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Tells WebSockets to reconnect elsewhere, stops the loops, and waits
    /// for in-flight requests to finish.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.server
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .map_err(Error::Serve)
    }
}

fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Everything the process talks to, and the consumers' logs (present only
/// for the loops this process runs).
struct Wired {
    web: web::Backends,
    queue_source: Option<Box<dyn Source<QueueEntry>>>,
    decisions: Option<Box<dyn DecisionLog>>,
}

async fn wire(opts: &RunOptions) -> Result<Wired> {
    match &opts.backends {
        Backends::Embedded => {
            let queue_log = MemoryLog::<QueueEntry>::default();
            let booking_log = MemoryLog::<BookingRequest>::default();
            let outcomes = MemoryLog::<BookingOutcome>::default();
            let store = Arc::new(MemoryStore::default());
            Ok(Wired {
                queue_source: opts
                    .assigner
                    .then(|| Box::new(queue_log.source()) as Box<dyn Source<QueueEntry>>),
                decisions: opts.decider.then(|| {
                    let log = MemoryDecisions::new(booking_log.clone(), outcomes).session();
                    Box::new(log) as Box<dyn DecisionLog>
                }),
                web: web::Backends {
                    queue_log: Arc::new(queue_log),
                    queue_store: store.clone(),
                    booking_log: Arc::new(booking_log),
                    bookings: store,
                },
            })
        }
        Backends::Real {
            kafka: bootstrap,
            redis,
        } => {
            // One event per process in production (the operator deploys
            // each TicketEvent's workloads separately).
            let event = opts
                .events
                .first()
                .ok_or_else(|| Error::Backend("no event configured".into()))?;
            let topics = match &opts.topic_prefix {
                Some(prefix) => Topics::with_prefix(prefix),
                None => Topics::for_event(&event.id),
            };
            let producer = kafka::producer(bootstrap)?;
            let store = Arc::new(RedisStore::connect(redis).await?);
            let queue_source = if opts.assigner {
                let group = format!("{}.assigner", opts.group);
                Some(Box::new(KafkaSource::<QueueEntry>::new(
                    bootstrap,
                    &group,
                    &topics.queue,
                )?) as Box<dyn Source<QueueEntry>>)
            } else {
                None
            };
            let decisions = opts.decider.then(|| {
                let group = format!("{}.decider", opts.group);
                let log =
                    KafkaDecisionLog::new(bootstrap, &group, &topics.bookings, &topics.outcomes);
                Box::new(log) as Box<dyn DecisionLog>
            });
            Ok(Wired {
                queue_source,
                decisions,
                web: web::Backends {
                    queue_log: Arc::new(KafkaLog::new(producer.clone(), bootstrap, topics.queue)),
                    queue_store: store.clone(),
                    booking_log: Arc::new(KafkaLog::new(producer, bootstrap, topics.bookings)),
                    bookings: store,
                },
            })
        }
    }
}

/// Connects the backends, starts loops and the server.
pub async fn start(opts: RunOptions) -> Result<Running> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let keys = TokenKeys::from_secret(&opts.token_secret)?;
    let mut tasks = Vec::new();
    let wired = wire(&opts).await?;
    let store = wired.web.queue_store.clone();
    let bookings: Arc<dyn BookingStore> = wired.web.bookings.clone();
    let metrics = Arc::new(Metrics::default());

    let mut runtimes = Vec::new();
    for event in &opts.events {
        event.validate()?;
        let config = Arc::new(event.clone());
        let hub = Hub::spawn(config.id.clone(), store.clone(), stopped(&stop_rx));
        let slots = SlotHub::spawn(
            config.clone(),
            bookings.clone(),
            metrics.clone(),
            stopped(&stop_rx),
        );
        runtimes.push(EventRuntime {
            config: config.clone(),
            hub,
            slots,
        });
        if opts.admission {
            let admission = Admission::new(config, store.clone(), opts.holder.clone());
            tasks.push(tokio::spawn(admission.run(stopped(&stop_rx))));
        }
    }
    let first = opts.events.first().map(|e| Arc::new(e.clone()));
    if let (Some(source), Some(event)) = (wired.queue_source, &first) {
        let mode = event.queue.opening_mode;
        tasks.push(tokio::spawn(assigner::run(
            source,
            store.clone(),
            mode,
            stopped(&stop_rx),
        )));
    }
    if let (Some(log), Some(event)) = (wired.decisions, first) {
        let decider = Decider {
            event,
            projection: bookings.clone(),
            sessions: store.clone(),
            metrics: metrics.clone(),
            holder: opts.holder.clone(),
        };
        tasks.push(tokio::spawn(decider.run(log, stopped(&stop_rx))));
    }

    let state = AppState::new(
        runtimes,
        keys,
        wired.web,
        metrics,
        opts.web.clone(),
        stop_rx.clone(),
    );
    let prune_state = state.clone();
    tasks.push(tokio::spawn(crate::ticker::every(
        std::time::Duration::from_secs(60),
        stopped(&stop_rx),
        async move || prune_state.prune_rate_limits(),
    )));

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let router = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped(&stop_rx))
            .into_future(),
    );
    Ok(Running {
        addr,
        stop: stop_tx,
        server,
        tasks,
    })
}

/// The demo event of the local stack: open now, a few slots, one small
/// enough to sell out in a minute of clicking.
pub fn demo_event(now: jiff::Timestamp) -> EventConfig {
    use std::time::Duration;
    use twinkle_domain::{OpeningMode, QueueConfig, Slot};
    let slot = |id: &str, label: &str, capacity| Slot {
        id: id.parse().expect("static slot id"),
        label: label.to_owned(),
        capacity,
    };
    EventConfig {
        id: "demo".parse().expect("static event id"),
        title: "Twinkle Pop-up Store — opening day".to_owned(),
        opens_at: now,
        closes_at: now
            .checked_add(Duration::from_secs(24 * 3600))
            .unwrap_or(now),
        slots: vec![
            slot("s1000", "10:00–11:00", 40),
            slot("s1100", "11:00–12:00", 40),
            slot("s1200", "12:00–13:00", 20),
            slot("s1300", "13:00–14:00 (limited)", 3),
        ],
        per_customer_limit: 1,
        queue: QueueConfig {
            admission_per_second: 5,
            max_active_sessions: 20,
            session_ttl: Duration::from_secs(300),
            heartbeat_timeout: Duration::from_secs(30),
            opening_mode: OpeningMode::Fifo,
            pre_queue_window: Duration::from_secs(600),
        },
    }
}
