//! Wires a running queue process: backends, background loops and the HTTP
//! server. `main` and the integration tests start exactly the same thing.

use std::{net::SocketAddr, sync::Arc};

use tokio::{sync::watch, task::JoinHandle};
use twinkle_domain::{EventConfig, tokens::TokenKeys};

use crate::{
    Error, Result,
    backend::{
        kafka::{self, KafkaLog, Topics},
        kafka_fenced::{KafkaDecisionLog, KafkaFencedLog},
        memory::{MemoryLog, MemoryStore},
        memory_fenced::{MemoryDecisions, MemoryFenced},
        redis_store::RedisStore,
    },
    decider::Decider,
    keeper::Keeper,
    metrics::Metrics,
    ports::{
        BookingOutcome, BookingRequest, BookingStore, DecisionLog, JournalRecord, QueueEntry,
        QueueJournal,
    },
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
    /// Run the queue keeper (places and admission; the queue consumer) in
    /// this process. Only the holder of the event's keeper lease keeps the
    /// queue, so standbys may run it too.
    pub keeper: bool,
    /// Run the decider (booking consumer) in this process.
    pub decider: bool,
    /// Identity in the keeper and decider leases (pod name).
    pub holder: String,
    /// Kafka consumer group prefix: the keeper reads as `<group>.assigner`,
    /// the decider as `<group>.decider`.
    pub group: String,
    /// Kafka topic prefix; `None` keeps `twinkle.<event>`. The operator sets
    /// its namespaced `<namespace>.<name>`.
    pub topic_prefix: Option<String>,
    /// The writers' DR pairing: the keeper and the decider write only
    /// while their region owns the sale. `None`: one region, always.
    pub ownership: Option<crate::ownership::OwnershipSettings>,
    /// In the DR region: the primary's Kafka bootstrap, read to report how
    /// far this region's replicated topics trail it
    /// (`twinkle_replication_lag_seconds`). Real backends only.
    pub replicate_from: Option<String>,
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
    journal: Option<Box<dyn QueueJournal>>,
    decisions: Option<Box<dyn DecisionLog>>,
}

async fn wire(opts: &RunOptions) -> Result<Wired> {
    match &opts.backends {
        Backends::Embedded => {
            let queue_log = MemoryLog::<QueueEntry>::default();
            let booking_log = MemoryLog::<BookingRequest>::default();
            let outcomes = MemoryLog::<BookingOutcome>::default();
            let journal = MemoryLog::<JournalRecord>::default();
            let store = Arc::new(MemoryStore::default());
            Ok(Wired {
                journal: opts.keeper.then(|| {
                    let log = MemoryFenced::new(queue_log.clone(), journal).session();
                    Box::new(log) as Box<dyn QueueJournal>
                }),
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
            let journal = opts.keeper.then(|| {
                let group = format!("{}.assigner", opts.group);
                let log = KafkaFencedLog::<QueueEntry, JournalRecord>::new(
                    bootstrap,
                    &group,
                    &topics.queue,
                    &topics.journal,
                );
                Box::new(log) as Box<dyn QueueJournal>
            });
            let decisions = opts.decider.then(|| {
                let group = format!("{}.decider", opts.group);
                let log =
                    KafkaDecisionLog::new(bootstrap, &group, &topics.bookings, &topics.outcomes);
                Box::new(log) as Box<dyn DecisionLog>
            });
            Ok(Wired {
                journal,
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
    }
    let first = opts.events.first().map(|e| Arc::new(e.clone()));
    // One watch for the process's writers: the keeper and the decider of a
    // region sell together.
    let ownership = opts
        .ownership
        .as_ref()
        .map(crate::ownership::OwnershipWatch::spawn)
        .transpose()?;
    if let (Some(log), Some(event)) = (wired.journal, &first) {
        let keeper = Keeper {
            event: event.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            holder: opts.holder.clone(),
            ownership: ownership.clone(),
        };
        tasks.push(tokio::spawn(keeper.run(log, stopped(&stop_rx))));
    }
    if let (Some(log), Some(event)) = (wired.decisions, first) {
        let decider = Decider {
            event,
            projection: bookings.clone(),
            sessions: store.clone(),
            metrics: metrics.clone(),
            holder: opts.holder.clone(),
            ownership,
        };
        tasks.push(tokio::spawn(decider.run(log, stopped(&stop_rx))));
    }

    if let (Some(source), Backends::Real { kafka, .. }, Some(event)) =
        (&opts.replicate_from, &opts.backends, opts.events.first())
    {
        let topics = match &opts.topic_prefix {
            Some(prefix) => Topics::with_prefix(prefix),
            None => Topics::for_event(&event.id),
        };
        let gauge = metrics
            .replication_lag_seconds
            .get_or_create(&Metrics::label(&event.id))
            .clone();
        tasks.push(tokio::spawn(crate::replication::report_lag(
            source.clone(),
            kafka.clone(),
            topics,
            gauge,
            stopped(&stop_rx),
        )));
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
        dr_reserve_per_slot: None,
    }
}
