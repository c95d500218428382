//! The Kubernetes objects a pod mounts: the class's StorageClass, the workspace's
//! PersistentVolume and its claim, and their deletes (which finalizers may hold: a deleted
//! object is looked at again, never assumed gone).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lustre_api::LustreWorkspace;
use lustre_api::constants::FIELD_MANAGER;

use super::Outcome;
use crate::builders;
use crate::context::{Context, Expected};
use crate::error::Cause;
use crate::observe::{Observed, claim_view};
use crate::plan::{self, ClaimView, VolumeView};

/// Server-side apply as the operator's field manager, taking over fields others set; the
/// object as the API server answers.
async fn apply<K>(api: Api<K>, object: &K) -> Result<K, Cause>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api
        .patch(&object.name_any(), &params, &Patch::Apply(object))
        .await?)
}

pub(super) async fn apply_storage_class(ctx: &Context, o: &Observed) -> Result<Outcome, Cause> {
    let class = o.class().expect("decided with a class");
    let api = Api::<StorageClass>::all(ctx.client.clone());
    apply(api.clone(), &builders::storage_class(class)).await?;
    let first_pod = class.spec.placement == Some(lustre_api::Placement::MatchPods);
    if first_pod {
        apply(api, &builders::first_pod_storage_class(class)).await?;
    }
    Ok(Outcome::StorageClassApplied { first_pod })
}

pub(super) async fn apply_volume(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
) -> Result<Outcome, Cause> {
    let fs = o.fs.as_ref().expect("decided with a file system");
    let zone = crate::plan::file_system_zone(&o.subnets, fs);
    let class = o.class().expect("decided with a class");
    let claim_class = o
        .kube
        .claim
        .as_ref()
        .and_then(|c| c.storage_class.as_deref());
    let pv = builders::persistent_volume(ws, class, fs, zone, claim_class);
    let applied = apply(Api::<PersistentVolume>::all(ctx.client.clone()), &pv).await?;
    Ok(Outcome::Volume(Some(VolumeView {
        capacity_gib: builders::volume_gib(fs),
        file_system_id: fs.id.clone(),
        zone: zone.map(str::to_string),
        available: crate::slim::seen_by_binder(
            applied.status.as_ref().and_then(|s| s.phase.as_deref()),
        ),
        deleting: applied.metadata.deletion_timestamp.is_some(),
    })))
}

/// Created, never applied with force: a claim someone else made in the meantime stays
/// theirs (the next look sees it as taken).
pub(super) async fn apply_claim(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
) -> Result<Outcome, Cause> {
    let class = o.class().expect("decided with a class");
    // Before the file system (`placement: MatchPods`): the size asked for.
    let first_pod = plan::first_pod(ws, class, o.fs.as_ref());
    let capacity = o.fs.as_ref().map_or_else(
        || i64::from(ws.spec.capacity_gib().max(1)),
        builders::volume_gib,
    );
    let pvc = builders::persistent_volume_claim(ws, class, capacity, first_pod);
    let claims = claims(ctx, ws);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let claim = match claims.create(&params, &pvc).await {
        Ok(c) => c,
        Err(kube::Error::Api(e)) if e.code == 409 => claims.get(&pvc.name_any()).await?,
        Err(e) => return Err(e.into()),
    };
    let uid = ws.uid().unwrap_or_default();
    let owned = claim.owner_references().iter().any(|r| r.uid == uid);
    Ok(Outcome::Claim {
        claim: owned.then(|| claim_view(&claim)),
        taken: !owned,
    })
}

/// The claim may live on (pods still mount it: pvc-protection): the delete's answer says
/// whether a finalizer holds it.
pub(super) async fn delete_claim(ctx: &Context, ws: &LustreWorkspace) -> Result<Outcome, Cause> {
    let claim = held_after_delete(&claims(ctx, ws), &plan::claim_name(ws))
        .await?
        .map(|c| ClaimView {
            deleting: true,
            ..claim_view(&c)
        });
    Ok(Outcome::ClaimDeleted(claim))
}

/// A deleted volume stays while a finalizer holds it (kube-controller-manager's
/// pv-protection: while its claim is bound, and a moment after the claim goes): the volumes'
/// watch wakes the workspace when it goes, and its delete is sent once.
pub(super) async fn delete_volume(ctx: &Context, ws: &LustreWorkspace) -> Result<Outcome, Cause> {
    let name = builders::volume_name(ws);
    let uid = ws.uid().unwrap_or_default();
    let cached = ctx.caches.volumes.get(&ObjectRef::new(&name));
    let deleting = |v: &crate::slim::Volume| v.meta().deletion_timestamp.is_some();
    // Sent already, by this process, and the cache does not show it yet: not sent again.
    let sent = ctx.memory.volume_expected(&uid, |e| match e {
        Expected::Deleting | Expected::Gone => cached.as_deref().is_none_or(deleting),
        Expected::Made(_) => true,
    });
    let held = match cached {
        None => false,
        Some(_) if sent == Some(Expected::Gone) => false,
        Some(_) if sent == Some(Expected::Deleting) => true,
        Some(v) if deleting(&v) => true,
        Some(_) => {
            let volumes = Api::<PersistentVolume>::all(ctx.client.clone());
            held_after_delete(&volumes, &name).await?.is_some()
        }
    };
    Ok(if held {
        Outcome::VolumeHeld
    } else {
        Outcome::Volume(None)
    })
}

/// Deletes the workspace itself (its expiry passed), only the object this reconcile looked at
/// (a precondition on its UID): one already gone or replaced is left alone. Its finalizer
/// holds it while the cleanup runs.
pub(super) async fn delete_workspace(
    ctx: &Context,
    ws: &LustreWorkspace,
) -> Result<Outcome, Cause> {
    let api: Api<LustreWorkspace> =
        Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: ws.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&ws.name_any(), &params).await {
        Ok(_) => Ok(Outcome::Nothing),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Outcome::Nothing),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object; returns it while a finalizer holds it, `None` once it is gone (or was
/// gone already: someone, a finalizer's controller or a person, removed it first). The
/// answer to a DELETE is the object itself, or the object as it was deleted, or a Status: only
/// an object that still carries finalizers is still there.
async fn held_after_delete<K>(api: &Api<K>, name: &str) -> Result<Option<K>, Cause>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(answer) => Ok(answer.left().filter(|o| !o.finalizers().is_empty())),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn claims(ctx: &Context, ws: &LustreWorkspace) -> Api<PersistentVolumeClaim> {
    Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default())
}
