//! WebSocket-capacity benchmark: how many waiting-room sockets one workload
//! process holds, what each costs in memory and idle CPU, and how fast a
//! queue change reaches all of them.
//!
//! The server runs in a child process (this binary again, `--serve`), so its
//! `/proc/<pid>/status` counts only the server: the N client sockets live in
//! this process. First the queue service (`runtime::start`, embedded
//! backends, the same code as `twinkle local`; admission 1/s with at most one
//! active session, so nobody but the first customers is admitted): N
//! customers enter and open `/ws/events/{e}/queue?ticket=…`, spread over the
//! loopback source addresses 127.0.0.1..=127.0.0.S (~28k ephemeral ports
//! each). Every round, the admitted customer leaves (`DELETE …/session`); the
//! admission loop admits the next one and the hub pushes the new `position`
//! to every waiting client. Baseline, in the same run: a bare axum WebSocket
//! server (a `watch` channel broadcast to every socket, the same status JSON,
//! no store, no ticket, no hub) with the same N clients, triggered by
//! `POST /broadcast`; `--baseline-read-buffer` and `--baseline-tick-ms`
//! vary it to locate a difference. Prints a table or JSON (`-o json`);
//! results go to BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::{
    net::{Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use axum::{
    Router,
    extract::{
        State, WebSocketUpgrade,
        ws::{Message as ServerMessage, WebSocket},
    },
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use clap::{Parser, ValueEnum};
use futures::{StreamExt as _, stream};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    net::{TcpSocket, TcpStream},
    process::{Child, ChildStdin, Command},
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};
use twinkle_domain::QueueStatus;
use twinkle_workloads::{
    proc_stats,
    runtime::{self, Backends, RunOptions},
    web::WebConfig,
};

/// The event the child serves (a fresh embedded store each run).
const EVENT: &str = "bench-ws";
/// File descriptors kept free for everything that is not a client socket.
const FD_RESERVE: u64 = 512;
/// No message to any client for this long: the pushes have settled.
const QUIET: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Serve {
    Twinkle,
    Baseline,
}

impl Serve {
    fn name(self) -> &'static str {
        match self {
            Self::Twinkle => "twinkle",
            Self::Baseline => "baseline",
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(about = "Benchmark the queue WebSocket's capacity against a bare axum broadcast")]
struct Args {
    /// Client WebSockets held open at once (capped by the open-file limit).
    #[arg(long, default_value_t = 10_000)]
    clients: u64,
    /// Loopback source addresses 127.0.0.1..=127.0.0.S the clients bind to.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=250))]
    source_addresses: u8,
    /// Fan-out rounds per server.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// WebSocket handshakes in flight while connecting.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Seconds of the idle window (CPU with every socket open, no change).
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
    /// Read buffer of the baseline's server sockets, in bytes (default:
    /// axum's, 128 KiB, as our queue socket uses) — to see what a smaller
    /// one would save.
    #[arg(long)]
    baseline_read_buffer: Option<usize>,
    /// Diagnostic: the baseline also wakes every socket this often without
    /// a change (as our hub's tick does); they push nothing then.
    #[arg(long)]
    baseline_tick_ms: Option<u64>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Internal: run as the server child process.
    #[arg(long, value_enum, hide = true)]
    serve: Option<Serve>,
}

// ---------------------------------------------------------------------------
// The server child.

/// The queue service with the knobs of the measurement: admission 1/s, at
/// most one active session (so the waiting line only moves when the admitted
/// customer leaves), sessions that never time out, no enter rate limit.
async fn serve_twinkle() -> anyhow::Result<(SocketAddr, Box<dyn FnOnce() -> Stopping + Send>)> {
    let mut event = runtime::demo_event(jiff::Timestamp::now());
    event.id = EVENT.parse()?;
    event.queue.admission_per_second = 1;
    event.queue.max_active_sessions = 1;
    event.queue.session_ttl = Duration::from_secs(24 * 3600);
    event.queue.heartbeat_timeout = Duration::from_secs(24 * 3600);
    let running = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse()?,
        events: vec![event],
        backends: Backends::Embedded,
        token_secret: (0..32).map(|_| rand::random::<u8>()).collect(),
        web: WebConfig {
            cookie_secure: false,
            enter_per_second: NonZeroU32::MAX,
            enter_burst: NonZeroU32::MAX,
            trust_forwarded_for: false,
        },
        keeper: true,
        decider: false,
        holder: "bench".to_owned(),
        group: format!("bench-ws-{}", std::process::id()),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await?;
    let addr = running.addr;
    Ok((
        addr,
        Box::new(move || -> Stopping {
            Box::pin(async move { running.shutdown().await.map_err(anyhow::Error::from) })
        }),
    ))
}

type Stopping = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

#[derive(Clone)]
struct BaselineState {
    read_buffer: Option<usize>,
    /// How many broadcasts so far; every socket pushes on each change.
    served: Arc<watch::Sender<u64>>,
    /// Places handed to sockets, in connection order.
    next_place: Arc<AtomicU64>,
}

/// The baseline: one `watch` broadcast to every socket, each pushing the
/// same status JSON our queue socket sends (its own place minus the
/// broadcasts so far). No store, no ticket, no hub tick.
async fn serve_baseline(
    args: &Args,
) -> anyhow::Result<(SocketAddr, Box<dyn FnOnce() -> Stopping + Send>)> {
    let state = BaselineState {
        read_buffer: args.baseline_read_buffer,
        served: Arc::new(watch::channel(0).0),
        next_place: Arc::new(AtomicU64::new(1_000_000)),
    };
    let ticker = args.baseline_tick_ms.map(|ms| {
        let served = state.served.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(ms.max(1)));
            loop {
                every.tick().await;
                served.send_modify(|_| {}); // notifies, changes nothing
            }
        })
    });
    let app = Router::new()
        .route("/ws", get(baseline_socket))
        .route("/broadcast", post(baseline_broadcast))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    Ok((
        addr,
        Box::new(move || -> Stopping {
            Box::pin(async move {
                let _ = stop_tx.send(());
                server.abort();
                if let Some(ticker) = ticker {
                    ticker.abort();
                }
                Ok(())
            })
        }),
    ))
}

async fn baseline_broadcast(State(state): State<BaselineState>) -> StatusCode {
    state.served.send_modify(|n| *n += 1);
    StatusCode::NO_CONTENT
}

async fn baseline_socket(
    State(state): State<BaselineState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let place = state.next_place.fetch_add(1, Ordering::Relaxed);
    let served = state.served.subscribe();
    let upgrade = match state.read_buffer {
        Some(bytes) => upgrade.read_buffer_size(bytes),
        None => upgrade,
    };
    upgrade.on_upgrade(move |socket| baseline_serve(socket, served, place))
}

async fn baseline_serve(mut socket: WebSocket, mut served: watch::Receiver<u64>, place: u64) {
    let mut last = None;
    loop {
        let position = place.saturating_sub(*served.borrow_and_update());
        if last != Some(position) {
            last = Some(position);
            if !baseline_push(&mut socket, position).await {
                return;
            }
        }
        tokio::select! {
            changed = served.changed() => if changed.is_err() { return },
            incoming = socket.recv() => match incoming {
                Some(Ok(ServerMessage::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends the status JSON for `position`; false once the socket is gone.
async fn baseline_push(socket: &mut WebSocket, position: u64) -> bool {
    let status = QueueStatus {
        position: Some(position),
        ahead: Some(position.saturating_sub(1)),
        eta_seconds: Some(position),
        admitted: false,
        token: None,
        session_ended: false,
    };
    let Ok(text) = serde_json::to_string(&status) else {
        return false;
    };
    socket.send(ServerMessage::Text(text.into())).await.is_ok()
}

/// Child process: serve, print `LISTEN <addr>`, stop when stdin closes (the
/// parent exits or is done with us).
async fn serve_child(kind: Serve, args: &Args) -> anyhow::Result<()> {
    let (addr, stop) = match kind {
        Serve::Twinkle => serve_twinkle().await?,
        Serve::Baseline => serve_baseline(args).await?,
    };
    let (eof_tx, eof_rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    println!("LISTEN {addr}");
    let _ = eof_rx.await;
    tokio::time::timeout(Duration::from_secs(10), stop())
        .await
        .context("server did not stop within 10 s")?
}

/// The parent's handle on a server child.
struct Server {
    kind: Serve,
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    addr: SocketAddr,
}

impl Server {
    async fn spawn(kind: Serve, extra: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let mut child = Command::new(&exe)
            .args(["--serve", kind.name()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {} --serve {}", exe.display(), kind.name()))?;
        let pid = child.id().context("server child has no pid")?;
        let stdout = child.stdout.take().context("server child stdout")?;
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .with_context(|| format!("{} server did not start within 30 s", kind.name()))??
        .with_context(|| format!("{} server exited before listening", kind.name()))?;
        let addr = line
            .strip_prefix("LISTEN ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected first line from the server: {line:?}"))?;
        Ok(Self {
            kind,
            stdin: child.stdin.take(),
            child,
            pid,
            addr,
        })
    }

    fn rss_mib(&self) -> anyhow::Result<f64> {
        proc_status_kib(self.pid, "VmRSS:").map(|k| k / 1024.0)
    }

    fn peak_mib(&self) -> anyhow::Result<f64> {
        proc_status_kib(self.pid, "VmHWM:").map(|k| k / 1024.0)
    }

    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("{} server exited with {status}", self.kind.name());
                }
            }
            Err(_) => {
                eprintln!(
                    "{} server did not exit within 20 s: killing it",
                    self.kind.name()
                );
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// /proc readings.

fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<f64> {
    proc_stats::status_kib(pid, field).with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// User + system CPU seconds of a process (all threads).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    proc_stats::cpu_seconds(pid).with_context(|| format!("reading /proc/{pid}/stat"))
}

/// Soft and hard `Max open files` of this process.
fn open_file_limits() -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    parse_open_file_limits(&text).context("no `Max open files` in /proc/self/limits")
}

fn parse_open_file_limits(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    let parse = |v: Option<&str>| match v? {
        "unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    };
    Some((parse(values.next())?, parse(values.next())?))
}

/// Makes room for `clients` sockets here (and in the server child, which
/// inherits the limit): raises the soft limit towards the hard one with
/// util-linux `prlimit` (no unsafe code here), else caps the clients.
async fn fit_open_files(clients: u64) -> anyhow::Result<(u64, u64)> {
    let needed = clients + FD_RESERVE;
    let (mut soft, hard) = open_file_limits()?;
    if soft < needed && hard > soft {
        let target = needed.min(hard);
        let raised = Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={target}:{hard}"))
            .status()
            .await;
        match raised {
            Ok(s) if s.success() => soft = open_file_limits()?.0,
            Ok(s) => eprintln!("prlimit exited with {s}: keeping the open-file limit"),
            Err(e) => eprintln!("prlimit unavailable ({e}): keeping the open-file limit"),
        }
    }
    if soft < needed {
        let capped = soft.saturating_sub(FD_RESERVE);
        eprintln!(
            "open-file limit is {soft} (hard {hard}): capping --clients {clients} to {capped}; \
             raise it with `ulimit -n` to measure more"
        );
        return Ok((capped, soft));
    }
    Ok((clients, soft))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut v = t.split_whitespace().map(|p| p.parse::<u64>().ok());
            let (lo, hi) = (v.next()??, v.next()??);
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_232)
}

// ---------------------------------------------------------------------------
// The clients.

/// What a client reader reports to the collector.
enum Event {
    Status {
        client: usize,
        at: Instant,
        position: Option<u64>,
    },
    Closed {
        client: usize,
        why: String,
    },
}

#[derive(Deserialize)]
struct Pushed {
    position: Option<u64>,
}

/// N open client sockets, each read by its own task; the collector keeps the
/// last position every client saw.
struct Clients {
    tasks: Vec<JoinHandle<()>>,
    events: mpsc::UnboundedReceiver<Event>,
    positions: Vec<Option<u64>>,
    with_position: usize,
    messages: u64,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn read_pushes(
    client: usize,
    mut ws: WebSocketStream<TcpStream>,
    events: mpsc::UnboundedSender<Event>,
) {
    let why = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let at = Instant::now();
                let position = serde_json::from_str::<Pushed>(text.as_str())
                    .ok()
                    .and_then(|p| p.position);
                let _ = events.send(Event::Status {
                    client,
                    at,
                    position,
                });
            }
            Some(Ok(Message::Close(frame))) => break format!("closed by the server: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("read error: {e}"),
            None => break "stream ended".to_owned(),
        }
    };
    let _ = events.send(Event::Closed { client, why });
}

async fn connect_one(
    source: Ipv4Addr,
    server: SocketAddr,
    url: &str,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .context("bind")?;
    let stream = socket.connect(server).await.context("TCP connect")?;
    stream.set_nodelay(true)?;
    // The clients only read ~100-byte pushes: a small read buffer keeps this
    // (client) process light; the servers keep their defaults.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    Ok(ws)
}

/// Opens one socket per URL, client i from source address i mod S, with
/// progress on stderr; fails with the address and the count so far.
async fn connect_all(
    server: SocketAddr,
    urls: Vec<String>,
    sources: &[Ipv4Addr],
    concurrency: usize,
) -> anyhow::Result<(Clients, f64)> {
    let n = urls.len();
    let (tx, rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut attempts = stream::iter(urls.into_iter().enumerate())
        .map(|(i, url)| {
            let source = sources[i % sources.len()];
            async move {
                let ws = tokio::time::timeout(
                    Duration::from_secs(20),
                    connect_one(source, server, &url),
                )
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after 20 s")));
                (i, source, ws)
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut tasks = Vec::with_capacity(n);
    let mut shown = Instant::now();
    while let Some((i, source, ws)) = attempts.next().await {
        let ws = ws.with_context(|| {
            format!(
                "client {i} from {source} to {server} failed ({} of {n} connected)",
                tasks.len()
            )
        })?;
        tasks.push(tokio::spawn(read_pushes(i, ws, tx.clone())));
        if shown.elapsed() > Duration::from_secs(1) || tasks.len() == n {
            shown = Instant::now();
            eprint!("\r  connected {}/{n}", tasks.len());
        }
    }
    eprintln!();
    Ok((
        Clients {
            tasks,
            events: rx,
            positions: vec![None; n],
            with_position: 0,
            messages: 0,
        },
        started.elapsed().as_secs_f64(),
    ))
}

impl Clients {
    fn len(&self) -> usize {
        self.positions.len()
    }

    /// Applies one event; a closed socket is an error (nothing closes them
    /// during a measurement).
    fn apply(&mut self, event: Event) -> anyhow::Result<Option<(usize, Instant)>> {
        match event {
            Event::Status {
                client,
                at,
                position,
            } => {
                self.messages += 1;
                if position.is_some() && self.positions[client].is_none() {
                    self.with_position += 1;
                }
                self.positions[client] = position;
                Ok(Some((client, at)))
            }
            Event::Closed { client, why } => bail!("client {client}: {why}"),
        }
    }

    async fn next_event(&mut self, wait: Duration) -> anyhow::Result<Option<Event>> {
        match tokio::time::timeout(wait, self.events.recv()).await {
            Ok(Some(event)) => Ok(Some(event)),
            Ok(None) => bail!("every client reader ended"),
            Err(_) => Ok(None),
        }
    }

    /// Waits until every client has been told its place.
    async fn await_positions(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while self.with_position < self.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "only {} of {} clients got a position within {limit:?}",
                    self.with_position,
                    self.len()
                );
            }
            if let Some(event) = self.next_event(left).await? {
                self.apply(event)?;
            }
        }
        Ok(())
    }

    /// Waits until no client has received anything for `QUIET`.
    async fn await_quiet(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if Instant::now() > deadline {
                bail!("the pushes did not settle within {limit:?}");
            }
            match self.next_event(QUIET).await? {
                Some(event) => {
                    self.apply(event)?;
                }
                None => return Ok(()),
            }
        }
    }

    /// Runs `trigger` and times, per client, the first push whose position
    /// differs from the one it had before.
    async fn fan_out(
        &mut self,
        trigger: impl Future<Output = anyhow::Result<()>>,
        limit: Duration,
    ) -> anyhow::Result<(Instant, Vec<Instant>)> {
        let before = self.positions.clone();
        let mut got: Vec<Option<Instant>> = vec![None; self.len()];
        let mut missing = self.len();
        let t0 = Instant::now();
        trigger.await?;
        let deadline = t0 + limit;
        while missing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{missing} of {} clients saw no change within {limit:?}",
                    self.len()
                );
            }
            let Some(event) = self.next_event(left).await? else {
                continue;
            };
            if let Some((client, at)) = self.apply(event)?
                && got[client].is_none()
                && self.positions[client] != before[client]
            {
                got[client] = Some(at);
                missing -= 1;
            }
        }
        Ok((t0, got.into_iter().flatten().collect()))
    }
}

// ---------------------------------------------------------------------------
// Measurements.

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Round {
    trigger_to_first_ms: f64,
    trigger_to_last_ms: f64,
    /// First client → last client.
    spread_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Side {
    server: String,
    /// Server RSS right after start, before any customer.
    rss_start_mib: f64,
    /// Twinkle only: after N customers entered and were numbered (store).
    rss_entered_mib: Option<f64>,
    /// With every socket open and idle.
    rss_connected_mib: f64,
    /// Peak RSS (VmHWM) at the end of the rounds.
    rss_peak_mib: f64,
    /// (connected − entered or start) / N.
    per_connection_kib: f64,
    /// Server CPU with every socket open and nothing changing.
    idle_cpu_percent: f64,
    /// Pushes the clients received during that idle window.
    idle_messages: u64,
    /// This (client) process's RSS with the sockets open.
    client_process_rss_mib: f64,
    connect_seconds: f64,
    rounds: Vec<Round>,
    spread_p50_ms: f64,
    spread_max_ms: f64,
    /// Per client, pooled over rounds: its push after the first client's.
    since_first_p50_ms: f64,
    since_first_p99_ms: f64,
    /// Per client, pooled over rounds: its push after the trigger.
    since_trigger_p50_ms: f64,
    since_trigger_p99_ms: f64,
    since_trigger_max_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    clients: u64,
    source_addresses: u8,
    rounds: u32,
    open_file_limit: u64,
    /// The baseline server's socket read buffer (None: axum's default).
    baseline_read_buffer: Option<usize>,
    /// The baseline's no-change wake-up period (None: it wakes only to push).
    baseline_tick_ms: Option<u64>,
    load_average_start: String,
    load_average_end: String,
    twinkle: Side,
    baseline: Side,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Collects the rounds' per-client times into the side's summary.
#[derive(Default)]
struct Fanouts {
    rounds: Vec<Round>,
    since_first: Vec<f64>,
    since_trigger: Vec<f64>,
}

impl Fanouts {
    fn add(&mut self, t0: Instant, mut arrivals: Vec<Instant>) {
        arrivals.sort();
        let (Some(&first), Some(&last)) = (arrivals.first(), arrivals.last()) else {
            return;
        };
        self.rounds.push(Round {
            trigger_to_first_ms: ms(first.saturating_duration_since(t0)),
            trigger_to_last_ms: ms(last.saturating_duration_since(t0)),
            spread_ms: ms(last - first),
        });
        eprintln!(
            "  round {}: trigger→first {:.1} ms, first→last {:.1} ms",
            self.rounds.len(),
            ms(first.saturating_duration_since(t0)),
            ms(last - first)
        );
        for at in arrivals {
            self.since_first.push(ms(at - first));
            self.since_trigger
                .push(ms(at.saturating_duration_since(t0)));
        }
    }
}

struct Memory {
    start: f64,
    entered: Option<f64>,
    connected: f64,
}

fn summarize(
    server: &Server,
    n: usize,
    memory: Memory,
    idle: (f64, u64),
    connect_seconds: f64,
    fanouts: Fanouts,
) -> anyhow::Result<Side> {
    let mut spreads: Vec<f64> = fanouts.rounds.iter().map(|r| r.spread_ms).collect();
    spreads.sort_by(f64::total_cmp);
    let mut since_first = fanouts.since_first;
    since_first.sort_by(f64::total_cmp);
    let mut since_trigger = fanouts.since_trigger;
    since_trigger.sort_by(f64::total_cmp);
    let base = memory.entered.unwrap_or(memory.start);
    Ok(Side {
        server: server.kind.name().to_owned(),
        rss_start_mib: memory.start,
        rss_entered_mib: memory.entered,
        rss_connected_mib: memory.connected,
        rss_peak_mib: server.peak_mib()?,
        per_connection_kib: (memory.connected - base) * 1024.0 / n as f64,
        idle_cpu_percent: idle.0,
        idle_messages: idle.1,
        client_process_rss_mib: proc_status_kib(std::process::id(), "VmRSS:")? / 1024.0,
        connect_seconds,
        rounds: fanouts.rounds,
        spread_p50_ms: percentile(&spreads, 0.5),
        spread_max_ms: spreads.last().copied().unwrap_or_default(),
        since_first_p50_ms: percentile(&since_first, 0.5),
        since_first_p99_ms: percentile(&since_first, 0.99),
        since_trigger_p50_ms: percentile(&since_trigger, 0.5),
        since_trigger_p99_ms: percentile(&since_trigger, 0.99),
        since_trigger_max_ms: since_trigger.last().copied().unwrap_or_default(),
    })
}

/// Server CPU over the idle window, and the pushes clients got meanwhile.
async fn idle_window(
    server: &Server,
    clients: &mut Clients,
    seconds: u64,
) -> anyhow::Result<(f64, u64)> {
    let before = clients.messages;
    let cpu0 = server.cpu_seconds()?;
    let t0 = Instant::now();
    let window = Duration::from_secs(seconds.max(1));
    while t0.elapsed() < window {
        if let Some(event) = clients
            .next_event(window.saturating_sub(t0.elapsed()))
            .await?
        {
            clients.apply(event)?;
        }
    }
    let cpu = server.cpu_seconds()? - cpu0;
    Ok((
        100.0 * cpu / t0.elapsed().as_secs_f64(),
        clients.messages - before,
    ))
}

/// Sum of a metric family's samples in the Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_value(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(metric(&text, name))
}

async fn enter(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/api/events/{EVENT}/queue"))
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = r.json().await?;
    body["ticket"]
        .as_str()
        .map(str::to_owned)
        .context("no ticket in the enter answer")
}

/// Polls until the ticket's holder is admitted; returns the admission token.
async fn admission_token(
    http: &reqwest::Client,
    base: &str,
    ticket: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s: serde_json::Value = http
            .get(format!("{base}/api/events/{EVENT}/queue/status"))
            .bearer_auth(ticket)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(token) = s["token"].as_str() {
            return Ok(token.to_owned());
        }
        if Instant::now() > deadline {
            bail!("the trigger customer was not admitted within 15 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn poll_until(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !check().await? {
        if Instant::now() > deadline {
            bail!("{what}: not reached within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn sources(count: u8) -> Vec<Ipv4Addr> {
    (1..=count).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect()
}

async fn measure_twinkle(args: &Args, n: usize, http: &reqwest::Client) -> anyhow::Result<Side> {
    eprintln!("twinkle: starting the queue service (child process, embedded backends)…");
    let server = Server::spawn(Serve::Twinkle, &[]).await?;
    let base = format!("http://{}", server.addr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = server.rss_mib()?;

    // The trigger customers enter first (numbers 1..=R+1): the first is
    // admitted at once, each round the admitted one leaves.
    let mut triggers = Vec::new();
    for _ in 0..=args.rounds {
        triggers.push(enter(http, &base).await?);
    }
    eprintln!("twinkle: {n} customers enter…");
    let tickets: Vec<String> = stream::iter(0..n)
        .map(|_| enter(http, &base))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let waiting = (n + triggers.len() - 1) as f64;
    poll_until(
        "every customer numbered",
        Duration::from_secs(60),
        async || Ok(metrics_value(http, &base, "twinkle_queue_waiting").await? >= waiting),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entered = server.rss_mib()?;

    eprintln!(
        "twinkle: opening {n} queue WebSockets from {} source addresses…",
        args.source_addresses
    );
    let urls = tickets
        .iter()
        .map(|t| format!("ws://{}/ws/events/{EVENT}/queue?ticket={t}", server.addr))
        .collect();
    drop(tickets);
    let (mut clients, connect_seconds) = connect_all(
        server.addr,
        urls,
        &sources(args.source_addresses),
        args.connect_concurrency,
    )
    .await?;
    clients.await_positions(Duration::from_secs(120)).await?;
    let open = metrics_value(http, &base, "twinkle_queue_ws_clients").await?;
    if open < n as f64 {
        bail!("the server counts {open} open queue sockets, expected {n}");
    }
    clients.await_quiet(Duration::from_secs(60)).await?;
    let connected = server.rss_mib()?;
    eprintln!("twinkle: idle window ({} s)…", args.idle_seconds);
    let idle = idle_window(&server, &mut clients, args.idle_seconds).await?;

    let mut fanouts = Fanouts::default();
    for leaving in triggers.iter().take(args.rounds as usize) {
        let token = admission_token(http, &base, leaving).await?;
        clients.await_quiet(Duration::from_secs(60)).await?;
        let leave = async {
            http.delete(format!("{base}/api/events/{EVENT}/session"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        };
        let (t0, arrivals) = clients.fan_out(leave, Duration::from_secs(30)).await?;
        fanouts.add(t0, arrivals);
    }
    let side = summarize(
        &server,
        n,
        Memory {
            start,
            entered: Some(entered),
            connected,
        },
        idle,
        connect_seconds,
        fanouts,
    )?;
    drop(clients);
    server.stop().await?;
    Ok(side)
}

async fn measure_baseline(args: &Args, n: usize, http: &reqwest::Client) -> anyhow::Result<Side> {
    eprintln!("baseline: starting the bare axum broadcast server (child process)…");
    let mut extra = Vec::new();
    if let Some(bytes) = args.baseline_read_buffer {
        extra.extend(["--baseline-read-buffer".to_owned(), bytes.to_string()]);
    }
    if let Some(ms) = args.baseline_tick_ms {
        extra.extend(["--baseline-tick-ms".to_owned(), ms.to_string()]);
    }
    let server = Server::spawn(Serve::Baseline, &extra).await?;
    let base = format!("http://{}", server.addr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = server.rss_mib()?;
    eprintln!("baseline: opening {n} WebSockets…");
    let urls = (0..n).map(|_| format!("ws://{}/ws", server.addr)).collect();
    let (mut clients, connect_seconds) = connect_all(
        server.addr,
        urls,
        &sources(args.source_addresses),
        args.connect_concurrency,
    )
    .await?;
    clients.await_positions(Duration::from_secs(120)).await?;
    clients.await_quiet(Duration::from_secs(60)).await?;
    let connected = server.rss_mib()?;
    eprintln!("baseline: idle window ({} s)…", args.idle_seconds);
    let idle = idle_window(&server, &mut clients, args.idle_seconds).await?;
    let mut fanouts = Fanouts::default();
    for _ in 0..args.rounds {
        clients.await_quiet(Duration::from_secs(60)).await?;
        let broadcast = async {
            http.post(format!("{base}/broadcast"))
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        };
        let (t0, arrivals) = clients.fan_out(broadcast, Duration::from_secs(30)).await?;
        fanouts.add(t0, arrivals);
    }
    let side = summarize(
        &server,
        n,
        Memory {
            start,
            entered: None,
            connected,
        },
        idle,
        connect_seconds,
        fanouts,
    )?;
    drop(clients);
    server.stop().await?;
    Ok(side)
}

fn print_table(r: &Results) {
    let (t, b) = (&r.twinkle, &r.baseline);
    println!(
        "{} clients over {} source addresses, {} rounds; load average {} → {}",
        r.clients, r.source_addresses, r.rounds, r.load_average_start, r.load_average_end
    );
    if let Some(bytes) = r.baseline_read_buffer {
        println!("baseline server sockets' read buffer: {bytes} bytes (axum's default: 128 KiB)");
    }
    if let Some(ms) = r.baseline_tick_ms {
        println!("baseline also wakes every socket every {ms} ms without a change");
    }
    println!(
        "{:<44} {:>10} {:>10} {:>7}",
        "MEASUREMENT (server process)", "TWINKLE", "BASELINE", "RATIO"
    );
    let row = |name: &str, tw: f64, base: Option<f64>| {
        let base_text = base.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let ratio = base
            .filter(|v| *v > 0.0)
            .map_or(String::new(), |v| format!("{:.2}x", tw / v));
        println!("{name:<44} {tw:>10.1} {base_text:>10} {ratio:>7}");
    };
    row("RSS at start (MiB)", t.rss_start_mib, Some(b.rss_start_mib));
    if let Some(e) = t.rss_entered_mib {
        row("RSS with N customers entered (MiB)", e, None);
    }
    row(
        "RSS with N sockets open (MiB)",
        t.rss_connected_mib,
        Some(b.rss_connected_mib),
    );
    row("RSS peak (MiB)", t.rss_peak_mib, Some(b.rss_peak_mib));
    row(
        "RSS per connection (KiB)",
        t.per_connection_kib,
        Some(b.per_connection_kib),
    );
    row(
        "idle CPU, N sockets open (%)",
        t.idle_cpu_percent,
        Some(b.idle_cpu_percent),
    );
    row(
        "pushes during the idle window",
        t.idle_messages as f64,
        Some(b.idle_messages as f64),
    );
    row(
        "connect N sockets (s)",
        t.connect_seconds,
        Some(b.connect_seconds),
    );
    row(
        "fan-out first→last client, p50 round (ms)",
        t.spread_p50_ms,
        Some(b.spread_p50_ms),
    );
    row(
        "fan-out first→last client, max round (ms)",
        t.spread_max_ms,
        Some(b.spread_max_ms),
    );
    row(
        "per client after the first, p50 (ms)",
        t.since_first_p50_ms,
        Some(b.since_first_p50_ms),
    );
    row(
        "per client after the first, p99 (ms)",
        t.since_first_p99_ms,
        Some(b.since_first_p99_ms),
    );
    row(
        "per client after the trigger, p50 (ms)",
        t.since_trigger_p50_ms,
        Some(b.since_trigger_p50_ms),
    );
    row(
        "per client after the trigger, p99 (ms)",
        t.since_trigger_p99_ms,
        Some(b.since_trigger_p99_ms),
    );
    row(
        "per client after the trigger, max (ms)",
        t.since_trigger_max_ms,
        Some(b.since_trigger_max_ms),
    );
    println!(
        "client process RSS with the sockets open: {:.1} MiB (twinkle run), {:.1} MiB (baseline run)",
        t.client_process_rss_mib, b.client_process_rss_mib
    );
    println!(
        "twinkle's trigger is DELETE …/session: the admission loop (100 ms tick) admits the next \
         customer and the hub (250 ms tick) pushes, so trigger→client includes up to 350 ms of ticks"
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(kind) = args.serve {
        return serve_child(kind, &args).await;
    }
    let (clients, open_file_limit) = fit_open_files(args.clients).await?;
    let ports = ephemeral_ports() * u64::from(args.source_addresses);
    if clients > ports {
        bail!(
            "{clients} clients need more than the {ports} ephemeral ports of {} source addresses: \
             raise --source-addresses",
            args.source_addresses
        );
    }
    let n = usize::try_from(clients)?;
    if n == 0 {
        bail!("no clients to connect");
    }
    let load_average_start = load_average();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .context("HTTP client")?;
    let twinkle = measure_twinkle(&args, n, &http).await?;
    let baseline = measure_baseline(&args, n, &http).await?;
    let results = Results {
        clients,
        source_addresses: args.source_addresses,
        rounds: args.rounds,
        open_file_limit,
        baseline_read_buffer: args.baseline_read_buffer,
        baseline_tick_ms: args.baseline_tick_ms,
        load_average_start,
        load_average_end: load_average(),
        twinkle,
        baseline,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Output::Table => print_table(&results),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_readings() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            20000                1048576              files     \n";
        assert_eq!(parse_open_file_limits(limits), Some((20_000, 1_048_576)));
        let metrics = "# HELP twinkle_queue_waiting x\ntwinkle_queue_waiting{event=\"a\"} 7\ntwinkle_queue_waiting_other 5\ntwinkle_queue_ws_clients{event=\"a\"} 3\n";
        assert!((metric(metrics, "twinkle_queue_waiting") - 7.0).abs() < 1e-9);
        assert!((metric(metrics, "twinkle_queue_ws_clients") - 3.0).abs() < 1e-9);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 0.5) - 3.0).abs() < 1e-9);
    }
}
