//! The next step for a workspace that is not being deleted: a chain of planners, one per part,
//! in the order the parts are made. Each either hands the next part what it needs
//! (`Continue`) or names the step to take now (`Break`).

use std::collections::BTreeMap;
use std::ops::ControlFlow::{self, Break, Continue};

use kube::ResourceExt;
use lustre_api::constants::tags as tag_keys;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::naming;
use lustre_cloud::{
    DataRepositoryAssociation, FileSystem, FileSystemUpdate, IngressRule, Lifecycle, Subnet,
};

use super::requests::{association_requests, file_system_request};
use super::{Action, ClassLookup, Inputs, Wait, claim_name, events_update, same_link};

/// A planner's answer: go on with `T`, or take this step.
pub(super) type Plan<T> = ControlFlow<Action, T>;

/// The next step for a workspace that is not being deleted.
pub fn next_action(i: &Inputs) -> Action {
    match plan(i) {
        Break(action) | Continue(action) => action,
    }
}

fn plan(i: &Inputs) -> Plan<Action> {
    super::expiry::gate(i)?;
    let class = admitted(i)?;
    adoption_allowed(i, class)?;
    let place = super::placement::placement(i, class)?;
    adoption(i, class, place.vpc_id)?;
    let security_group = security_group(i, class, place.vpc_id)?;
    let fs = file_system(i, class, security_group, place.subnet)?;
    size(i, fs)?;
    super::settings::metadata(i, fs)?;
    super::settings::guard_rails(i, class, fs)?;
    associations(i, class, fs)?;
    super::import::plan(i, &fs.id)?;
    Continue(kubernetes(
        i,
        fs,
        super::file_system_zone(i.aws.subnets, fs),
    ))
}

/// The class, the namespace, the spec and the claim's name: a workspace refused here gets
/// nothing (no AWS call at all).
fn admitted<'a>(i: &Inputs<'a>) -> Plan<&'a LustreWorkspaceClass> {
    let ws = i.workspace;
    let class = match i.class {
        ClassLookup::Found(c) => c,
        ClassLookup::Missing(name) => return Break(Action::ClassMissing(name.to_string())),
        ClassLookup::NoDefault => return Break(Action::ClassMissing(String::new())),
    };
    if !namespace_admitted(class, i.namespace_labels) {
        return Break(Action::NamespaceNotAllowed {
            class: class.name_any(),
            namespace: ws.namespace().unwrap_or_default(),
        });
    }
    let mut violations = ws.validate(None);
    violations.extend(ws.validate_against_class(class, i.namespace_labels));
    if !violations.is_empty() {
        return Break(Action::Invalid(violations));
    }
    // Before any AWS change: a workspace that cannot get its claim gets nothing.
    if i.kube.claim_taken {
        return Break(Action::ClaimConflict(claim_name(ws)));
    }
    if let Some(b) = i.budget {
        let holds = i.aws.file_system.map(|f| i64::from(f.storage_capacity_gib));
        if let Some(why) = super::budget::refusal(ws, class, &b.limits, b.used, holds) {
            return Break(Action::OverBudget(why));
        }
    }
    Continue(class)
}

/// A workspace naming a file system in a class that adopts nothing is refused with no AWS
/// call at all.
fn adoption_allowed(i: &Inputs, class: &LustreWorkspaceClass) -> Plan<()> {
    match &i.workspace.spec.file_system_id {
        Some(id) if class.spec.adoption.is_none() => {
            Break(Action::AdoptionRefused(adoption_refused(id)))
        }
        _ => Continue(()),
    }
}

/// A workspace naming a file system: the file system must be one the class may adopt, and it
/// is marked as this workspace's before anything uses it.
fn adoption(i: &Inputs, class: &LustreWorkspaceClass, vpc: &str) -> Plan<()> {
    let ws = i.workspace;
    let Some(id) = &ws.spec.file_system_id else {
        return Continue(());
    };
    if !may_adopt(ws, class, vpc, i.aws.file_system, i.cluster_id) {
        return Break(Action::AdoptionRefused(adoption_refused(id)));
    }
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    match i.aws.file_system {
        Some(fs) if fs.tags.get(tag_keys::ADOPTED_BY).map(String::as_str) != Some(uid) => {
            Break(Action::TagAdopted {
                arn: fs.arn.clone(),
            })
        }
        _ => Continue(()),
    }
}

/// The workspace's own security group with every Lustre rule, when the class asks for one;
/// its id goes on the file system.
fn security_group<'a>(
    i: &Inputs<'a>,
    class: &LustreWorkspaceClass,
    vpc: &str,
) -> Plan<Option<&'a str>> {
    if i.workspace.spec.file_system_id.is_some() || !class.spec.security_group.managed {
        return Continue(None);
    }
    let Some(sg) = i.aws.security_group else {
        return Break(Action::CreateSecurityGroup {
            vpc_id: vpc.to_string(),
        });
    };
    let missing: Vec<IngressRule> = super::wanted_ingress(i.workspace, class, &sg.id)
        .into_iter()
        .filter(|r| !sg.ingress.contains(r))
        .collect();
    if !missing.is_empty() {
        return Break(Action::AuthorizeRules {
            group_id: sg.id.clone(),
            rules: missing,
        });
    }
    Continue(Some(sg.id.as_str()))
}

/// The file system, created if it never was, and usable (not creating, failed or deleting).
fn file_system<'a>(
    i: &Inputs<'a>,
    class: &LustreWorkspaceClass,
    security_group: Option<&str>,
    subnet: &Subnet,
) -> Plan<&'a FileSystem> {
    let ws = i.workspace;
    let fs = match (i.aws.file_system, &ws.spec.file_system_id) {
        (Some(fs), _) => fs,
        (None, Some(id)) => return Break(Action::AdoptionRefused(adoption_refused(id))),
        // A file system this workspace recorded and AWS no longer knows was deleted behind
        // the operator's back. Creating a new one would hand pods an empty file system under
        // the same claim, so say so and stop.
        (None, None) => match ws.status.as_ref().and_then(|s| s.file_system_id.as_deref()) {
            Some(id) => {
                return Break(Action::FileSystemFailed(format!(
                    "file system {id} no longer exists in AWS (deleted outside the operator); delete this workspace and create it again for a new, empty file system"
                )));
            }
            None => {
                let mut request = file_system_request(ws, class, security_group, &subnet.id);
                super::restore::source(i, &mut request)?;
                return Break(Action::CreateFileSystem(Box::new(request)));
            }
        },
    };
    match &fs.lifecycle {
        l if l.is_failed() => Break(Action::FileSystemFailed(
            fs.failure_message
                .as_deref()
                .map(lustre_cloud::redact)
                .unwrap_or_else(|| format!("file system {} is {}", fs.id, l.as_str())),
        )),
        Lifecycle::Creating => Break(Action::Wait(Wait::FileSystemCreating)),
        Lifecycle::Updating => Break(Action::Wait(Wait::FileSystemUpdating)),
        Lifecycle::Deleting => Break(Action::FileSystemFailed(format!(
            "file system {} is being deleted outside the operator",
            fs.id
        ))),
        _ if fs.update_in_progress => Break(Action::Wait(Wait::FileSystemUpdating)),
        _ => Continue(fs),
    }
}

/// Capacity and throughput as the spec asks (an adopted file system is taken as it is).
fn size(i: &Inputs, fs: &FileSystem) -> Plan<()> {
    let ws = i.workspace;
    if ws.spec.file_system_id.is_some() {
        return Continue(());
    }
    if ws.spec.is_tiering() {
        return tiering_throughput(ws, fs);
    }
    let mut update = FileSystemUpdate::default();
    let want = i64::from(ws.spec.capacity_gib());
    let have = i64::from(fs.storage_capacity_gib);
    if want < have {
        return Break(below_what_it_has(
            "spec.storageCapacityGiB",
            lustre_api::rules::CAPACITY_GROWS_MSG,
            format!("{have} GiB"),
        ));
    }
    if want > have {
        update.storage_capacity_gib = ws.spec.storage_capacity_gib;
    }
    if fs.deployment_type == lustre_cloud::DeploymentType::Persistent2
        && ws.spec.per_unit_storage_throughput.is_some()
        && ws.spec.per_unit_storage_throughput != fs.per_unit_storage_throughput
    {
        update.per_unit_storage_throughput = ws.spec.per_unit_storage_throughput;
    }
    if update == FileSystemUpdate::default() {
        return Continue(());
    }
    Break(Action::UpdateFileSystem {
        id: fs.id.clone(),
        update,
    })
}

/// A spec that asks for less than the file system has, where FSx only grows: nothing is sent.
fn below_what_it_has(field: &str, rule: &str, have: String) -> Action {
    Action::invalid(
        field,
        format!("{rule} (the file system already has {have})"),
    )
}

/// An Intelligent-Tiering file system's throughput as the spec asks (only ever raised).
fn tiering_throughput(ws: &LustreWorkspace, fs: &FileSystem) -> Plan<()> {
    let (Some(want), Some(have)) = (ws.spec.throughput_capacity, fs.settings.throughput_capacity)
    else {
        return Continue(());
    };
    if want < have {
        return Break(below_what_it_has(
            "spec.throughputCapacity",
            lustre_api::rules::TIERING_THROUGHPUT_GROWS_MSG,
            format!("{have} MB/s"),
        ));
    }
    if want == have {
        return Continue(());
    }
    Break(Action::UpdateFileSystem {
        id: fs.id.clone(),
        update: FileSystemUpdate {
            throughput_capacity: Some(want),
            ..FileSystemUpdate::default()
        },
    })
}

/// Data repository associations: unlink what is no longer asked for first (paths may not
/// overlap, so an entry whose paths changed is removed before its replacement is made),
/// change automatic import / export in place, then link what is missing one at a time, each
/// once the others are available.
fn associations(i: &Inputs, class: &LustreWorkspaceClass, fs: &FileSystem) -> Plan<()> {
    let ws = i.workspace;
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let adopted = ws.spec.file_system_id.is_some();
    let mine: Vec<&DataRepositoryAssociation> = i.aws.associations_of_file_system();
    let desired = &ws.spec.data_repositories;
    let stale: Vec<String> = mine
        .iter()
        .filter(|a| a.lifecycle != Lifecycle::Deleting)
        .filter(|a| !desired.iter().any(|r| same_link(a, r)))
        // An adopted file system may carry associations someone else made: only ours go.
        .filter(|a| !adopted || naming::owner_uid(&a.tags) == Some(uid))
        .map(|a| a.id.clone())
        .collect();
    if !stale.is_empty() {
        return Break(Action::DeleteAssociations(stale));
    }
    if mine.iter().any(|a| a.lifecycle == Lifecycle::Deleting) {
        return Break(Action::Wait(Wait::Associations));
    }
    let mut missing = Vec::new();
    for r in desired {
        match i.aws.association_for(r) {
            Some(a) if a.lifecycle.is_failed() => {
                return Break(Action::AssociationFailed {
                    name: r.name.clone(),
                    message: a
                        .failure_message
                        .as_deref()
                        .map(lustre_cloud::redact)
                        .unwrap_or_else(|| {
                            format!("association {} is {}", a.id, a.lifecycle.as_str())
                        }),
                });
            }
            // Other automatic import / export: changed in place, once it is AVAILABLE (an
            // adopted file system's association someone else made is not ours to change).
            Some(a) => match events_update(a, r) {
                Some(update) if a.lifecycle == Lifecycle::Available => {
                    if adopted && naming::owner_uid(&a.tags) != Some(uid) {
                        return Break(Action::AssociationFailed {
                            name: r.name.clone(),
                            message: format!(
                                "association {} links this path with other automatic import / export and is not this workspace's to change",
                                a.id
                            ),
                        });
                    }
                    return Break(Action::UpdateAssociation {
                        id: a.id.clone(),
                        update,
                    });
                }
                _ => {}
            },
            None => missing.push(r),
        }
    }
    // One at a time, each once the others are AVAILABLE: FSx works on one association
    // request per file system at a time, and a link that fails stops the next.
    if mine.iter().any(|a| a.lifecycle != Lifecycle::Available) {
        return Break(Action::Wait(Wait::Associations));
    }
    if !missing.is_empty() {
        return Break(Action::CreateAssociations(association_requests(
            ws,
            class,
            fs,
            &missing[..1],
        )));
    }
    Continue(())
}

/// The StorageClass, the PersistentVolume naming the file system at its size, the claim once
/// the binder has seen the volume, bound.
fn kubernetes(i: &Inputs, fs: &FileSystem, zone: Option<&str>) -> Action {
    if !i.kube.storage_class {
        return Action::ApplyStorageClass;
    }
    let available = match &i.kube.volume {
        Some(v)
            if v.file_system_id == fs.id
                && v.capacity_gib == crate::builders::volume_gib(fs)
                && v.zone.as_deref() == zone =>
        {
            v.available
        }
        _ => return Action::ApplyVolume,
    };
    match &i.kube.claim {
        // The binder binds a claim naming a volume it has not stored yet only at its next
        // resync (15 s by default): the claim comes once the volume is Available.
        None if !available => Action::Wait(Wait::VolumeAvailable),
        None => Action::ApplyClaim,
        Some(c) if !c.bound => Action::Wait(Wait::ClaimBinding),
        Some(_) => Action::Ready,
    }
}

/// The status of [`Wait::VolumeAvailable`] and [`Wait::ClaimBinding`]: both wait for
/// kube-controller-manager's binder.
pub fn binding_wait(i: &Inputs) -> String {
    format!(
        "waiting for kube-controller-manager to bind claim {} to volume {}",
        super::claim_name(i.workspace),
        crate::builders::volume_name(i.workspace)
    )
}

/// Whether the class admits a namespace with these labels (no selector: every namespace).
pub fn namespace_admitted(class: &LustreWorkspaceClass, labels: &BTreeMap<String, String>) -> bool {
    class
        .spec
        .allowed_namespaces
        .as_ref()
        .is_none_or(|selector| lustre_api::validation::selector_matches(selector, labels))
}

/// Whether the workspace may adopt `fs` under its class's adoption policy: a SCRATCH_2 or
/// PERSISTENT_2 file system in one of the class's subnets (and so its VPC) that no other
/// workspace adopts;
/// made by the operator only if it was kept (`Retain`) from a workspace of the same namespace,
/// otherwise carrying every tag the policy names.
pub fn may_adopt(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    vpc_id: &str,
    fs: Option<&FileSystem>,
    cluster_id: Option<&str>,
) -> bool {
    let (Some(policy), Some(fs)) = (&class.spec.adoption, fs) else {
        return false;
    };
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let ns = ws.metadata.namespace.as_deref().unwrap_or_default();
    let tag = |k: &str| fs.tags.get(k).map(String::as_str);
    let subnets = class.spec.subnets();
    if fs.vpc_id.as_deref() != Some(vpc_id)
        || fs.subnet_id.as_ref().is_some_and(|s| !subnets.contains(s))
        || fs.deployment_type == lustre_cloud::DeploymentType::Other
        || tag(tag_keys::ADOPTED_BY).is_some_and(|a| a != uid)
    {
        return false;
    }
    match naming::owner_uid(&fs.tags) {
        Some(owner) if owner == uid => true,
        // Kept by this install (two clusters may both have a namespace of that name).
        Some(_) => {
            tag(tag_keys::RETAINED) == Some("true")
                && tag(tag_keys::NAMESPACE) == Some(ns)
                && tag(tag_keys::CLUSTER) == cluster_id
        }
        None => policy
            .file_system_tags
            .iter()
            .all(|(k, v)| tag(k) == Some(v.as_str())),
    }
}

/// The one refusal for every adoption that may not happen: whether the file system is
/// missing, elsewhere, someone else's or outside the policy is not told apart, so the answer
/// reveals nothing about file systems a tenant cannot see.
pub fn adoption_refused(id: &str) -> String {
    format!(
        "file system {id} cannot be adopted by this workspace: it is not in the class's region and VPC, or the class's adoption policy does not admit it (no policy, tags that do not match, not a SCRATCH_2 / PERSISTENT_2 Lustre file system, or another workspace owns or adopts it)"
    )
}
