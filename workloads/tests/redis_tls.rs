//! The workloads over TLS + AUTH to Redis, as the AWS estate runs it
//! (ElastiCache with in-transit encryption and an AUTH token, reached by a
//! `rediss://:TOKEN@host` URL). A real `redis-server` with only a TLS port
//! and `requirepass`, a certificate from a private CA made here with
//! `openssl`, and the real `twinkle` binary (`local` on Kafka + Redis) that
//! trusts the CA through `SSL_CERT_FILE`:
//! * trusted CA + right token: a customer enters and is admitted (the
//!   queue keeper wrote to Redis over TLS);
//! * CA not trusted, or wrong token: the process refuses to start, says why,
//!   and never prints the token (nor does `twinkle booking check`).

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use twinkle_e2e::stack::{Stack, unique};

const TOKEN: &str = "s3cret-auth-token-4-tls-test";

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (apt) is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=twinkle test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// redis-server with a TLS port only (no plain port) and an AUTH token.
async fn start_tls_redis(dir: &Path) -> (Child, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--requirepass", TOKEN, "--save", "", "--appendonly", "no"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server (apt) is installed");
    let up = support::eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "TLS redis-server listening on {port}");
    (child, port)
}

fn twinkle_local(stack: &Stack, dir: &Path, redis_url: &str, ca: Option<&PathBuf>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twinkle"));
    cmd.args(["local", "--listen", "127.0.0.1:0", "--event"])
        .arg(dir.join("event.json"))
        .args(["--kafka", &stack.kafka_bootstrap, "--redis", redis_url])
        .env("RUST_LOG", "info")
        .env_remove("SSL_CERT_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    cmd.spawn().unwrap()
}

/// Waits for a process that must refuse to start; returns what it printed
/// (both pipes read while it runs, so a chatty child cannot block).
async fn refused(child: Child) -> String {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the process gives up within 60 s")
        .unwrap();
    assert!(!out.status.success(), "the process must not start");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(TOKEN), "the AUTH token leaked: {printed}");
    printed
}

#[tokio::test(flavor = "multi_thread")]
async fn workloads_speak_tls_and_auth_to_redis() {
    let stack = Stack::require();
    let dir = std::env::temp_dir().join(unique("redis-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let (_redis, port) = start_tls_redis(&dir).await;
    let event = support::event(50, 100);
    support::create_topics(&stack, &event, 1).await;
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    let ca = dir.join("ca.crt");
    let url = format!("rediss://:{TOKEN}@127.0.0.1:{port}");

    // Trusted CA, right token: the whole queue path works over TLS.
    let mut local = twinkle_local(&stack, &dir, &url, Some(&ca));
    let mut stderr_pipe = local.stderr.take().unwrap();
    let stderr_read = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr_pipe, &mut text).await;
        text
    });
    // Logs go to stdout too: collect every line, find the banner's URL.
    let mut lines = BufReader::new(local.stdout.take().unwrap()).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let printed = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = rx.recv().await {
            if let Some(url) = line.strip_prefix("Twinkle Ticket local stack: ") {
                return url.trim_end_matches('/').to_owned();
            }
        }
        panic!("twinkle local exited without its banner");
    })
    .await
    .expect("twinkle local starts within 60 s");
    let id = event.id.to_string();
    let (_, ticket) = support::enter(&base, &id).await;
    let admitted = support::eventually(Duration::from_secs(20), || async {
        support::status(&base, &id, &ticket).await["admitted"] == true
    })
    .await;
    assert!(admitted, "entered and admitted through Redis over TLS");
    local.kill().await.unwrap();
    let stderr = stderr_read.await.unwrap();
    let stdout = printed.await.unwrap();
    assert!(
        !stderr.contains(TOKEN) && !stdout.contains(TOKEN),
        "the AUTH token leaked: {stdout}{stderr}"
    );

    // The CA is not trusted: no connection, and the reason is named.
    let err = refused(twinkle_local(&stack, &dir, &url, None)).await;
    assert!(
        err.to_lowercase().contains("certificate"),
        "names the certificate problem: {err}"
    );

    // Wrong token: refused by the server, and the reason is named.
    let wrong = format!("rediss://:not-the-token@127.0.0.1:{port}");
    let err = refused(twinkle_local(&stack, &dir, &wrong, Some(&ca))).await;
    assert!(
        err.contains("WRONGPASS") || err.to_lowercase().contains("password"),
        "names the authentication problem: {err}"
    );

    // The operations CLI names where it failed to connect, without the token.
    let check = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(["booking", "check", "--event"])
        .arg(dir.join("event.json"))
        .args(["--kafka", &stack.kafka_bootstrap, "--redis", &url])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let err = refused(check).await;
    assert!(
        err.contains(&format!("rediss://:***@127.0.0.1:{port}")),
        "names the server, token masked: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
