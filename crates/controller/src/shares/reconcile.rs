//! One grant's reconcile: the share it accepts is made (volume, then claim) only when the
//! named workspace offers a share to the grant's namespace and its class allows it; otherwise
//! nothing is made, and what was made is removed (a withdrawn share, a workspace being
//! deleted, a grant deleted). The volume is derived from the workspace's own volume, never
//! from the workspace's status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lustre_api::constants::{FIELD_MANAGER, SHARE_FINALIZER, labels};
use lustre_api::{GrantPhase, LustreWorkspace, LustreWorkspaceGrant, SharingPolicy};

use super::objects::{self, GRANT_UID_LABEL};
use super::{GrantCtx, status};
use crate::error::{Error, Step};
use crate::observe::{Class, resolve_class};
use crate::work_write::{set_finalizer, write_status};

pub(crate) async fn reconcile(
    g: Arc<LustreWorkspaceGrant>,
    cx: Arc<GrantCtx>,
) -> Result<Requeue, Error> {
    if !cx.ctx.caches.ready().await {
        return Ok(Requeue::requeue(cx.ctx.config.intervals.pending));
    }
    let source = ObjectRef::new(&g.spec.workspace).within(&g.spec.from_namespace);
    if g.metadata.deletion_timestamp.is_some() {
        if revoke(&cx, &g).await? {
            return Ok(Requeue::requeue(cx.ctx.config.intervals.pending));
        }
        set_finalizer(&cx.ctx, &*g, SHARE_FINALIZER, false, None).await?;
        cx.ctx.poller.wake(source);
        return Ok(Requeue::await_change());
    }
    let from = format!("{}/{}", g.spec.from_namespace, g.spec.workspace);
    let Some(ws) = cx.workspaces.get(&source) else {
        let note = format!("waiting for workspace {from}");
        return withdraw(&cx, &g, GrantPhase::Pending, note).await;
    };
    if ws.metadata.deletion_timestamp.is_some() {
        let note = format!("workspace {from} is being deleted: its share was revoked");
        return withdraw(&cx, &g, GrantPhase::Revoked, note).await;
    }
    let namespace = g.namespace().unwrap_or_default();
    let Some(share) = ws.spec.shares.iter().find(|s| s.namespace == namespace) else {
        let note = format!("workspace {from} offers no share to namespace {namespace}");
        return withdraw(&cx, &g, GrantPhase::Refused, note).await;
    };
    let Class::Found(class) = resolve_class(&cx.ctx, &ws) else {
        return withdraw(
            &cx,
            &g,
            GrantPhase::Pending,
            "waiting for the workspace's class".into(),
        )
        .await;
    };
    if let Some(why) = SharingPolicy::refusal(class.spec.sharing.as_ref(), &class.name_any(), share)
    {
        return withdraw(&cx, &g, GrantPhase::Refused, why).await;
    }
    let claim = objects::claim_name(&ws, share);
    let Some(volume) =
        source_volume(&cx, &ws).and_then(|pv| objects::volume(&pv, &g, share, &claim))
    else {
        let note = format!("waiting for workspace {from} to be Ready");
        return withdraw(&cx, &g, GrantPhase::Pending, note).await;
    };
    set_finalizer(&cx.ctx, &*g, SHARE_FINALIZER, true, None).await?;
    let wanted = objects::claim(&g, share, &volume, &claim);
    let made = make_objects(&cx, &g, &volume, &wanted).await?;
    let next = status::made(&g, share, &claim, &volume, made);
    let pending = next.phase != Some(GrantPhase::Bound);
    settle(&cx, &g, next, &ws).await?;
    Ok(match pending {
        true => Requeue::requeue(cx.ctx.config.intervals.pending),
        false => Requeue::await_change(),
    })
}

/// The workspace's own volume, as the operator made it (labelled with the workspace's UID).
fn source_volume(cx: &GrantCtx, ws: &LustreWorkspace) -> Option<Arc<PersistentVolume>> {
    let pv = cx
        .ctx
        .caches
        .volumes
        .get(&ObjectRef::new(&crate::builders::volume_name(ws)))?;
    (pv.labels.get(labels::WORKSPACE_UID) == ws.uid().as_deref()).then(|| Arc::new(pv.full()))
}

/// Nothing is (or stays) made: `phase` for `note`, the share's objects removed first.
async fn withdraw(
    cx: &GrantCtx,
    g: &LustreWorkspaceGrant,
    phase: GrantPhase,
    note: String,
) -> Result<Requeue, Error> {
    let held = revoke(cx, g).await?;
    let next = status::at(g, phase, &note, held);
    let source = ObjectRef::new(&g.spec.workspace).within(&g.spec.from_namespace);
    if let Some(ws) = cx.workspaces.get(&source) {
        settle(cx, g, next, &ws).await?;
    } else {
        write_status(&cx.ctx, g, next).await?;
    }
    if !held {
        set_finalizer(&cx.ctx, g, SHARE_FINALIZER, false, None).await?;
    }
    Ok(Requeue::requeue(cx.ctx.config.intervals.pending))
}

/// Writes the grant's status; a change wakes the offering workspace (its status lists its
/// shares).
async fn settle(
    cx: &GrantCtx,
    g: &LustreWorkspaceGrant,
    next: lustre_api::LustreWorkspaceGrantStatus,
    ws: &LustreWorkspace,
) -> Result<(), Error> {
    let changed = g.status.as_ref() != Some(&next);
    write_status(&cx.ctx, g, next).await?;
    if changed {
        cx.ctx.poller.wake(ObjectRef::from_obj(ws));
    }
    Ok(())
}

/// Deletes the share's claim (only one this grant owns) and volume; true while either is
/// still there (a pod uses the claim: pvc-protection holds it until the pod ends).
pub(crate) async fn revoke(cx: &GrantCtx, g: &LustreWorkspaceGrant) -> Result<bool, Error> {
    let uid = g.uid().unwrap_or_default();
    let namespace = g.namespace().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cx.ctx.client.clone(), &namespace);
    let volumes: Api<PersistentVolume> = Api::all(cx.ctx.client.clone());
    let step = Step::Act("revoking the share");
    let mut held = false;
    let made: Vec<Arc<crate::slim::Claim>> = cx
        .ctx
        .caches
        .managed_claims
        .state()
        .into_iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|c| c.labels.get(GRANT_UID_LABEL) == Some(uid.as_str()))
        .filter(|c| c.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    for c in made {
        held = true;
        if c.meta().deletion_timestamp.is_none() {
            delete(&claims, &c.name_any()).await.map_err(step.kube())?;
        }
    }
    let volume = objects::volume_name(g);
    if let Some(pv) = cx.ctx.caches.volumes.get(&ObjectRef::new(&volume))
        && pv.labels.get(GRANT_UID_LABEL) == Some(uid.as_str())
    {
        held = true;
        if pv.meta().deletion_timestamp.is_none() {
            delete(&volumes, &volume).await.map_err(step.kube())?;
        }
    }
    Ok(held)
}

/// Deletes an object; one already gone counts as deleted.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Creates the share's claim (never taken over) and applies its volume (remade when the
/// share changed).
pub(crate) async fn make_objects(
    cx: &GrantCtx,
    g: &LustreWorkspaceGrant,
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<super::Made, Error> {
    let step = Step::Act("making the share's volume and claim");
    let volumes: Api<PersistentVolume> = Api::all(cx.ctx.client.clone());
    let have = cx
        .ctx
        .caches
        .volumes
        .get(&ObjectRef::new(&volume.name_any()))
        .map(|pv| pv.full());
    if let Some(have) = &have
        && !objects::same(have, volume)
    {
        revoke(cx, g).await?;
        return Ok(super::Made::Remaking);
    }
    // The claim first: a name another claim holds gets no volume that could bind to it.
    let Some(bound) = own_claim(cx, g, claim).await.map_err(step.kube())? else {
        revoke(cx, g).await?;
        return Ok(super::Made::Taken);
    };
    if !have.is_some_and(|have| objects::current(&have, volume)) {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        volumes
            .patch(&volume.name_any(), &params, &Patch::Apply(volume))
            .await
            .map_err(step.kube())?;
    }
    Ok(super::Made::Claim { bound })
}

/// The share's claim, made unless the managed claims' cache has it: whether it is bound, or
/// `None` when a claim of that name is not this grant's.
async fn own_claim(
    cx: &GrantCtx,
    g: &LustreWorkspaceGrant,
    claim: &PersistentVolumeClaim,
) -> Result<Option<bool>, kube::Error> {
    let namespace = g.namespace().unwrap_or_default();
    let uid = g.uid().unwrap_or_default();
    let owned = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        refs.iter().any(|o| o.uid == uid)
    };
    let key = ObjectRef::new(&claim.name_any()).within(&namespace);
    if let Some(c) = cx.ctx.caches.managed_claims.get(&key) {
        let bound = c.status.phase.as_deref() == Some("Bound");
        return Ok(owned(c.owner_references()).then_some(bound));
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cx.ctx.client.clone(), &namespace);
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let made = match claims.create(&post, claim).await {
        Ok(c) => c,
        Err(kube::Error::Api(e)) if e.code == 409 => claims.get(&claim.name_any()).await?,
        Err(e) => return Err(e),
    };
    let bound = made.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    Ok(owned(made.owner_references()).then_some(bound))
}

/// Failed reconciles back off per object like workspaces'.
pub(crate) fn error_policy(
    g: Arc<LustreWorkspaceGrant>,
    error: &Error,
    cx: Arc<GrantCtx>,
) -> Requeue {
    crate::beside::backoff(&cx.ctx, &*g, error, "LustreWorkspaceGrant")
}
