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
        kafka::{KafkaLog, KafkaSource, queue_topic},
        memory::{MemoryLog, MemoryStore},
        redis_store::RedisStore,
    },
    metrics::Metrics,
    ports::{QueueLog, QueueSource, QueueStore},
    web::{AppState, EventRuntime, Hub, WebConfig, app},
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
    /// Run the admission loop (it only advances the counter while holding
    /// the event's lease, so every API pod may run it).
    pub admission: bool,
    /// Identity in the admission lease (pod name).
    pub holder: String,
    /// Kafka consumer group of the assigner.
    pub group: String,
    /// Kafka queue topic; `None` keeps `twinkle.<event>.queue`. The operator
    /// sets its namespaced `<namespace>.<name>.queue`.
    pub queue_topic: Option<String>,
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

/// The log, the store, and the assigner's sources (none unless it runs here).
type Wired = (
    Arc<dyn QueueLog>,
    Arc<dyn QueueStore>,
    Vec<Box<dyn QueueSource>>,
);

/// Connects the backends, starts loops and the server.
pub async fn start(opts: RunOptions) -> Result<Running> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let keys = TokenKeys::from_secret(&opts.token_secret)?;
    let mut tasks = Vec::new();

    let (log, store, sources): Wired = match &opts.backends {
        Backends::Embedded => {
            let log = MemoryLog::default();
            let sources: Vec<Box<dyn QueueSource>> = if opts.assigner {
                vec![Box::new(log.source())]
            } else {
                Vec::new()
            };
            (Arc::new(log), Arc::new(MemoryStore::default()), sources)
        }
        Backends::Real { kafka, redis } => {
            // One event per process in production (the operator deploys
            // each TicketEvent's workloads separately).
            let event = opts
                .events
                .first()
                .ok_or_else(|| Error::Backend("no event configured".into()))?;
            let topic = opts
                .queue_topic
                .clone()
                .unwrap_or_else(|| queue_topic(&event.id));
            let log = KafkaLog::new(kafka, topic.clone())?;
            let store = RedisStore::connect(redis).await?;
            let sources: Vec<Box<dyn QueueSource>> = if opts.assigner {
                vec![Box::new(KafkaSource::new(kafka, &opts.group, &topic)?)]
            } else {
                Vec::new()
            };
            (Arc::new(log), Arc::new(store), sources)
        }
    };

    let mut runtimes = Vec::new();
    for event in &opts.events {
        event.validate()?;
        let config = Arc::new(event.clone());
        let hub = Hub::spawn(config.id.clone(), store.clone(), stopped(&stop_rx));
        runtimes.push(EventRuntime {
            config: config.clone(),
            hub,
        });
        if opts.admission {
            let admission = Admission::new(config, store.clone(), opts.holder.clone());
            tasks.push(tokio::spawn(admission.run(stopped(&stop_rx))));
        }
    }
    let mode = opts
        .events
        .first()
        .map(|e| e.queue.opening_mode)
        .unwrap_or_default();
    for source in sources {
        tasks.push(tokio::spawn(assigner::run(
            source,
            store.clone(),
            mode,
            stopped(&stop_rx),
        )));
    }

    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(
        runtimes,
        keys,
        log,
        store,
        metrics,
        opts.web.clone(),
        stop_rx.clone(),
    );
    let prune_state = state.clone();
    let mut prune_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = prune_stop.wait_for(|s| *s) => break,
                _ = every.tick() => prune_state.prune_rate_limits(),
            }
        }
    }));

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
