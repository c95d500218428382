//! Writes to the objects that ask for AWS work beside their workspace (data tasks, backups):
//! their status (server-side apply, only when it changed), and their finalizer, with an owner
//! reference to the workspace where the object goes with it (one JSON patch guarded by tests
//! of both lists).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Resource, ResourceExt};
use lustre_api::LustreWorkspace;
use lustre_api::constants::FIELD_MANAGER;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Step};

/// An object that asks for AWS work: namespaced, with a status.
pub(crate) trait WorkObject:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + HasStatus<Status: PartialEq + Serialize>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
{
}

impl<K> WorkObject for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + HasStatus<Status: PartialEq + Serialize>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
{
}

fn api<K: WorkObject>(ctx: &Context, object: &K) -> Api<K> {
    Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default())
}

/// Writes `status` when it differs from the object's.
pub(crate) async fn write_status<K: WorkObject>(
    ctx: &Context,
    object: &K,
    status: K::Status,
) -> Result<(), Error> {
    if object.status() == Some(&status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api(ctx, object)
        .patch_status(&object.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Step::WriteStatus.kube())?;
    Ok(())
}

/// With `on`: adds `finalizer`, and an owner reference to `owner` when one is given (so the
/// object goes with its workspace); without: removes the finalizer.
pub(crate) async fn set_finalizer<K: WorkObject>(
    ctx: &Context,
    task: &K,
    finalizer: &str,
    on: bool,
    owner: Option<&LustreWorkspace>,
) -> Result<(), Error> {
    let current = task.finalizers().to_vec();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    let mut owners = task.owner_references().to_vec();
    if on {
        wanted.push(finalizer.to_string());
    }
    if on
        && let Some(reference) = owner
            .and_then(|ws| ws.controller_owner_ref(&()))
            .map(|mut r| {
                r.controller = Some(false);
                r.block_owner_deletion = None;
                r
            })
        && !owners.iter().any(|o| o.uid == reference.uid)
    {
        owners.push(reference);
    }
    if wanted == current && owners == task.owner_references() {
        return Ok(());
    }
    // Guarded by what it replaces (a status write meanwhile changes neither).
    let was = |present: bool, value: serde_json::Value| {
        if present {
            value
        } else {
            serde_json::Value::Null
        }
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": was(task.meta().finalizers.is_some(), json!(current))},
        {"op": "test", "path": "/metadata/ownerReferences", "value": was(task.meta().owner_references.is_some(), json!(task.owner_references()))},
        {"op": "add", "path": "/metadata/finalizers", "value": wanted},
        {"op": "add", "path": "/metadata/ownerReferences", "value": owners},
    ]))
    .expect("static patch shape");
    let step = if on {
        Step::AddFinalizer
    } else {
        Step::RemoveFinalizer
    };
    match api(ctx, task)
        .patch::<K>(
            &task.name_any(),
            &PatchParams::default(),
            &Patch::Json(patch),
        )
        .await
    {
        // Already gone: a reconcile of a deleted object that an earlier one let go.
        Err(kube::Error::Api(e)) if e.code == 404 && !on => Ok(()),
        other => other.map(|_| ()).map_err(step.kube()),
    }
}
