//! Writes to the workspace object itself: its status (server-side apply, only when it
//! changed) and its cleanup finalizer (a JSON patch guarded by a test).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use lustre_api::constants::{FIELD_MANAGER, FINALIZER};
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus, Phase};
use lustre_cloud::CloudError;

use crate::context::Context;
use crate::error::{Error, Step};
use crate::guarded;
use crate::observe::Observed;
use crate::plan::{Action, Wait};
use crate::status::desired_status;

/// How long the status of a brief step stays unwritten at most (see [`unshown`]).
pub(crate) const BRIEF: Duration = Duration::from_secs(5);

impl Action {
    /// The clock of a brief step, `None` for the others. Brief steps are those Kubernetes
    /// itself ends within a moment as a rule: a new volume becoming Available, a new claim
    /// binding, a deleted claim leaving pvc-protection, a deleted volume leaving
    /// pv-protection. The volume's wait to be Available and the claim's to bind are one wait
    /// on the binder: one clock, one status; the claim's and the volume's deletes and their
    /// release are one wait on pvc- and pv-protection: one clock, one status.
    pub(crate) fn brief_clock(&self) -> Option<&Action> {
        match self {
            Action::Wait(Wait::VolumeAvailable) => Some(&Action::Wait(Wait::ClaimBinding)),
            Action::Wait(Wait::ClaimBinding) => Some(self),
            Action::Wait(Wait::ClaimInUse) | Action::DeleteClaim | Action::DeleteVolume => {
                Some(&Action::Wait(Wait::ClaimInUse))
            }
            _ => None,
        }
    }
}

/// The status of a brief step ([`Action::brief_clock`]) is written only once it has lasted
/// [`BRIEF`] (a claim a pod holds, a binder that lags), so the status goes from the step
/// before to the step after in one write: CREATING → Ready, Ready → the file system
/// DELETING. Returns how long the step stays unshown still, `None` when its status is to be
/// written now.
pub(crate) fn unshown(ctx: &Context, ws: &LustreWorkspace, action: &Action) -> Option<Duration> {
    let since = ctx
        .memory
        .brief_since(&ws.uid().unwrap_or_default(), action.brief_clock())?;
    BRIEF
        .checked_sub(since.elapsed())
        .filter(|left| !left.is_zero())
}

/// Writes the status the observation and step call for, when it differs from the current
/// one; returns it.
pub(crate) async fn write_status(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    action: &Action,
    error: Option<&CloudError>,
    deleting: bool,
) -> Result<LustreWorkspaceStatus, Error> {
    let now = Time(jiff::Timestamp::now());
    let status = desired_status(&o.inputs(ws), action, error, deleting, &now);
    // Recorded whether or not status changes: a restarted process counts every workspace.
    let uid = ws.uid().unwrap_or_default();
    ctx.metrics.set_phase(&uid, status.phase);
    ctx.metrics
        .usage
        .set(&uid, crate::metrics::Usage::of(ws, &status));
    if ws.status.as_ref() == Some(&status) {
        return Ok(status);
    }
    if status.phase == Some(Phase::Ready)
        && ws.status.as_ref().is_none_or(|s| s.ready_time.is_none())
    {
        ctx.metrics.became_ready(ws, &status);
    }
    let api: Api<LustreWorkspace> =
        Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LustreWorkspace::api_version(&()),
        "kind": LustreWorkspace::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&ws.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Step::WriteStatus.kube())?;
    ctx.memory.wrote(&uid, status.clone());
    Ok(status)
}

/// Adds or removes the cleanup finalizer with a JSON patch guarded by a `test`, so a
/// concurrent writer makes the patch fail instead of being lost; a failed patch is tried once
/// more against the live object ([`guarded::patch`]).
pub(crate) async fn set_finalizer(
    ctx: &Context,
    ws: &LustreWorkspace,
    present: bool,
) -> Result<(), Error> {
    let api =
        Api::<LustreWorkspace>::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let step = if present {
        Step::AddFinalizer
    } else {
        Step::RemoveFinalizer
    };
    guarded::patch(&api, ws, step, !present, |ws| {
        finalizer_patch(ws.metadata.finalizers.as_deref(), present)
    })
    .await
}

/// The JSON patch that puts the operator's finalizer in (`present`) or out of finalizers
/// `seen` (`None`: the field is absent), guarded by a test of what it replaces; `None` when
/// nothing needs to change.
fn finalizer_patch(seen: Option<&[String]>, present: bool) -> Option<json_patch::Patch> {
    let current = seen.unwrap_or_default();
    let mut wanted: Vec<&str> = current
        .iter()
        .map(String::as_str)
        .filter(|f| *f != FINALIZER)
        .collect();
    if present {
        wanted.push(FINALIZER);
    }
    if wanted == current {
        return None;
    }
    let test = guarded::was(seen.is_some(), serde_json::json!(current));
    Some(
        serde_json::from_value(serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": test},
            {"op": "add", "path": "/metadata/finalizers", "value": wanted},
        ]))
        .expect("static patch shape"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::world;

    async fn live(ctx: &Context) -> Vec<String> {
        Api::<LustreWorkspace>::namespaced(ctx.client.clone(), "default")
            .get("w")
            .await
            .expect("get")
            .finalizers()
            .to_vec()
    }

    /// A copy older than this process's own patch (a watch cache behind by a relist) neither
    /// fails nor doubles the finalizer; one that misses another's finalizer does not drop it.
    #[tokio::test]
    async fn the_finalizer_is_set_against_the_live_object_when_the_copy_is_stale() {
        let (_world, ctx, stale) = world().await;
        set_finalizer(&ctx, &stale, true).await.expect("added");
        assert_eq!(live(&ctx).await, [FINALIZER]);
        // The same copy again, as a reconcile on a lagging cache has it: its test fails.
        set_finalizer(&ctx, &stale, true)
            .await
            .expect("a stale copy adds nothing, without an error");
        assert_eq!(live(&ctx).await, [FINALIZER]);
        // Someone else adds a finalizer; the copy with ours only removes ours.
        let mut ours = stale.clone();
        ours.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        let other = "example.com/keep";
        let patch = serde_json::json!({"metadata": {"finalizers": [FINALIZER, other]}});
        Api::<LustreWorkspace>::namespaced(ctx.client.clone(), "default")
            .patch("w", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("another finalizer");
        set_finalizer(&ctx, &ours, false).await.expect("removed");
        assert_eq!(live(&ctx).await, [other]);
        // Removing it again from the stale copy is nothing to do either.
        set_finalizer(&ctx, &ours, false)
            .await
            .expect("a stale copy removes nothing, without an error");
        assert_eq!(live(&ctx).await, [other]);
    }

    /// A stale copy of a workspace deleted since, whose name a new workspace took, removes
    /// nothing from the new one (the patch tests the UID; the live one is another object).
    #[tokio::test]
    async fn a_copy_of_a_deleted_workspace_leaves_its_successor_alone() {
        let (_world, ctx, old) = world().await;
        let api = Api::<LustreWorkspace>::namespaced(ctx.client.clone(), "default");
        set_finalizer(&ctx, &old, true).await.expect("added");
        let mut ours = old.clone();
        ours.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        set_finalizer(&ctx, &ours, false).await.expect("removed");
        api.delete("w", &Default::default()).await.expect("delete");
        let mut next = old.clone();
        next.metadata = kube::api::ObjectMeta {
            name: Some("w".into()),
            namespace: Some("default".into()),
            finalizers: Some(vec![FINALIZER.to_string()]),
            ..Default::default()
        };
        let next = api
            .create(&Default::default(), &next)
            .await
            .expect("the name again");
        assert_ne!(next.metadata.uid, old.metadata.uid);
        set_finalizer(&ctx, &ours, false)
            .await
            .expect("the old copy's object is gone: nothing to remove");
        assert_eq!(
            live(&ctx).await,
            [FINALIZER],
            "the successor keeps its finalizer"
        );
        set_finalizer(&ctx, &old, true)
            .await
            .expect_err("adding to a gone object through its successor is refused");
    }

    #[test]
    fn the_patch_tests_what_it_replaces_and_is_none_when_nothing_changes() {
        let ours = [FINALIZER.to_string()];
        assert!(finalizer_patch(Some(&ours), true).is_none());
        assert!(finalizer_patch(None, false).is_none());
        let patch = finalizer_patch(None, true).expect("a patch");
        assert_eq!(
            serde_json::to_value(&patch).expect("json"),
            serde_json::json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
            ])
        );
    }
}
