//! The next step for a workspace being deleted: the parts go in the reverse order of their
//! making (claim and volume together, the export of `exportOnDelete` links, associations,
//! the adopter mark or the file system, the security group), each planner naming a step or
//! letting the next look. Works when create never got far and when the class is gone.

use std::ops::ControlFlow::{self, Break, Continue};

use lustre_api::constants::tags as tag_keys;
use lustre_api::{DeletionPolicy, LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::naming;
use lustre_cloud::{DataRepositoryAssociation, Lifecycle};

use super::{Action, Inputs, Wait};

/// The next step for a workspace being deleted.
pub fn next_cleanup_action(i: &Inputs) -> Action {
    match plan(i) {
        Break(action) => action,
        Continue(()) => Action::Finished,
    }
}

fn plan(i: &Inputs) -> ControlFlow<Action> {
    // The shares' claims in other namespaces go first (their grants' reconciles remove them
    // once the workspace is being deleted; pods there may hold them).
    if !i.kube.shared.is_empty() {
        return Break(Action::Wait(Wait::SharesReleased));
    }
    kubernetes(i)?;
    retained(i)?;
    // A data task still running on the file system finishes first (its LustreDataTask's
    // deletion cancels it); then the export before deletion.
    if !i.aws.running_tasks.is_empty() {
        return Break(Action::Wait(Wait::TasksRunning));
    }
    super::export::plan(i)?;
    associations(i)?;
    file_system(i)?;
    match i.aws.security_group {
        Some(sg) => Break(Action::DeleteSecurityGroup { id: sg.id.clone() }),
        None => Continue(()),
    }
}

/// The claim first (pods may still use it: pvc-protection holds it), and the volume's delete
/// right after it: pv-protection holds the volume while the claim is bound and lets it go once
/// the binder releases it, with no look from this operator in between (one wait on
/// Kubernetes, not two). The volume is `Retain`: its delete never reaches the file system.
fn kubernetes(i: &Inputs) -> ControlFlow<Action> {
    let (claim, volume) = (&i.kube.claim, &i.kube.volume);
    if claim.as_ref().is_some_and(|c| !c.deleting) {
        return Break(Action::DeleteClaim);
    }
    if volume.as_ref().is_some_and(|v| !v.deleting) {
        return Break(Action::DeleteVolume);
    }
    if claim.is_some() {
        return Break(Action::Wait(Wait::ClaimInUse));
    }
    if volume.is_some() {
        // Held by pv-protection: the volumes' watch wakes the workspace when it goes.
        return Break(Action::DeleteVolume);
    }
    Continue(())
}

/// The claim's or the volume's delete is out: they are released together (one status).
pub fn releasing(i: &Inputs) -> bool {
    i.kube.claim.as_ref().is_some_and(|c| c.deleting)
        || i.kube.volume.as_ref().is_some_and(|v| v.deleting)
}

/// Why the deleted claim or its volume stays: pods counted on the claim, or (none counted, or
/// not known) Kubernetes has not let them go yet: pvc-protection checks the pods, finished
/// ones included, pv-protection the claim's binding, and both lag on a busy cluster. The
/// claim's wait and the volume's are one (their deletes go out together): one message for
/// both, so a status is written once for them.
pub fn claim_held(i: &Inputs) -> String {
    let claim = super::claim_name(i.workspace);
    match i.pods {
        super::expiry::Pods::Seen(u) if u.active > 0 && i.kube.claim.is_some() => format!(
            "deleting: claim {claim} is still used by pods; delete them to continue (a finished pod counts until it is deleted)"
        ),
        _ => format!(
            "deleting: Kubernetes releases claim {claim} and its volume: pvc-protection holds the claim until no pod names it (delete the pods that do, finished ones too, if any), pv-protection the volume until the claim is gone"
        ),
    }
}

/// `deletionPolicy: Retain` keeps what the workspace made (tagged as retained) and stops
/// here.
fn retained(i: &Inputs) -> ControlFlow<Action> {
    let ws = i.workspace;
    if ws.spec.file_system_id.is_some()
        || deletion_policy(ws, i.class.found()) != DeletionPolicy::Retain
    {
        return Continue(());
    }
    Break(match i.aws.file_system {
        Some(fs) if fs.tags.get(tag_keys::RETAINED).map(String::as_str) != Some("true") => {
            Action::TagRetained {
                arn: fs.arn.clone(),
            }
        }
        _ => Action::Finished,
    })
}

/// The workspace's associations (on an adopted file system, only those it made) are
/// unlinked, and gone, before the file system is let go.
fn associations(i: &Inputs) -> ControlFlow<Action> {
    let ws = i.workspace;
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let adopted = ws.spec.file_system_id.is_some();
    let ours: Vec<&DataRepositoryAssociation> = i
        .aws
        .associations_of_file_system()
        .into_iter()
        .filter(|a| !adopted || naming::owner_uid(&a.tags) == Some(uid))
        .collect();
    let to_delete: Vec<String> = ours
        .iter()
        .filter(|a| a.lifecycle != Lifecycle::Deleting)
        .map(|a| a.id.clone())
        .collect();
    if !to_delete.is_empty() {
        return Break(Action::DeleteAssociations(to_delete));
    }
    if !ours.is_empty() {
        return Break(Action::Wait(Wait::Associations));
    }
    Continue(())
}

/// An adopted file system loses this workspace's adopter mark and stays; the workspace's
/// own is deleted (after a final backup when asked and possible).
fn file_system(i: &Inputs) -> ControlFlow<Action> {
    let ws = i.workspace;
    let Some(fs) = i.aws.file_system else {
        return Continue(());
    };
    if ws.spec.file_system_id.is_some() {
        let uid = ws.metadata.uid.as_deref().unwrap_or_default();
        if fs.tags.get(tag_keys::ADOPTED_BY).map(String::as_str) != Some(uid) {
            return Continue(());
        }
        return Break(Action::UntagAdopted {
            arn: fs.arn.clone(),
        });
    }
    Break(match fs.lifecycle {
        Lifecycle::Creating => Action::Wait(Wait::FileSystemCreating),
        Lifecycle::Deleting => Action::Wait(Wait::FileSystemDeleting),
        _ => Action::DeleteFileSystem {
            id: fs.id.clone(),
            final_backup: ws.spec.final_backup_on_delete == Some(true)
                && fs.deployment_type == lustre_cloud::DeploymentType::Persistent2
                && !fs.lifecycle.is_failed(),
        },
    })
}

/// The deletion policy in effect: the spec's, else the one recorded in status (the class's
/// default when it was first recorded), else the class's default, else Delete.
pub fn deletion_policy(
    ws: &LustreWorkspace,
    class: Option<&LustreWorkspaceClass>,
) -> DeletionPolicy {
    ws.spec
        .deletion_policy
        .or_else(|| ws.status.as_ref().and_then(|s| s.deletion_policy))
        .or_else(|| {
            class
                .and_then(|c| c.spec.defaults.as_ref())
                .and_then(|d| d.deletion_policy)
        })
        .unwrap_or(DeletionPolicy::Delete)
}
