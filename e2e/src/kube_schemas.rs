//! JSON schemas for `kubeconform`, generated from the running apiserver.
//!
//! kubeconform normally downloads schemas from the internet, which this
//! project's machines cannot reach. The real kube-apiserver of the test stack
//! publishes its OpenAPI v2 document, CRDs included, so we write the same
//! layout kubeconform expects: `_definitions.json` plus one small file per
//! kind that `$ref`s into it, named `{kind}{suffix}.json`.

use std::{collections::BTreeMap, path::Path};

use serde_json::{Map, Value, json};

/// kubeconform's file-name suffix for an apiVersion: `-v1`, `-apps-v1`,
/// `-networking-v1` (first label of the group only), lower-cased.
pub fn kind_suffix(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => {
            let first = group.split('.').next().unwrap_or(group);
            format!("-{}-{}", first.to_lowercase(), version.to_lowercase())
        }
        None => format!("-{}", api_version.to_lowercase()),
    }
}

/// Writes the schema directory from an OpenAPI v2 (swagger) document.
/// Returns the file names written per kind, for diagnostics.
pub fn write_schemas(openapi_v2: &Value, dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir)?;
    let definitions = openapi_v2
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let shared = json!({ "definitions": definitions });
    std::fs::write(dir.join("_definitions.json"), shared.to_string())?;

    let mut written = BTreeMap::new();
    for (name, schema) in &definitions {
        let Some(gvks) = schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for gvk in gvks {
            let (group, version, kind) = (
                gvk.get("group").and_then(Value::as_str).unwrap_or_default(),
                gvk.get("version")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                gvk.get("kind").and_then(Value::as_str).unwrap_or_default(),
            );
            if kind.is_empty() || version.is_empty() {
                continue;
            }
            let api_version = if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            };
            let file = format!("{}{}.json", kind.to_lowercase(), kind_suffix(&api_version));
            let mut root = Map::new();
            root.insert(
                "$ref".into(),
                Value::String(format!("_definitions.json#/definitions/{name}")),
            );
            std::fs::write(dir.join(&file), Value::Object(root).to_string())?;
            written.insert(format!("{api_version}/{kind}"), file);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_kubeconform() {
        assert_eq!(kind_suffix("v1"), "-v1");
        assert_eq!(kind_suffix("apps/v1"), "-apps-v1");
        assert_eq!(kind_suffix("networking.k8s.io/v1"), "-networking-v1");
        assert_eq!(
            kind_suffix("ticket.twinkle.dev/v1alpha1"),
            "-ticket-v1alpha1"
        );
    }

    #[test]
    fn writes_one_file_per_kind_referencing_shared_definitions() {
        let dir = std::env::temp_dir().join(crate::stack::unique("schemas"));
        let openapi = json!({ "definitions": {
            "io.k8s.api.apps.v1.Deployment": {
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}]
            },
            "io.k8s.api.apps.v1.DeploymentSpec": { "type": "object" }
        }});
        let written = write_schemas(&openapi, &dir).unwrap();
        assert_eq!(written["apps/v1/Deployment"], "deployment-apps-v1.json");
        assert_eq!(written.len(), 1);
        let file: Value =
            serde_json::from_slice(&std::fs::read(dir.join("deployment-apps-v1.json")).unwrap())
                .unwrap();
        assert_eq!(
            file["$ref"],
            "_definitions.json#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
