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
/// concurrent writer makes the patch fail (and the reconcile retry) instead of being lost.
pub(crate) async fn set_finalizer(
    ctx: &Context,
    ws: &LustreWorkspace,
    present: bool,
) -> Result<(), Error> {
    let current: Vec<String> = ws.finalizers().to_vec();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        wanted.push(FINALIZER.to_string());
    }
    if wanted == current {
        return Ok(());
    }
    let test = match ws.metadata.finalizers {
        Some(_) => serde_json::json!(current),
        None => serde_json::Value::Null,
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/finalizers", "value": test},
        {"op": "add", "path": "/metadata/finalizers", "value": wanted},
    ]))
    .expect("static patch shape");
    let step = if present {
        Step::AddFinalizer
    } else {
        Step::RemoveFinalizer
    };
    let patched =
        Api::<LustreWorkspace>::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default())
            .patch::<LustreWorkspace>(&ws.name_any(), &PatchParams::default(), &Patch::Json(patch))
            .await;
    match patched {
        Ok(_) => Ok(()),
        // Gone already, which is what removing the last finalizer is for: a second reconcile
        // started on a cache that had not yet seen the first one's removal.
        Err(kube::Error::Api(e)) if !present && e.code == 404 => Ok(()),
        Err(e) => Err(step.kube()(e)),
    }
}
