//! Writes to the data task object: its status (server-side apply, only when it changed), and
//! its cancel finalizer with the owner reference to its workspace (one JSON patch guarded by
//! tests of both lists).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use lustre_api::constants::{FIELD_MANAGER, TASK_FINALIZER};
use lustre_api::{LustreDataTask, LustreDataTaskStatus, LustreWorkspace};
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Step};

fn api(ctx: &Context, task: &LustreDataTask) -> Api<LustreDataTask> {
    Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default())
}

/// Writes `status` when it differs from the task's.
pub(crate) async fn write_status(
    ctx: &Context,
    task: &LustreDataTask,
    status: LustreDataTaskStatus,
) -> Result<(), Error> {
    if task.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": LustreDataTask::api_version(&()),
        "kind": LustreDataTask::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api(ctx, task)
        .patch_status(&task.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Step::WriteStatus.kube())?;
    Ok(())
}

/// With `Some(workspace)`: adds the finalizer and an owner reference to the workspace (so
/// the task goes with it); with `None`: removes the finalizer.
pub(crate) async fn set_finalizer(
    ctx: &Context,
    task: &LustreDataTask,
    owner: Option<&LustreWorkspace>,
) -> Result<(), Error> {
    let current = task.finalizers().to_vec();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != TASK_FINALIZER)
        .cloned()
        .collect();
    let mut owners = task.owner_references().to_vec();
    if let Some(ws) = owner {
        wanted.push(TASK_FINALIZER.to_string());
        if let Some(reference) = ws.controller_owner_ref(&()).map(|mut r| {
            r.controller = Some(false);
            r.block_owner_deletion = None;
            r
        }) && !owners.iter().any(|o| o.uid == reference.uid)
        {
            owners.push(reference);
        }
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
        {"op": "test", "path": "/metadata/finalizers", "value": was(task.metadata.finalizers.is_some(), json!(current))},
        {"op": "test", "path": "/metadata/ownerReferences", "value": was(task.metadata.owner_references.is_some(), json!(task.owner_references()))},
        {"op": "add", "path": "/metadata/finalizers", "value": wanted},
        {"op": "add", "path": "/metadata/ownerReferences", "value": owners},
    ]))
    .expect("static patch shape");
    let step = if owner.is_some() {
        Step::AddFinalizer
    } else {
        Step::RemoveFinalizer
    };
    match api(ctx, task)
        .patch::<LustreDataTask>(
            &task.name_any(),
            &PatchParams::default(),
            &Patch::Json(patch),
        )
        .await
    {
        // Already gone: a reconcile of a deleted task that an earlier one let go.
        Err(kube::Error::Api(e)) if e.code == 404 && owner.is_none() => Ok(()),
        other => other.map(|_| ()).map_err(step.kube()),
    }
}
