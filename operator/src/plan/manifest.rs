//! Reading a TicketEvent manifest from a file (or stdin, as `-`).

use std::{io::Read as _, path::Path};

use kube::Resource as _;

use crate::{Error, Result, crd::TicketEvent};

/// Reads and parses one TicketEvent manifest. Checks apiVersion and kind so
/// that `plan -f deployment.yaml` says so instead of "missing field spec".
pub fn load(path: &Path) -> Result<TicketEvent> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_err)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(read_err)?
    };
    parse(&text, path)
}

/// Parses a manifest's text; `path` only names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<TicketEvent> {
    let manifest_err = |source| Error::Manifest {
        path: path.to_owned(),
        source,
    };
    let value: yaml_serde::Value = yaml_serde::from_str(text).map_err(manifest_err)?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(yaml_serde::Value::as_str)
            .unwrap_or("<none>")
            .to_owned()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let expected_version = TicketEvent::api_version(&());
    let expected_kind = TicketEvent::kind(&());
    if api_version != expected_version || kind != expected_kind {
        return Err(Error::WrongKind {
            path: path.to_owned(),
            found: format!("{kind} ({api_version})"),
            expected: format!("{expected_kind} ({expected_version})"),
        });
    }
    // Parse the text again rather than the value: errors then carry the
    // line and column.
    yaml_serde::from_str(text).map_err(manifest_err)
}
