//! Runs a Deployment's container as a local process, as a kubelet would:
//! its `args`, its `env` (literal values, Secret keys, the pod name), its
//! ConfigMap and Secret volumes written to a local directory and the
//! container's mount paths rewritten to it. There is no kubelet in the test
//! stack; this lets the end-to-end drill run the workloads exactly as the
//! operator rendered them. The image is replaced by a local binary.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use serde_json::Value;

use crate::{
    Error, Result,
    stack::{Stack, unique},
};

fn missing(what: impl Into<String>) -> Error {
    Error::Invalid(what.into())
}

async fn get<T: serde::de::DeserializeOwned>(stack: &Stack, ns: &str, what: &str) -> Result<T> {
    let json = stack
        .kubectl(&["get", "-n", ns, what, "-o", "json"])
        .await?;
    serde_json::from_str(&json).map_err(|e| Error::Invalid(format!("{what}: {e}")))
}

/// Files of a ConfigMap or Secret volume: key → bytes.
async fn volume_files(
    stack: &Stack,
    ns: &str,
    volume: &Value,
) -> Result<BTreeMap<String, Vec<u8>>> {
    if let Some(name) = volume["configMap"]["name"].as_str() {
        let cm: ConfigMap = get(stack, ns, &format!("configmap/{name}")).await?;
        return Ok(cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect());
    }
    if let Some(name) = volume["secret"]["secretName"].as_str() {
        let secret: Secret = get(stack, ns, &format!("secret/{name}")).await?;
        return Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect());
    }
    Err(missing(format!("unsupported volume {volume}")))
}

async fn env_value(stack: &Stack, ns: &str, pod: &str, env: &Value) -> Result<String> {
    if let Some(v) = env["value"].as_str() {
        return Ok(v.to_owned());
    }
    let from = &env["valueFrom"];
    if let (Some(name), Some(key)) = (
        from["secretKeyRef"]["name"].as_str(),
        from["secretKeyRef"]["key"].as_str(),
    ) {
        let secret: Secret = get(stack, ns, &format!("secret/{name}")).await?;
        let bytes = secret
            .data
            .and_then(|mut d| d.remove(key))
            .ok_or_else(|| missing(format!("secret {name} has no key {key}")))?;
        return String::from_utf8(bytes.0)
            .map_err(|_| missing(format!("secret {name}/{key} is not text")));
    }
    if from["fieldRef"]["fieldPath"] == "metadata.name" {
        return Ok(pod.to_owned());
    }
    Err(missing(format!("unsupported env {env}")))
}

/// A Deployment's first container, ready to run locally.
#[derive(Debug, Clone)]
pub struct LocalPod {
    pub name: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Where the volumes were written.
    pub dir: PathBuf,
}

impl LocalPod {
    /// Reads `deployment` from the API server and materialises its volumes
    /// under a fresh temporary directory.
    pub async fn from_deployment(stack: &Stack, ns: &str, deployment: &str) -> Result<Self> {
        let d: Deployment = get(stack, ns, &format!("deployment/{deployment}")).await?;
        let pod_spec = serde_json::to_value(
            d.spec
                .and_then(|s| s.template.spec)
                .ok_or_else(|| missing(format!("{deployment} has no pod spec")))?,
        )
        .map_err(|e| missing(e.to_string()))?;
        let container = &pod_spec["containers"][0];
        let name = unique(deployment);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| missing(e.to_string()))?;

        // mountPath → local directory, for every mounted volume.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let volume_name = mount["name"].as_str().unwrap_or_default();
            let volume = pod_spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == volume_name)
                .ok_or_else(|| missing(format!("no volume {volume_name}")))?;
            let local = dir.join(volume_name);
            std::fs::create_dir_all(&local).map_err(|e| missing(e.to_string()))?;
            for (file, bytes) in volume_files(stack, ns, volume).await? {
                std::fs::write(local.join(file), bytes).map_err(|e| missing(e.to_string()))?;
            }
            let path = mount["mountPath"].as_str().unwrap_or_default().to_owned();
            mounts.push((path, local));
        }
        // Whole path segments only (`/etc/twinkle` is not a prefix of
        // `/etc/twinkle-token/...`).
        let rewrite = |value: &str| -> String {
            for (path, local) in &mounts {
                if let Some(rest) = value.strip_prefix(path.as_str())
                    && (rest.is_empty() || rest.starts_with('/'))
                {
                    return format!("{}{rest}", local.display());
                }
            }
            value.to_owned()
        };
        let args = container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(rewrite)
            .collect();
        let mut env = BTreeMap::new();
        for e in container["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or_default().to_owned();
            env.insert(key, rewrite(&env_value(stack, ns, &name, e).await?));
        }
        Ok(Self {
            name,
            args,
            env,
            dir,
        })
    }

    /// Starts `binary` with the pod's args and env (plus `extra_env`),
    /// logging to `<dir>/log`; killed when dropped.
    pub fn spawn(
        &self,
        binary: &Path,
        extra_env: &[(&str, &str)],
    ) -> Result<tokio::process::Child> {
        let log =
            std::fs::File::create(self.dir.join("log")).map_err(|e| missing(e.to_string()))?;
        let err = log.try_clone().map_err(|e| missing(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(&self.args)
            .envs(&self.env)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(|e| missing(format!("{}: {e}", binary.display())))
    }
}

/// A binary of this workspace (built by `cargo test --workspace`, which
/// builds every package's binaries), found next to the running test.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| missing(e.to_string()))?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .ok_or_else(|| missing("no target directory"))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(missing(format!(
            "{} is not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
            path.display()
        )))
    }
}
