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
