//! Start-up: the Kubernetes client, and the check that the CRDs this operator needs are
//! installed and current.

use anyhow::Context as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use kube::Api;

/// A client from the kubeconfig file given, else the usual places (KUBECONFIG, ~/.kube/config,
/// the in-cluster service account). Its requests carry the user agent `lustre-operator/<version>`
/// (kube-rs sends none), so the API server's audit log, its metrics and priority-and-fairness
/// debugging name the operator.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        None => kube::Config::infer()
            .await
            .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?,
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
    };
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// The operator's user agent on the Kubernetes API.
pub const USER_AGENT: &str = concat!("lustre-operator/", env!("CARGO_PKG_VERSION"));

/// Checks that the CRDs are installed and serve the version this operator uses, with a
/// clear error when not; warns when the installed schema differs from this build's (an
/// upgrade that did not update the CRDs: `helm upgrade` never touches `crds/`).
pub async fn check_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for ours in lustre_api::crd::crds() {
        let name = ours.metadata.name.clone().unwrap_or_default();
        let installed = crds
            .get_opt(&name)
            .await
            .with_context(|| format!("reading CustomResourceDefinition {name}"))?
            .with_context(|| format!("CustomResourceDefinition {name} is not installed: kubectl apply --server-side -f deploy/crds/ (or helm install)"))?;
        for version in &ours.spec.versions {
            let served = installed
                .spec
                .versions
                .iter()
                .find(|v| v.name == version.name && v.served);
            let Some(served) = served else {
                anyhow::bail!(
                    "CustomResourceDefinition {name} does not serve {}: the installed CRDs are older than this operator; apply this release's CRDs: kubectl apply --server-side -f deploy/crds/",
                    version.name
                );
            };
            let schema = |v: &CustomResourceDefinitionVersion| {
                v.schema.as_ref().and_then(|s| s.open_api_v3_schema.clone())
            };
            if schema(served) != schema(version) {
                tracing::warn!(
                    crd = %name,
                    version = %version.name,
                    "the installed CRD's schema differs from this operator's: fields it does not know are dropped by the API server; apply this release's CRDs (kubectl apply --server-side -f deploy/crds/; helm upgrade does not update CRDs)"
                );
            }
        }
    }
    Ok(())
}
