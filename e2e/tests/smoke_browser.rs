//! Debian's Chromium, driven by playwright-core, renders a page served by an
//! axum server in this test (JavaScript included) and reads its text back.

use axum::{Router, response::Html, routing::get};
use twinkle_e2e::stack::{Stack, output};

const PAGE: &str = r#"<!doctype html><html><head><title>smoke</title></head>
<body><p id="out">not rendered</p>
<script>document.getElementById('out').textContent = 'rendered by javascript: ' + (6 * 7);</script>
</body></html>"#;

#[tokio::test]
async fn chromium_renders_an_axum_page_and_playwright_reads_it() {
    let stack = Stack::require();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/", get(|| async { Html(PAGE) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/read-text.cjs");
    let stdout = output(
        tokio::process::Command::new("node")
            .arg(script)
            .arg(format!("http://{addr}/"))
            .arg("#out")
            .env("NODE_PATH", &stack.playwright_modules)
            .env("TT_CHROMIUM", &stack.chromium),
    )
    .await
    .expect("playwright run");
    server.abort();

    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(result["text"], "rendered by javascript: 42");
    assert_eq!(result["title"], "smoke");
    println!("chromium {}", result["version"]);
}
