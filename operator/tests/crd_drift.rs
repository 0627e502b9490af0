//! `crds/ticketevent.yaml` is generated from the Rust types; this fails when
//! the committed copy is stale (or hand-edited).

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/ticketevent.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = twinkle_operator::crd::crd_yaml().expect("generate the CRD");
    assert!(
        committed == generated,
        "{path} is not what the TicketEvent types generate.\n\
         Regenerate it: cargo run -p twinkle-operator --bin crdgen -- --write"
    );
}

/// Helm installs the chart's own copy (`crds/` of the chart): it must be the
/// generated one too, or `helm install` ships a schema the operator does
/// not speak.
#[test]
fn the_charts_crd_is_the_generated_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/twinkle-operator/crds/ticketevent.yaml"
    );
    let shipped = std::fs::read_to_string(path).unwrap_or_default();
    let generated = twinkle_operator::crd::crd_yaml().expect("generate the CRD");
    assert!(
        shipped == generated,
        "{path} is not what the TicketEvent types generate.\n\
         Copy it from crds/ticketevent.yaml after crdgen --write"
    );
}
