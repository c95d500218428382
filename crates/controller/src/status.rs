//! The status a workspace should show, computed from what was observed, the step decided and
//! the error of the last AWS call: `phase`, `Ready` plus one condition per part, ids. Pure;
//! `lastTransitionTime` moves only when a condition's status changes, and the reconciler
//! writes nothing when the result equals the current status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use lustre_api::constants::{condition as ctype, reason};
use lustre_api::validation::effective_deployment_type;
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus, Phase};
use lustre_cloud::{CloudError, ErrorKind, Lifecycle, lustre_ingress};

use crate::plan::restore;
use crate::plan::{
    Action, ClassLookup, Inputs, Wait, claim_name, client_peers, expiry, export, import, releasing,
};
use crate::reported;

/// One condition before timestamps: status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

fn yes(reason: &'static str, message: impl Into<String>) -> Cond {
    Cond {
        status: true,
        reason,
        message: message.into(),
    }
}

fn no(reason: &'static str, message: impl Into<String>) -> Cond {
    Cond {
        status: false,
        reason,
        message: message.into(),
    }
}

/// The reason and words for a failed AWS call.
pub fn error_reason(e: &CloudError) -> &'static str {
    match e.kind {
        ErrorKind::AccessDenied => reason::ACCESS_DENIED,
        ErrorKind::LimitExceeded => reason::LIMIT_EXCEEDED,
        ErrorKind::InvalidRequest | ErrorKind::Conflict => reason::AWS_REJECTED,
        _ => reason::AWS_RETRYING,
    }
}

fn security_group_condition(i: &Inputs, action: &Action) -> Cond {
    let ClassLookup::Found(class) = i.class else {
        return no(reason::WAITING, "waiting for the class");
    };
    if i.workspace.spec.file_system_id.is_some() || !class.spec.security_group.managed {
        return yes(
            reason::NOT_MANAGED,
            "the class does not ask for a managed security group",
        );
    }
    match (i.aws.security_group, action) {
        (Some(sg), _) => {
            let expected = lustre_ingress(&sg.id, &client_peers(class));
            if expected.iter().all(|r| sg.ingress.contains(r)) {
                yes(
                    reason::READY,
                    format!(
                        "{} allows TCP 988 and 1018-1023 from itself and the class's clients",
                        sg.id
                    ),
                )
            } else {
                no(
                    reason::CREATING,
                    format!("opening the Lustre ports on {}", sg.id),
                )
            }
        }
        (None, Action::LookUpSubnet { .. } | Action::CreateSecurityGroup { .. }) => {
            no(reason::CREATING, "creating the security group")
        }
        (None, _) => no(
            reason::WAITING,
            "waiting for a valid spec before creating the security group",
        ),
    }
}

fn file_system_condition(i: &Inputs, action: &Action) -> Cond {
    let Some(fs) = i.aws.file_system else {
        if let Action::AdoptionRefused(m) = action {
            return no(reason::ADOPTION_REFUSED, m.clone());
        }
        return match action {
            Action::CreateFileSystem(r) => no(reason::CREATING, restore::creating(r)),
            Action::Wait(Wait::FirstPod) => no(reason::WAITING, crate::plan::first_pod_wait(i)),
            Action::Wait(Wait::SourceBackup) => no(reason::WAITING, restore::source_wait(i)),
            _ => no(reason::WAITING, "waiting for earlier steps"),
        };
    };
    match &fs.lifecycle {
        l if l.is_failed() => no(
            reason::FILE_SYSTEM_FAILED,
            fs.failure_message
                .as_deref()
                .map(lustre_cloud::redact)
                .unwrap_or_else(|| format!("{} is {}", fs.id, l.as_str())),
        ),
        Lifecycle::Creating => no(
            reason::CREATING,
            format!("{} is CREATING (usually 5-15 minutes)", fs.id),
        ),
        Lifecycle::Updating => no(reason::UPDATING, format!("{} is UPDATING", fs.id)),
        Lifecycle::Deleting => no(reason::DELETING, format!("{} is DELETING", fs.id)),
        _ if matches!(action, Action::UpdateFileSystem { .. }) || fs.update_in_progress => {
            no(reason::UPDATING, format!("{} is being updated", fs.id))
        }
        _ => yes(
            reason::READY,
            format!(
                "{} is {} with {} GiB{}",
                fs.id,
                fs.lifecycle.as_str(),
                fs.storage_capacity_gib,
                crate::plan::settings::deferred_note(i)
            ),
        ),
    }
}

fn repositories_condition(i: &Inputs) -> Cond {
    let desired = &i.workspace.spec.data_repositories;
    if desired.is_empty() {
        return yes(reason::NONE_REQUESTED, "no data repositories requested");
    }
    let Some(fs) = i.aws.file_system else {
        return no(reason::WAITING, "waiting for the file system");
    };
    let mut linked = 0;
    for r in desired {
        match i.aws.association_for(r) {
            Some(a) if a.lifecycle.is_failed() => {
                return no(
                    reason::DATA_REPOSITORY_FAILED,
                    format!(
                        "{}: {}",
                        r.name,
                        a.failure_message
                            .as_deref()
                            .map(lustre_cloud::redact)
                            .unwrap_or_else(|| a.lifecycle.as_str().to_string())
                    ),
                );
            }
            Some(a) if a.lifecycle == Lifecycle::Available => linked += 1,
            _ => {}
        }
    }
    let importing = import::pending(i.workspace, &i.aws);
    if linked == desired.len()
        && !importing.is_empty()
        && !importing.iter().all(|r| import::imported_now(i, r))
    {
        let task = i.aws.import.task.map_or_else(
            || "starting".to_string(),
            |t| {
                format!(
                    "{} {}: {} of {} files",
                    t.id,
                    t.lifecycle.as_str(),
                    t.succeeded,
                    t.total
                )
            },
        );
        return no(
            reason::IMPORTING,
            format!(
                "importing the listing of {} ({task})",
                importing
                    .iter()
                    .map(|r| r.s3_path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if linked == desired.len() {
        yes(
            reason::READY,
            format!(
                "{linked} data repositor{} linked",
                if linked == 1 { "y" } else { "ies" }
            ),
        )
    } else if fs.lifecycle == Lifecycle::Available {
        no(
            reason::CREATING,
            format!("{linked} of {} data repositories linked", desired.len()),
        )
    } else {
        no(reason::WAITING, "waiting for the file system")
    }
}

fn volume_condition(i: &Inputs) -> Cond {
    let claim = claim_name(i.workspace);
    match (&i.kube.claim, &i.kube.volume) {
        _ if i.kube.claim_taken => no(
            reason::CLAIM_CONFLICT,
            format!("claim {claim} exists and is not this workspace's"),
        ),
        _ if releasing(i) => no(
            reason::DELETING,
            format!("deleting claim {claim} and its volume"),
        ),
        (Some(c), _) if c.bound => yes(reason::READY, format!("claim {claim} is bound")),
        // One status for both waits on the binder (see `write::unshown`).
        (None, Some(v)) if v.available => no(reason::CREATING, "creating the claim"),
        (Some(_), _) | (None, Some(_)) => no(reason::CREATING, crate::plan::binding_wait(i)),
        (None, None) => no(
            reason::WAITING,
            "waiting for the file system and its data repositories",
        ),
    }
}

/// A condition as the workspace shows it now (a reason this operator writes).
fn shown(ws: &LustreWorkspace, kind: &str) -> Option<Cond> {
    let c = ws
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)?;
    let reason = reason::ALL.iter().find(|r| **r == c.reason)?;
    Some(Cond {
        status: c.status == "True",
        reason,
        message: c.message.clone(),
    })
}

/// The five conditions (Ready first) and the phase.
pub fn conditions(
    i: &Inputs,
    action: &Action,
    error: Option<&CloudError>,
    deleting: bool,
) -> (Vec<(&'static str, Cond)>, Phase) {
    let mut parts = [
        (
            ctype::SECURITY_GROUP_READY,
            security_group_condition(i, action),
        ),
        (ctype::FILE_SYSTEM_READY, file_system_condition(i, action)),
        (ctype::DATA_REPOSITORIES_READY, repositories_condition(i)),
        (ctype::VOLUME_READY, volume_condition(i)),
    ];
    // A workspace stopped before any look at AWS (its namespace shut out, its spec invalid,
    // its class missing) shows its parts as last seen: a file system that was Ready still is.
    if matches!(
        action,
        Action::NamespaceNotAllowed { .. } | Action::Invalid(_) | Action::ClassMissing(_)
    ) && !deleting
    {
        for (kind, cond) in &mut parts {
            if let Some(shown) = shown(i.workspace, kind) {
                *cond = shown;
            }
        }
    }
    let (ready, phase) = if deleting {
        deleting_ready(i, action)
    } else if let Some(e) = error {
        let phase = if e.kind.is_retryable() {
            Phase::Provisioning
        } else {
            Phase::Failed
        };
        (no(error_reason(e), e.for_tenants()), phase)
    } else {
        stopped_ready(i, action).unwrap_or_else(|| progress_ready(i, action, &parts))
    };
    let mut all = vec![(ctype::READY, ready)];
    all.extend(parts);
    // The export before deletion: as observed, else as last shown (once the links are gone
    // it is no longer looked at).
    let exported = export::state(i, action)
        .map(|(status, reason, message)| Cond {
            status,
            reason,
            message,
        })
        .or_else(|| shown(i.workspace, ctype::DATA_EXPORTED).filter(|_| deleting));
    if let Some(c) = exported {
        all.push((ctype::DATA_EXPORTED, c));
    }
    // The expiry: as it stands, else (while deleting) as last shown.
    let expiring = match deleting {
        false => expiry::clock(i, expiry::ready_at(i, action)).map(|c| {
            let (status, reason, message) = expiry::condition(i, &c);
            Cond {
                status,
                reason,
                message,
            }
        }),
        true => shown(i.workspace, ctype::EXPIRING),
    };
    if let Some(c) = expiring {
        all.push((ctype::EXPIRING, c));
    }
    (all, phase)
}

/// Ready while the workspace is deleted: what cleanup waits for.
fn deleting_ready(i: &Inputs, action: &Action) -> (Cond, Phase) {
    let export = matches!(
        action,
        Action::StartExport(_)
            | Action::CancelExport { .. }
            | Action::ExportFailed(_)
            | Action::Wait(Wait::Exporting)
    )
    .then(|| export::state(i, action))
    .flatten();
    if let Some((_, reason, message)) = export {
        return (no(reason, format!("deleting: {message}")), Phase::Deleting);
    }
    let ready = match action {
        Action::Wait(Wait::TasksRunning) => no(
            reason::DELETING,
            format!(
                "deleting: data repository task(s) {} still run on the file system; deletion goes on when they end (deleting their LustreDataTasks cancels them)",
                i.aws.running_tasks.join(", ")
            ),
        ),
        Action::Wait(Wait::SharesReleased) => no(reason::CLAIM_IN_USE, crate::plan::shares_wait(i)),
        Action::Wait(Wait::ClaimInUse) | Action::DeleteClaim | Action::DeleteVolume => {
            no(reason::CLAIM_IN_USE, crate::plan::claim_held(i))
        }
        Action::Wait(Wait::FileSystemDeleting) => {
            let id = i
                .aws
                .file_system
                .map_or("the file system", |f| f.id.as_str());
            no(reason::DELETING, format!("deleting: {id} is DELETING"))
        }
        other => no(reason::DELETING, format!("deleting: {}", other.describe())),
    };
    (ready, Phase::Deleting)
}

/// Ready when the workspace is, or when it stopped until a person acts (`None` otherwise).
fn stopped_ready(i: &Inputs, action: &Action) -> Option<(Cond, Phase)> {
    if matches!(action, Action::Ready) {
        let message = format!(
            "claim {} is bound: mount it in your pods",
            claim_name(i.workspace)
        );
        return Some((yes(reason::READY, message), Phase::Ready));
    }
    if let Action::Expire(m) = action {
        return Some((no(reason::EXPIRED, m.clone()), Phase::Deleting));
    }
    let stopped = action.stopped()?;
    // A missing class may yet appear, and room in a budget: the workspace is pending, not
    // failed (a refused growth of a workspace that has its file system is failed).
    let waits = matches!(action, Action::ClassMissing(_))
        || (matches!(action, Action::OverBudget(_)) && i.aws.file_system.is_none());
    let phase = if waits { Phase::Pending } else { Phase::Failed };
    Some((no(stopped.reason, stopped.message), phase))
}

/// Ready while the workspace is on its way: the first part that is not ready says why.
fn progress_ready(i: &Inputs, action: &Action, parts: &[(&'static str, Cond)]) -> (Cond, Phase) {
    let (why, message) = parts
        .iter()
        .find(|(_, c)| !c.status)
        .map(|(_, c)| (c.reason, c.message.clone()))
        .unwrap_or((reason::CREATING, action.describe()));
    let was_ready = i
        .workspace
        .status
        .as_ref()
        .is_some_and(|s| s.ready_time.is_some());
    let phase = if was_ready {
        Phase::Updating
    } else {
        Phase::Provisioning
    };
    (no(why, message), phase)
}

/// The full status to write, keeping `lastTransitionTime` of unchanged conditions and the
/// first-Ready time.
pub fn desired_status(
    i: &Inputs,
    action: &Action,
    error: Option<&CloudError>,
    deleting: bool,
    now: &Time,
) -> LustreWorkspaceStatus {
    let ws: &LustreWorkspace = i.workspace;
    let previous = ws.status.clone().unwrap_or_default();
    let generation = ws.metadata.generation;
    let (conds, phase) = conditions(i, action, error, deleting);
    let conditions = timestamped(conds, &previous, generation, now);
    let class = i.class.found();
    let fs = i.aws.file_system;
    let ready_time = previous
        .ready_time
        .clone()
        .or_else(|| matches!(action, Action::Ready).then(|| now.clone()));
    let (idle_since, expires_at) = expiry::shown_times(i, action, &previous, deleting);
    LustreWorkspaceStatus {
        phase: Some(phase),
        observed_generation: generation,
        conditions,
        class_name: class
            .and_then(|c| c.metadata.name.clone())
            .or(previous.class_name),
        deployment_type: class
            .map(|c| effective_deployment_type(&ws.spec, &c.spec))
            .or(previous.deployment_type),
        deletion_policy: class
            .map(|c| crate::plan::deletion_policy(ws, Some(c)))
            .or(previous.deletion_policy),
        // Ids stay when a part was not observed this time (a crash must not lose them).
        file_system_id: fs.map(|f| f.id.clone()).or(previous.file_system_id),
        lifecycle: fs.map(|f| f.lifecycle.as_str().to_string()),
        dns_name: fs.and_then(|f| f.dns_name.clone()),
        mount_name: fs.and_then(|f| f.mount_name.clone()),
        // Intelligent-Tiering storage is elastic: no capacity.
        storage_capacity_gib: fs.map(|f| f.storage_capacity_gib).filter(|g| *g > 0),
        metadata_iops: fs.and_then(|f| f.settings.metadata_iops),
        availability_zone: crate::plan::zone_of(i).or(previous.availability_zone),
        security_group_id: i
            .aws
            .security_group
            .map(|s| s.id.clone())
            .or(previous.security_group_id),
        volume_name: i
            .kube
            .volume
            .as_ref()
            .map(|_| crate::builders::volume_name(ws)),
        // Once the volume exists: the claim follows it in the same wait (a write of its own
        // would show nothing new); while deleting, until both are gone (one wait too).
        claim_name: (i.kube.claim.is_some()
            || (i.kube.volume.is_some() && !i.kube.claim_taken && (!deleting || releasing(i))))
        .then(|| claim_name(ws)),
        data_repositories: reported::repository_statuses(i),
        estimated_monthly_cost: class
            .map(|c| Box::new(reported::cost(ws, c, fs)))
            .or(previous.estimated_monthly_cost),
        last_export: i
            .aws
            .export
            .task
            .map(|t| Box::new(reported::export_status(t)))
            .or(previous.last_export),
        idle_since,
        expires_at,
        ready_time,
        shares: i.kube.shares.clone(),
    }
}

/// The conditions with their times: `lastTransitionTime` stays while a condition's status
/// does not change.
fn timestamped(
    conds: Vec<(&'static str, Cond)>,
    previous: &LustreWorkspaceStatus,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    conds
        .into_iter()
        .map(|(kind, c)| {
            let status = if c.status { "True" } else { "False" };
            let since = previous
                .conditions
                .iter()
                .find(|p| p.type_ == kind && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: kind.to_string(),
                status: status.to_string(),
                reason: c.reason.to_string(),
                message: c.message,
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}
