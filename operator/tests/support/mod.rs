//! Shared by the operator's integration tests.

use std::path::{Path, PathBuf};

use twinkle_e2e::stack::Stack;

/// A path relative to the repository root.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Applies the committed CRD (the drift test keeps it equal to the types)
/// and waits until the API server serves it.
pub async fn install_crd(stack: &Stack) {
    let crd = repo("crds/ticketevent.yaml");
    stack
        .kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=twinkle-operator-tests",
            "-f",
            crd.to_str().expect("test paths are UTF-8"),
        ])
        .await
        .expect("kubectl apply the CRD");
    stack
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/ticketevents.ticket.twinkle.dev",
        ])
        .await
        .expect("CRD established");
}
