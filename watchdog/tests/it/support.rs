//! Test fixtures: switchable health targets, a Route53 front in front of
//! moto (call counting, fault injection, real compare-and-set semantics),
//! a webhook sink, zone set-up and a watchdog config with short timings.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_route53::Client;
use aws_sdk_route53::config::{Credentials, Region};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use twinkle_dr::Weights;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_watchdog::{Clients, WatchdogConfig};

pub const INTERVAL_MS: u64 = 150;
pub const FAILURES_TO_DOWN: u64 = 3;
pub const LEASE_MS: u64 = 1_500;

/// Logs to the test's captured output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

// ---------------------------------------------------------------- targets

/// A local HTTP target whose `/healthz` answers 200 or 503, or which is
/// stopped altogether (connection refused) and restarted on the same port.
pub struct HealthTarget {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl HealthTarget {
    pub async fn start(healthy: bool) -> HealthTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = HealthTarget {
            addr: listener.local_addr().unwrap(),
            status: Arc::new(AtomicU16::new(if healthy { 200 } else { 503 })),
            server: Mutex::new(None),
        };
        target.serve(listener);
        target
    }

    fn serve(&self, listener: TcpListener) {
        let status = Arc::clone(&self.status);
        let app = Router::new().route(
            "/healthz",
            get(move || {
                let code = status.load(Ordering::SeqCst);
                async move { StatusCode::from_u16(code).unwrap() }
            }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *self.server.lock().unwrap() = Some(task);
    }

    pub fn url(&self) -> String {
        format!("http://{}/healthz", self.addr)
    }

    /// 200 (healthy) or 503 (e.g. no ready pods behind the load balancer).
    pub fn set_healthy(&self, healthy: bool) {
        self.status
            .store(if healthy { 200 } else { 503 }, Ordering::SeqCst);
    }

    /// Stops listening: probes get connection refused.
    pub fn stop(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Listens again on the same port, healthy.
    pub async fn restart(&self) {
        self.stop();
        self.set_healthy(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("cannot rebind {}: {error}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl Drop for HealthTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ moto

fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_route53::config::SharedCredentialsProvider::new(
            Credentials::new("testing", "testing", None, None, "moto"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// A plain SDK client straight to moto: the test's own view of Route53.
pub fn moto_client(stack: &Stack) -> Client {
    Client::new(&sdk_config(&stack.route53_endpoint))
}

/// The watchdog's clients, pointed at `endpoint` (usually the front).
pub fn clients_for(config: &WatchdogConfig, endpoint: &str) -> Clients {
    Clients::from_sdk_config(&sdk_config(endpoint), config).unwrap()
}

pub struct Zone {
    pub id: String,
    pub record: String,
}

pub async fn create_zone(moto: &Client) -> Zone {
    let name = format!("{}.example.", unique("dr"));
    let zone = moto
        .create_hosted_zone()
        .name(&name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create hosted zone");
    let id = zone.hosted_zone().unwrap().id().to_owned();
    Zone {
        id: id.trim_start_matches("/hostedzone/").to_owned(),
        record: format!("tickets.{name}"),
    }
}

pub const SET_IDS: [&str; 3] = ["primary-seoul-eks", "dr-singapore-eks", "dr-singapore-ecs"];
const VALUES: [&str; 3] = ["192.0.2.10", "192.0.2.20", "192.0.2.30"];

/// What terraform would have created: the three weighted records.
pub async fn seed_weights(moto: &Client, zone: &Zone, weights: Weights) {
    let mut batch = ChangeBatch::builder();
    for (i, weight) in [weights.primary, weights.dr_eks, weights.dr_ecs]
        .into_iter()
        .enumerate()
    {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(
                    ResourceRecordSet::builder()
                        .name(&zone.record)
                        .r#type(RrType::A)
                        .set_identifier(SET_IDS[i])
                        .weight(i64::from(weight))
                        .ttl(60)
                        .resource_records(
                            ResourceRecord::builder().value(VALUES[i]).build().unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    }
    moto.change_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .expect("seed weights");
}

/// The weights as moto holds them, read directly (not through the front).
pub async fn moto_weights(moto: &Client, zone: &Zone) -> Option<Weights> {
    let sets = moto
        .list_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .send()
        .await
        .expect("list record sets");
    let mut by_id = BTreeMap::new();
    for set in sets.resource_record_sets() {
        if set.r#type() == &RrType::A
            && let Some(id) = set.set_identifier()
        {
            by_id.insert(id.to_owned(), set.weight().unwrap() as u8);
        }
    }
    Some(Weights::new(
        *by_id.get(SET_IDS[0])?,
        *by_id.get(SET_IDS[1])?,
        *by_id.get(SET_IDS[2])?,
    ))
}

/// The lease TXT values as moto holds them.
pub async fn moto_txt(moto: &Client, zone: &Zone, name: &str) -> Vec<String> {
    let sets = moto
        .list_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .send()
        .await
        .expect("list record sets");
    sets.resource_record_sets()
        .iter()
        .filter(|s| {
            s.r#type() == &RrType::Txt
                && s.name().trim_end_matches('.') == name.trim_end_matches('.')
        })
        .flat_map(|s| s.resource_records().iter().map(|r| r.value().to_owned()))
        .collect()
}

// ---------------------------------------------------------------- config

pub struct Targets {
    pub primary: HealthTarget,
    pub dr_eks: HealthTarget,
    pub dr_ecs: HealthTarget,
}

impl Targets {
    pub async fn start(primary: bool, dr_eks: bool, dr_ecs: bool) -> Targets {
        Targets {
            primary: HealthTarget::start(primary).await,
            dr_eks: HealthTarget::start(dr_eks).await,
            dr_ecs: HealthTarget::start(dr_ecs).await,
        }
    }
}

/// A `dr.yaml` with test timings: probes every 150 ms, down after 3
/// failures, up after 2 successes, dwells of 1 s, a 1.5 s lease.
pub fn config_yaml(zone: &Zone, targets: &Targets, holder: &str, extra_failover: &str) -> String {
    format!(
        r#"
route53:
  hostedZoneId: {zone_id}
  recordName: {record}
  recordType: A
  ttl: 60
  retry: {{ minDelayMs: 20, maxDelayMs: 200, maxRetries: 6 }}
  insyncPollMs: 50
  insyncTimeoutMs: 5000
targets:
  primary: {{ setIdentifier: {s0}, values: [{v0}], healthUrl: "{u0}" }}
  drEks: {{ setIdentifier: {s1}, values: [{v1}], healthUrl: "{u1}" }}
  drEcs: {{ setIdentifier: {s2}, values: [{v2}], healthUrl: "{u2}" }}
probe: {{ intervalMs: {INTERVAL_MS}, timeoutMs: 100 }}
failover:
  probe: {{ failuresToDown: {FAILURES_TO_DOWN}, successesToUp: 2 }}
  minStateDwellMs: 1000
  drEksSplitAfterMs: 1000
{full}{extra_failover}
lease: {{ durationMs: {LEASE_MS}, clockSkewMarginMs: 100, holderId: {holder} }}
"#,
        zone_id = zone.id,
        record = zone.record,
        s0 = SET_IDS[0],
        s1 = SET_IDS[1],
        s2 = SET_IDS[2],
        v0 = VALUES[0],
        v1 = VALUES[1],
        v2 = VALUES[2],
        u0 = targets.primary.url(),
        u1 = targets.dr_eks.url(),
        u2 = targets.dr_ecs.url(),
        full = if extra_failover.contains("drEksFullAfterMs") {
            ""
        } else {
            "  drEksFullAfterMs: 1000\n"
        },
    )
}

// ----------------------------------------------------------------- waits

/// Polls `check` every 25 ms until it returns `Some`, or panics after
/// `timeout` saying what it waited for.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ----------------------------------------------------------------- front

/// A fault to answer a weight batch with instead of forwarding it.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    Throttling,
    PriorRequestNotComplete,
    ServiceUnavailable,
}

/// One `ChangeResourceRecordSets` the front saw.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Set identifier → weight, for the weighted UPSERTs in the batch.
    pub weights: BTreeMap<String, u8>,
    /// Holder of the lease value the batch CREATEs, if any.
    pub lease_holder: Option<String>,
    /// The ownership value (`region=… epoch=…`) the batch CREATEs, if any.
    pub ownership: Option<String>,
    /// Answered by moto with 2xx (else faulted or rejected).
    pub applied: bool,
    pub fault: Option<String>,
}

impl Batch {
    pub fn has_weights(&self) -> bool {
        !self.weights.is_empty()
    }
}

#[derive(Default)]
struct FrontState {
    calls: BTreeMap<&'static str, u64>,
    batches: Vec<Batch>,
    faults: Vec<Fault>,
}

/// An HTTP front for moto: counts Route53 calls per operation, answers
/// the next weight batches with injected faults, and enforces what real
/// Route53 does and moto does not — a DELETE must match the current value
/// exactly and a CREATE must find no record — atomically per batch.
#[derive(Clone)]
pub struct Front {
    pub endpoint: String,
    moto: String,
    http: reqwest::Client,
    state: Arc<Mutex<FrontState>>,
    /// Serialises check-then-forward so the compare-and-set is atomic.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Front {
    pub async fn start(stack: &Stack) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = Front {
            endpoint: format!("http://{}", listener.local_addr().unwrap()),
            moto: stack.route53_endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            state: Arc::default(),
            gate: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(front.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        front
    }

    /// Answers the next weight batches with these faults, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.state.lock().unwrap().faults.extend_from_slice(faults);
    }

    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.state.lock().unwrap().batches.clone()
    }

    /// Weight batches moto applied.
    pub fn weight_writes(&self) -> Vec<Batch> {
        self.batches()
            .into_iter()
            .filter(|b| b.applied && b.has_weights())
            .collect()
    }
}

fn operation(method: &Method, path: &str) -> &'static str {
    let path = path.trim_end_matches('/');
    match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/rrset") => "ChangeResourceRecordSets",
        ("GET", p) if p.ends_with("/rrset") => "ListResourceRecordSets",
        ("GET", p) if p.contains("/change/") => "GetChange",
        ("GET", p) if p.contains("/healthcheck/") && p.ends_with("/status") => {
            "GetHealthCheckStatus"
        }
        _ => "Other",
    }
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error>\
         <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>front</RequestId></ErrorResponse>"
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

/// Text between the first `<tag>` and `</tag>` in `xml`.
fn tag<'x>(xml: &'x str, name: &str) -> Option<&'x str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

fn all_tags<'x>(xml: &'x str, name: &str) -> Vec<&'x str> {
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(value) = tag(rest, name) {
        found.push(value);
        let Some(next) = rest.find(&close) else { break };
        rest = &rest[next + close.len()..];
    }
    found
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

struct ParsedChange {
    action: String,
    name: String,
    record_type: String,
    set_identifier: Option<String>,
    weight: Option<u8>,
    ttl: Option<String>,
    values: Vec<String>,
}

fn parse_changes(body: &str) -> Vec<ParsedChange> {
    all_tags(body, "Change")
        .into_iter()
        .map(|change| ParsedChange {
            action: tag(change, "Action").unwrap_or_default().to_owned(),
            name: tag(change, "Name")
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_owned(),
            record_type: tag(change, "Type").unwrap_or_default().to_owned(),
            set_identifier: tag(change, "SetIdentifier").map(str::to_owned),
            weight: tag(change, "Weight").and_then(|w| w.parse().ok()),
            ttl: tag(change, "TTL").map(str::to_owned),
            values: all_tags(change, "Value")
                .into_iter()
                .map(unescape)
                .collect(),
        })
        .collect()
}

impl Front {
    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let url = format!(
            "{}{}",
            self.moto,
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut request = self.http.request(method, url).body(body);
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .cloned()
            .unwrap_or_else(|| "text/xml".parse().unwrap());
        let bytes = response.bytes().await.unwrap_or_default();
        (status, [("content-type", content_type)], bytes).into_response()
    }

    /// The current TXT values and TTL of `name` in moto.
    async fn current_txt(&self, zone_path: &str, name: &str) -> Option<(String, Vec<String>)> {
        let url = format!("{}{zone_path}?name={name}.&type=TXT&maxitems=1", self.moto);
        // moto routes unsigned requests to S3: name the service the way a
        // SigV4 credential scope does (moto does not check signatures).
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let body = self
            .http
            .get(url)
            .header("authorization", auth)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let set = tag(&body, "ResourceRecordSet")?;
        let listed = tag(set, "Name")?.trim_end_matches('.');
        if !listed.eq_ignore_ascii_case(name) || tag(set, "Type")? != "TXT" {
            return None;
        }
        let ttl = tag(set, "TTL").unwrap_or_default().to_owned();
        Some((
            ttl,
            all_tags(set, "Value").into_iter().map(unescape).collect(),
        ))
    }

    /// Real Route53's rule for non-weighted records in a batch: DELETE
    /// must repeat the current TTL and values exactly, CREATE must find no
    /// record. Checked in order, as Route53 does within one batch.
    async fn check_compare_and_set(
        &self,
        zone_path: &str,
        changes: &[ParsedChange],
    ) -> Result<(), String> {
        let mut current: BTreeMap<String, Option<(String, Vec<String>)>> = BTreeMap::new();
        for change in changes {
            if change.record_type != "TXT" || change.set_identifier.is_some() {
                continue;
            }
            if !current.contains_key(&change.name) {
                let txt = self.current_txt(zone_path, &change.name).await;
                current.insert(change.name.clone(), txt);
            }
            let slot = current.get_mut(&change.name).unwrap();
            match change.action.as_str() {
                "DELETE" => {
                    let wanted = (
                        change.ttl.clone().unwrap_or_default(),
                        change.values.clone(),
                    );
                    match slot {
                        Some(existing) if *existing == wanted => *slot = None,
                        Some(_) => {
                            return Err(format!(
                                "Tried to delete resource record set [name='{}.', type='TXT'] but the values provided do not match the current values",
                                change.name
                            ));
                        }
                        None => {
                            return Err(format!(
                                "Tried to delete resource record set [name='{}.', type='TXT'] but it was not found",
                                change.name
                            ));
                        }
                    }
                }
                "CREATE" => {
                    if slot.is_some() {
                        return Err(format!(
                            "Tried to create resource record set [name='{}.', type='TXT'] but it already exists",
                            change.name
                        ));
                    }
                    *slot = Some((
                        change.ttl.clone().unwrap_or_default(),
                        change.values.clone(),
                    ));
                }
                _ => {
                    *slot = Some((
                        change.ttl.clone().unwrap_or_default(),
                        change.values.clone(),
                    ))
                }
            }
        }
        Ok(())
    }
}

async fn handle(
    State(front): State<Front>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = operation(&method, uri.path());
    *front.state.lock().unwrap().calls.entry(op).or_default() += 1;
    if op != "ChangeResourceRecordSets" {
        return front.forward(method, &uri, &headers, body).await;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let changes = parse_changes(&text);
    let weights: BTreeMap<String, u8> = changes
        .iter()
        .filter_map(|c| Some((c.set_identifier.clone()?, c.weight?)))
        .collect();
    let lease_holder = changes
        .iter()
        .filter(|c| c.action == "CREATE" && c.record_type == "TXT")
        .flat_map(|c| c.values.iter())
        .find_map(|v| {
            v.trim_matches('"')
                .split(' ')
                .find_map(|f| f.strip_prefix("holder=").map(str::to_owned))
        });
    let ownership = changes
        .iter()
        .filter(|c| c.action == "CREATE" && c.record_type == "TXT")
        .flat_map(|c| c.values.iter())
        .map(|v| v.trim_matches('"'))
        .find(|v| v.starts_with("region="))
        .map(str::to_owned);
    let mut batch = Batch {
        weights,
        lease_holder,
        ownership,
        applied: false,
        fault: None,
    };
    if batch.has_weights() {
        let fault = {
            let mut state = front.state.lock().unwrap();
            (!state.faults.is_empty()).then(|| state.faults.remove(0))
        };
        if let Some(fault) = fault {
            batch.fault = Some(format!("{fault:?}"));
            front.state.lock().unwrap().batches.push(batch);
            return match fault {
                Fault::Throttling => {
                    xml_error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")
                }
                Fault::PriorRequestNotComplete => xml_error(
                    StatusCode::BAD_REQUEST,
                    "PriorRequestNotComplete",
                    "The request was rejected because Route 53 was still processing a prior request.",
                ),
                Fault::ServiceUnavailable => xml_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "try again",
                ),
            };
        }
    }
    let _gate = front.gate.lock().await;
    let zone_path = uri.path().trim_end_matches('/').to_owned();
    if let Err(message) = front.check_compare_and_set(&zone_path, &changes).await {
        batch.fault = Some("InvalidChangeBatch".to_owned());
        front.state.lock().unwrap().batches.push(batch);
        return xml_error(StatusCode::BAD_REQUEST, "InvalidChangeBatch", &message);
    }
    let response = front.forward(method, &uri, &headers, body).await;
    batch.applied = response.status().is_success();
    if !batch.applied {
        batch.fault = Some(format!("moto {}", response.status()));
    }
    front.state.lock().unwrap().batches.push(batch);
    response
}

// --------------------------------------------------------------- webhooks

/// Collects webhook POSTs: (path, JSON body).
#[derive(Clone, Default)]
pub struct WebhookSink {
    pub url: String,
    received: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = WebhookSink {
            url: format!("http://{}", listener.local_addr().unwrap()),
            received: Arc::default(),
        };
        let received = Arc::clone(&sink.received);
        let app = Router::new().route(
            "/{hook}",
            post(
                move |axum::extract::Path(hook): axum::extract::Path<String>,
                      axum::Json(body): axum::Json<serde_json::Value>| {
                    let received = Arc::clone(&received);
                    async move {
                        received.lock().unwrap().push((hook, body));
                        StatusCode::OK
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sink
    }

    pub fn received(&self, hook: &str) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h == hook)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

// --------------------------------------------------------------- harness

/// One test's world: a fresh zone seeded 100/0/0, three targets, a front
/// and a webhook sink.
pub struct Harness {
    pub moto: Client,
    pub zone: Zone,
    pub targets: Targets,
    pub front: Front,
    pub sink: WebhookSink,
}

impl Harness {
    pub async fn new(primary: bool, dr_eks: bool, dr_ecs: bool) -> Harness {
        init_tracing();
        let stack = Stack::require();
        let moto = moto_client(&stack);
        let zone = create_zone(&moto).await;
        seed_weights(&moto, &zone, Weights::new(100, 0, 0)).await;
        let front = Front::start(&stack).await;
        Harness {
            targets: Targets::start(primary, dr_eks, dr_ecs).await,
            sink: WebhookSink::start().await,
            moto,
            zone,
            front,
        }
    }

    /// The test config for `holder`, webhooks pointed at the sink, plus
    /// extra `failover:` lines.
    pub fn config_with(&self, holder: &str, extra_failover: &str) -> WatchdogConfig {
        let mut yaml = config_yaml(&self.zone, &self.targets, holder, extra_failover);
        yaml.push_str(&format!(
            "webhooks: {{ notifyUrl: \"{0}/notify\", provisioningUrl: \"{0}/provision\", timeoutMs: 1000, attempts: 2 }}\n",
            self.sink.url
        ));
        WatchdogConfig::from_yaml(&yaml).unwrap()
    }

    pub fn config(&self, holder: &str) -> WatchdogConfig {
        self.config_with(holder, "")
    }

    /// Clients through the front.
    pub fn clients(&self, config: &WatchdogConfig) -> Clients {
        clients_for(config, &self.front.endpoint)
    }

    /// Starts a watchdog (through the front) on its own task.
    pub fn spawn(&self, config: WatchdogConfig) -> Running {
        let clients = self.clients(&config);
        let mut registry = prometheus_client::registry::Registry::default();
        let watchdog =
            Arc::new(twinkle_watchdog::Watchdog::new(config, clients, &mut registry).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = Arc::clone(&watchdog);
        let task = tokio::spawn(async move {
            runner
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Running {
            watchdog,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn weights(&self) -> Option<Weights> {
        moto_weights(&self.moto, &self.zone).await
    }

    /// Waits until moto holds `weights`; returns how long that took.
    pub async fn wait_weights(&self, weights: Weights, timeout: Duration) -> Duration {
        let started = Instant::now();
        wait_for(&format!("Route53 weights {weights}"), timeout, || async {
            (self.weights().await == Some(weights)).then_some(())
        })
        .await;
        started.elapsed()
    }
}

/// A watchdog running on a task.
pub struct Running {
    pub watchdog: Arc<twinkle_watchdog::Watchdog>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<twinkle_watchdog::Result<()>>>,
}

impl Running {
    pub fn status(&self) -> twinkle_watchdog::WatchdogStatus {
        self.watchdog.status()
    }

    pub fn holds(&self) -> bool {
        self.status().lease.held
    }

    pub fn primary_up(&self) -> bool {
        self.status()
            .machine
            .is_some_and(|m| m.health.primary.health == twinkle_dr::Health::Up)
    }

    /// Waits until it holds the lease and has seen the primary up.
    pub async fn wait_ready(&self) {
        wait_for(
            "lease held and primary up",
            Duration::from_secs(10),
            || async { (self.holds() && self.primary_up()).then_some(()) },
        )
        .await;
    }

    /// Graceful stop: the lease is released.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// A crash: the task is dropped mid-flight, nothing released.
    pub fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
