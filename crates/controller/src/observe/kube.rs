//! The Kubernetes side of a workspace: its class, its namespace's labels, and the
//! StorageClass, PersistentVolume and claim the operator makes for it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lustre_api::constants::DEFAULT_CLASS_ANNOTATION;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};

use crate::builders;
use crate::context::Context;
use crate::error::{Error, Step};
use crate::plan::{self, ClaimView, KubeView, VolumeView};

/// The workspace's class as found.
#[derive(Clone, Debug)]
pub(crate) enum Class {
    /// The class it names, or the default class.
    Found(Box<LustreWorkspaceClass>),
    /// `spec.className` names a class that does not exist.
    Missing(String),
    /// No class named and none marked default.
    NoDefault,
}

/// The class the workspace names, or the default one.
pub(crate) async fn resolve_class(ctx: &Context, ws: &LustreWorkspace) -> Result<Class, Error> {
    let api: Api<LustreWorkspaceClass> = Api::all(ctx.client.clone());
    if let Some(name) = ws.spec.class_name.as_deref() {
        return Ok(
            match api.get_opt(name).await.map_err(Step::ReadClass.kube())? {
                Some(c) => Class::Found(Box::new(c)),
                None => Class::Missing(name.to_string()),
            },
        );
    }
    let classes = api
        .list(&ListParams::default())
        .await
        .map_err(Step::ReadClass.kube())?;
    let default = classes.items.into_iter().find(|c| {
        c.annotations()
            .get(DEFAULT_CLASS_ANNOTATION)
            .map(String::as_str)
            == Some("true")
    });
    Ok(default.map_or(Class::NoDefault, |c| Class::Found(Box::new(c))))
}

/// The labels of the workspace's namespace: from the watch when it has them (their changes
/// wake the workspaces in it), else from the API server.
pub(super) async fn namespace_labels(
    ctx: &Context,
    ws: &LustreWorkspace,
) -> Result<BTreeMap<String, String>, Error> {
    let ns = ws.namespace().unwrap_or_default();
    if let Some(n) = ctx
        .namespaces
        .get()
        .and_then(|s| s.get(&ObjectRef::new(&ns)))
    {
        return Ok(n.labels().clone());
    }
    Ok(Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(Step::ReadNamespace.kube())?
        .map(|n| n.labels().clone())
        .unwrap_or_default())
}

/// The StorageClass, volume and claim, read together. A claim of the workspace's claim name
/// that is not the workspace's (no owner reference to it) is seen as taken, never as its own.
pub(super) async fn objects(
    ctx: &Context,
    ws: &LustreWorkspace,
    class: Option<&LustreWorkspaceClass>,
) -> Result<KubeView, Error> {
    let ns = ws.namespace().unwrap_or_default();
    let uid = ws.uid().unwrap_or_default();
    let storage_class = class.map(|c| builders::storage_class_name(&c.name_any()));
    let (volumes, claims) = (
        Api::<PersistentVolume>::all(ctx.client.clone()),
        Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns),
    );
    let (volume, claim) = (builders::volume_name(ws), plan::claim_name(ws));
    let (storage_class, pv, pvc) = tokio::try_join!(
        async {
            match &storage_class {
                Some(name) => Api::<StorageClass>::all(ctx.client.clone())
                    .get_opt(name)
                    .await
                    .map(|sc| sc.is_some()),
                None => Ok(false),
            }
        },
        volumes.get_opt(&volume),
        claims.get_opt(&claim),
    )
    .map_err(Step::ObserveKubernetes.kube())?;
    let owned = |c: &PersistentVolumeClaim| c.owner_references().iter().any(|r| r.uid == uid);
    Ok(KubeView {
        storage_class,
        volume: pv.map(volume_view),
        claim_taken: pvc.as_ref().is_some_and(|c| !owned(c)),
        claim: pvc.filter(|c| owned(c)).map(|c| claim_view(&c)),
    })
}

fn volume_view(pv: PersistentVolume) -> VolumeView {
    let spec = pv.spec.unwrap_or_default();
    VolumeView {
        capacity_gib: spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .and_then(builders::parse_gib)
            .unwrap_or(0),
        file_system_id: spec.csi.map(|c| c.volume_handle).unwrap_or_default(),
    }
}

/// What matters of a claim the workspace owns.
pub(crate) fn claim_view(c: &PersistentVolumeClaim) -> ClaimView {
    ClaimView {
        bound: c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
        deleting: c.meta().deletion_timestamp.is_some(),
    }
}
