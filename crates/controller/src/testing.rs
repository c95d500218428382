//! For unit tests that need a Kubernetes API server: the sandbox's, with the CRDs installed
//! and one workspace `default/w`.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use lustre_api::LustreWorkspace;

use crate::context::Context;

/// The sandbox's API server with the CRDs and workspace `default/w`, and a context whose
/// client reaches it (its AWS: the in-memory cloud). Keep the world: dropping it stops the
/// server.
pub(crate) async fn world() -> (lustre_sandbox::World, Context, LustreWorkspace) {
    let world = lustre_sandbox::World::start(Default::default())
        .await
        .expect("sandbox");
    let config = kube::Config::new(world.kube_url.parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    for crd in lustre_api::crd::crds() {
        Api::<CustomResourceDefinition>::all(client.clone())
            .create(&PostParams::default(), &crd)
            .await
            .expect("crd");
    }
    let ws: LustreWorkspace = serde_json::from_value(serde_json::json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"deploymentType": "SCRATCH_2", "storageCapacityGiB": 1200}
    }))
    .expect("workspace");
    let ws = Api::<LustreWorkspace>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &ws)
        .await
        .expect("create");
    let cloud = Arc::new(lustre_cloud::memory::MemoryCloud::default());
    let ctx = Context::new(
        client,
        Arc::new(crate::context::SingleCloud(cloud)),
        crate::poller::Poller::new().0,
        Arc::new(crate::metrics::Metrics::new()),
        Default::default(),
    );
    (world, ctx, ws)
}
