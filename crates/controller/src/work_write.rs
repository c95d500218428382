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
use crate::guarded::{self, was};

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
/// object goes with its workspace); without: removes the finalizer. One JSON patch guarded by
/// tests of both lists (a status write meanwhile changes neither), tried once more against the
/// live object when the copy was not it ([`guarded::patch`]).
pub(crate) async fn set_finalizer<K: WorkObject>(
    ctx: &Context,
    task: &K,
    finalizer: &str,
    on: bool,
    owner: Option<&LustreWorkspace>,
) -> Result<(), Error> {
    let step = if on {
        Step::AddFinalizer
    } else {
        Step::RemoveFinalizer
    };
    guarded::patch(&api(ctx, task), task, step, !on, |task| {
        finalizer_patch(task, finalizer, on, owner)
    })
    .await
}

/// The guarded patch [`set_finalizer`] sends for the copy `task`; `None` when it has the
/// finalizer and owner reference as wanted already.
fn finalizer_patch<K: WorkObject>(
    task: &K,
    finalizer: &str,
    on: bool,
    owner: Option<&LustreWorkspace>,
) -> Option<json_patch::Patch> {
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
        return None;
    }
    let meta = task.meta();
    Some(
        serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": was(meta.finalizers.is_some(), json!(current))},
            {"op": "test", "path": "/metadata/ownerReferences", "value": was(meta.owner_references.is_some(), json!(task.owner_references()))},
            {"op": "add", "path": "/metadata/finalizers", "value": wanted},
            {"op": "add", "path": "/metadata/ownerReferences", "value": owners},
        ]))
        .expect("static patch shape"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::world;
    use kube::api::PostParams;
    use lustre_api::LustreDataTask;

    const OURS: &str = lustre_api::constants::TASK_FINALIZER;

    async fn live(api: &Api<LustreDataTask>) -> LustreDataTask {
        api.get("t").await.expect("get")
    }

    /// The data task's finalizer and owner reference go in against the live object when the
    /// reconcile's copy is older than this process's own patch (a watch cache behind by a
    /// relist): once, without an error; and a copy that misses another writer's finalizer does
    /// not drop it. Without the live retry the second call fails its test (422).
    #[tokio::test]
    async fn a_stale_copy_sets_the_finalizer_and_owner_against_the_live_object() {
        let (_world, ctx, ws) = world().await;
        let api = Api::<LustreDataTask>::namespaced(ctx.client.clone(), "default");
        let task: LustreDataTask = serde_json::from_value(json!({
            "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreDataTask",
            "metadata": {"name": "t", "namespace": "default"},
            "spec": {"workspace": "w", "type": "Export"}
        }))
        .expect("task");
        let stale = api
            .create(&PostParams::default(), &task)
            .await
            .expect("create");
        set_finalizer(&ctx, &stale, OURS, true, Some(&ws))
            .await
            .expect("added");
        let added = live(&api).await;
        assert_eq!(added.finalizers(), [OURS]);
        assert_eq!(added.owner_references().len(), 1);
        assert_eq!(added.owner_references()[0].uid, ws.uid().expect("uid"));
        set_finalizer(&ctx, &stale, OURS, true, Some(&ws))
            .await
            .expect("a stale copy adds nothing, without an error");
        let again = live(&api).await;
        assert_eq!(again.finalizers(), [OURS]);
        assert_eq!(again.owner_references(), added.owner_references());
        // Another writer adds a finalizer; removing ours from the copy without it keeps it.
        let other = "example.com/keep";
        let patch = json!({"metadata": {"finalizers": [OURS, other]}});
        api.patch("t", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("another finalizer");
        set_finalizer(&ctx, &added, OURS, false, None)
            .await
            .expect("removed");
        assert_eq!(live(&api).await.finalizers(), [other]);
        set_finalizer(&ctx, &added, OURS, false, None)
            .await
            .expect("a stale copy removes nothing, without an error");
        let last = live(&api).await;
        assert_eq!(last.finalizers(), [other]);
        assert_eq!(last.owner_references(), added.owner_references());
    }
}
