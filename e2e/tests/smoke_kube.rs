//! The real kube-apiserver (+ etcd) from the test stack: kube::Client talks
//! to it, and a CRD applied with kubectl becomes servable, with its schema
//! enforced by the server.

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use twinkle_e2e::stack::{Stack, unique};

async fn client(stack: &Stack) -> Client {
    // Read the stack's kubeconfig explicitly rather than whatever context the
    // environment defaults to, so a test can never touch another cluster.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&stack.kubeconfig).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kube config");
    Client::try_from(config).expect("kube client")
}

#[tokio::test]
async fn client_lists_namespaces() {
    let stack = Stack::require();
    let namespaces = Api::<Namespace>::all(client(&stack).await)
        .list(&ListParams::default())
        .await
        .expect("list namespaces");
    let names: Vec<_> = namespaces
        .iter()
        .filter_map(|ns| ns.metadata.name.as_deref())
        .collect();
    assert!(names.contains(&"default"), "namespaces: {names:?}");
    assert!(names.contains(&"kube-system"), "namespaces: {names:?}");
    let version = client(&stack)
        .await
        .apiserver_version()
        .await
        .expect("version");
    assert!(version.git_version.starts_with("v1."), "{version:?}");
}

#[tokio::test]
async fn crd_applied_with_kubectl_is_served_and_validated() {
    let stack = Stack::require();
    let crd = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/smoke-crd.yaml");
    stack
        .kubectl(&["apply", "--server-side", "-f", crd])
        .await
        .expect("kubectl apply");
    stack
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/widgets.smoke.twinkle.test",
        ])
        .await
        .expect("CRD established");

    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk("smoke.twinkle.test", "v1", "Widget"));
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client(&stack).await, "default", &resource);
    let name = unique("widget");
    let good =
        DynamicObject::new(&name, &resource).data(serde_json::json!({ "spec": { "size": 3 } }));
    widgets
        .create(&PostParams::default(), &good)
        .await
        .expect("create a valid widget");
    let fetched = widgets.get(&name).await.expect("get widget");
    assert_eq!(fetched.data["spec"]["size"], 3);

    let bad = DynamicObject::new(&unique("widget"), &resource)
        .data(serde_json::json!({ "spec": { "size": 0 } }));
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("size 0 violates minimum: 1");
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 422, "{status:?}"),
        other => panic!("expected a 422 from the apiserver, got {other}"),
    }
    widgets
        .delete(&name, &Default::default())
        .await
        .expect("delete widget");
}
