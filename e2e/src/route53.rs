//! Route53 on the test stack's moto: a client with moto's static
//! credentials, a fresh hosted zone per test, and a cuttable TCP path to
//! moto (a region cut off from Route53, for partition drills).

use std::sync::Arc;

use aws_sdk_route53::config::{Credentials, Region};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::stack::{Stack, unique};

/// An SDK config for `endpoint` (moto, or a [`Cuttable`] in front) with
/// moto's static credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A Route53 client for `endpoint`.
pub async fn client(endpoint: &str) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&sdk_config(endpoint).await)
}

/// A hosted zone of its own for one test.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Without the `/hostedzone/` prefix.
    pub id: String,
    /// `tickets.<zone>.`: the weighted record's name.
    pub record: String,
}

/// Creates a zone named after `prefix` (unique per call).
pub async fn create_zone(stack: &Stack, prefix: &str) -> Zone {
    let r53 = client(&stack.route53_endpoint).await;
    let name = format!("{}.example.", unique(prefix));
    let zone = r53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("moto creates a hosted zone");
    let id = zone
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned())
        .expect("moto returns the zone");
    Zone {
        id,
        record: format!("tickets.{name}"),
    }
}

/// A TCP path to `upstream` that a test can cut: every open connection is
/// dropped and new ones are closed at once until it is restored.
#[derive(Debug, Clone)]
pub struct Cuttable {
    /// `http://127.0.0.1:<port>`, to use as the endpoint.
    pub endpoint: String,
    cut: Arc<watch::Sender<bool>>,
}

impl Cuttable {
    /// Listens on a free loopback port in front of `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> Cuttable {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let endpoint = format!(
            "http://{}",
            listener
                .local_addr()
                .expect("a bound listener has an address")
        );
        let cut = Arc::new(watch::channel(false).0);
        let sender = Arc::clone(&cut);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = sender.subscribe();
                if *rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Cuttable { endpoint, cut }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}
