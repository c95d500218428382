//! Act: carry out one planned step. Each part's module makes the AWS or Kubernetes call and
//! returns an [`Outcome`], what it changed; [`fold`] alone writes outcomes into the
//! observation and tells the poller, so the next plan sees the step done without another
//! look.

mod associations;
mod file_system;
mod hooks;
mod security_group;
mod volume;

use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreWorkspace;
use lustre_cloud::{
    Cloud, DataRepositoryAssociation, FileSystem, IngressRule, Lifecycle, SecurityGroup, Tags,
};

use crate::context::{Context, Expected};
use crate::error::{Cause, Error, Step};
use crate::observe::Observed;
use crate::plan::{Action, ClaimView, Hook, VolumeView};
use crate::poller::Observation;

/// What a step changed.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to carry out (a wait, a stop, done).
    Nothing,
    /// A subnet looked up (its VPC and zone).
    Subnet(lustre_cloud::Subnet),
    /// The security group made (or found again after a lost create).
    SecurityGroupCreated(SecurityGroup),
    /// Rules added to the security group.
    RulesAdded(Vec<IngressRule>),
    /// The security group is gone.
    SecurityGroupDeleted,
    /// The file system as AWS answered a create or update.
    FileSystemChanged(FileSystem),
    /// The file system's delete was accepted (or it was gone already).
    FileSystemDeleting,
    /// The adopted file system, described again after marking it.
    Adopted(Option<FileSystem>),
    /// Tags put on the file system.
    Tagged(Tags),
    /// The adopter mark taken off the file system.
    Released,
    /// Associations made.
    AssociationsCreated(Vec<DataRepositoryAssociation>),
    /// An association changed in place (UPDATING).
    AssociationUpdated(DataRepositoryAssociation),
    /// Associations whose delete was accepted (or that were gone already).
    AssociationsDeleting(Vec<String>),
    /// The StorageClass applied.
    StorageClassApplied { first_pod: bool },
    /// The volume applied (`Some`), or gone (`None`).
    Volume(Option<VolumeView>),
    /// The volume's delete is held by a finalizer: looked at again shortly.
    VolumeHeld,
    /// The claim as now seen: the workspace's (`claim`) or taken by someone else.
    Claim {
        claim: Option<ClaimView>,
        taken: bool,
    },
    /// The claim after its delete: gone, or still held (by pods, through pvc-protection).
    ClaimDeleted(Option<ClaimView>),
    /// What a step did to a hook's task (the export before deletion, the import on create).
    Hook(crate::plan::Hook, hooks::HookStep),
}

/// A step's outcome, and its error when it failed (a step of several calls may fail half
/// way: what was done before the failing call still counts).
type Acted = (Outcome, Result<(), Cause>);

fn whole(result: Result<Outcome, Cause>) -> Acted {
    match result {
        Ok(outcome) => (outcome, Ok(())),
        Err(e) => (Outcome::Nothing, Err(e)),
    }
}

/// Carries out one step and folds its outcome into the observation.
pub(crate) async fn act(
    ctx: &Context,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    o: &mut Observed,
    action: &Action,
) -> Result<(), Error> {
    let (outcome, result) = match action {
        Action::LookUpSubnet { subnet_id } => {
            whole(security_group::look_up_subnet(ctx, cloud, subnet_id).await)
        }
        Action::CreateSecurityGroup { vpc_id } => {
            whole(security_group::create(ws, o.class(), cloud, vpc_id).await)
        }
        Action::AuthorizeRules { group_id, rules } => {
            whole(security_group::authorize(cloud, group_id, rules).await)
        }
        Action::DeleteSecurityGroup { id } => whole(security_group::delete(cloud, id).await),
        Action::CreateFileSystem(request) => whole(file_system::create(cloud, request).await),
        Action::UpdateFileSystem { id, update } => {
            whole(file_system::update(cloud, id, update).await)
        }
        Action::DeleteFileSystem { id, final_backup } => {
            whole(file_system::delete(ctx, ws, o, cloud, id, *final_backup).await)
        }
        Action::TagRetained { arn } => {
            whole(file_system::tag_retained(ctx, ws, cloud, arn, o).await)
        }
        Action::TagAdopted { arn } => whole(file_system::tag_adopted(ws, cloud, arn, o).await),
        Action::UntagAdopted { arn } => whole(file_system::untag_adopted(cloud, arn).await),
        Action::CreateAssociations(requests) => associations::create(cloud, requests).await,
        Action::DeleteAssociations(ids) => associations::delete(cloud, ids).await,
        Action::UpdateAssociation { id, update } => {
            whole(associations::update(cloud, id, update).await)
        }
        Action::ApplyStorageClass => whole(volume::apply_storage_class(ctx, o).await),
        Action::ApplyVolume => whole(volume::apply_volume(ctx, ws, o).await),
        Action::ApplyClaim => whole(volume::apply_claim(ctx, ws, o).await),
        Action::DeleteClaim => whole(volume::delete_claim(ctx, ws).await),
        Action::DeleteVolume => whole(volume::delete_volume(ctx, ws).await),
        Action::Expire(_) => whole(volume::delete_workspace(ctx, ws).await),
        Action::StartExport(request) => {
            whole(hooks::start(cloud, Hook::ExportOnDelete, request).await)
        }
        Action::CancelExport { id, .. } => {
            whole(hooks::cancel(cloud, Hook::ExportOnDelete, id).await)
        }
        Action::StartImport(request) => {
            whole(hooks::start(cloud, Hook::ImportOnCreate, request).await)
        }
        Action::ClassMissing(_)
        | Action::ExportFailed(_)
        | Action::ImportFailed(_)
        | Action::NamespaceNotAllowed { .. }
        | Action::Invalid(_)
        | Action::AdoptionRefused(_)
        | Action::OverBudget(_)
        | Action::ClaimConflict(_)
        | Action::FileSystemFailed(_)
        | Action::AssociationFailed { .. }
        | Action::Wait(_)
        | Action::Ready
        | Action::Finished => (Outcome::Nothing, Ok(())),
    };
    fold(ctx, ws, cloud, o, outcome);
    result.map_err(|cause| Error::new(Step::Act(action.step()), cause))
}

/// Keeps what a step just did to the claim or the volume, which the watch caches may not
/// show yet: the next reconcile's observation trusts it (see `Expected`).
fn expect(ctx: &Context, ws: &LustreWorkspace, outcome: &Outcome) {
    let uid = ws.metadata.uid.clone().unwrap_or_default();
    let memory = &ctx.memory;
    match outcome {
        Outcome::Volume(Some(v)) => memory.expect_volume(&uid, Expected::Made(v.clone())),
        Outcome::Volume(None) => memory.expect_volume(&uid, Expected::Gone),
        Outcome::VolumeHeld => memory.expect_volume(&uid, Expected::Deleting),
        Outcome::Claim { claim: Some(c), .. } => {
            memory.expect_claim(&uid, Expected::Made(c.clone()))
        }
        Outcome::ClaimDeleted(Some(_)) => memory.expect_claim(&uid, Expected::Deleting),
        Outcome::ClaimDeleted(None) => memory.expect_claim(&uid, Expected::Gone),
        _ => {}
    }
}

/// Writes what a step changed into the observation, and has the poller cache and watch the
/// file system whose lifecycle the step set moving.
fn fold(
    ctx: &Context,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    o: &mut Observed,
    outcome: Outcome,
) {
    let track = matches!(
        outcome,
        Outcome::FileSystemChanged(_)
            | Outcome::FileSystemDeleting
            | Outcome::AssociationsCreated(_)
            | Outcome::AssociationUpdated(_)
            | Outcome::AssociationsDeleting(_)
    );
    expect(ctx, ws, &outcome);
    match outcome {
        Outcome::Nothing => {}
        Outcome::Subnet(subnet) => o.subnets.push(subnet),
        Outcome::SecurityGroupCreated(sg) => o.sg = Some(sg),
        Outcome::RulesAdded(rules) => {
            if let Some(sg) = &mut o.sg {
                sg.ingress.extend(rules);
                sg.ingress.sort();
            }
        }
        Outcome::SecurityGroupDeleted => o.sg = None,
        Outcome::FileSystemChanged(fs) => o.fs = Some(fs),
        Outcome::FileSystemDeleting => {
            if let Some(fs) = &mut o.fs {
                fs.lifecycle = Lifecycle::Deleting;
            }
        }
        Outcome::Adopted(fs) => {
            if let Some(old) = &o.fs {
                ctx.poller.forget(&old.id, &ObjectRef::from_obj(ws));
            }
            o.fs = fs;
        }
        Outcome::Tagged(tags) => {
            if let Some(fs) = &mut o.fs {
                fs.tags.extend(tags);
            }
        }
        Outcome::Released => {
            if let Some(fs) = &mut o.fs {
                fs.tags.remove(lustre_api::constants::tags::ADOPTED_BY);
                ctx.poller.forget(&fs.id, &ObjectRef::from_obj(ws));
            }
        }
        Outcome::AssociationsCreated(made) => o.dras.extend(made),
        Outcome::AssociationUpdated(a) => {
            o.dras.retain(|d| d.id != a.id);
            o.dras.push(a);
        }
        Outcome::AssociationsDeleting(ids) => {
            for a in o.dras.iter_mut().filter(|a| ids.contains(&a.id)) {
                a.lifecycle = Lifecycle::Deleting;
            }
        }
        Outcome::StorageClassApplied { first_pod } => {
            o.kube.storage_class = true;
            o.kube.first_pod_storage_class |= first_pod;
        }
        Outcome::Volume(volume) => o.kube.volume = volume,
        Outcome::VolumeHeld => o.kube.volume.iter_mut().for_each(|v| v.deleting = true),
        Outcome::Claim { claim, taken } => {
            o.kube.claim = claim;
            o.kube.claim_taken = taken;
        }
        Outcome::ClaimDeleted(claim) => o.kube.claim = claim,
        Outcome::Hook(hook, step) => hooks::fold(ctx, ws, o, hook, step),
    }
    if track {
        track_file_system(ctx, ws, cloud, o);
    }
}

/// Puts what this reconcile knows of the file system into the poller's cache, and has the
/// poller watch it until it settles.
fn track_file_system(ctx: &Context, ws: &LustreWorkspace, cloud: &Arc<dyn Cloud>, o: &Observed) {
    if let Some(fs) = &o.fs {
        ctx.poller.store(
            &fs.id,
            Observation {
                file_system: Some(fs.clone()),
                associations: o.dras.clone(),
            },
        );
        ctx.poller.watch(&fs.id, o.follower(ws, cloud));
    }
}

/// Crash-test hook (cargo feature `kill-points`, which the crash suite's build enables):
/// with `LUSTRE_KILL_POINT=<step>` (an [`Action::step`] name) the process SIGKILLs itself right after
/// that step succeeded, before anything else (status write, next step) happens.
#[cfg(feature = "kill-points")]
pub fn kill_point(step: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("LUSTRE_KILL_POINT").ok());
    if point.as_deref() == Some(step) {
        tracing::warn!(step, "LUSTRE_KILL_POINT reached: killing this process");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Without the `kill-points` feature (release builds), a kill point does nothing.
#[cfg(not(feature = "kill-points"))]
pub fn kill_point(_step: &str) {}
