//! Decide, then act: one pure function from what a workspace asks for and what was observed
//! (in Kubernetes and AWS) to the single next step. The reconciler does the step, then asks
//! again; a crash anywhere leaves a state this function maps to the right next step.

use kube::ResourceExt;
use std::collections::BTreeMap;

use lustre_api::constants::tags as tag_keys;
use lustre_api::validation::{effective_deployment_type, summarize};
use lustre_api::{
    DeletionPolicy, DeploymentType, LustreWorkspace, LustreWorkspaceClass, Violation,
};
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::{
    DataRepositoryAssociation, DataRepositoryRequest, FileSystem, FileSystemRequest,
    FileSystemUpdate, IngressRule, Lifecycle, Peer, SecurityGroup, Tags, lustre_ingress,
};

/// Lustre version every file system is created with: 2.15 lets data repository associations
/// work on SCRATCH_2 as well as PERSISTENT_2, and the version cannot change later.
pub const LUSTRE_VERSION: &str = "2.15";

/// What was found for the workspace's class.
#[derive(Clone, Copy, Debug)]
pub enum ClassLookup<'a> {
    /// The class (named, or the default).
    Found(&'a LustreWorkspaceClass),
    /// `spec.className` names a class that does not exist.
    Missing(&'a str),
    /// No class named and none marked default.
    NoDefault,
}

/// The Kubernetes side as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KubeView {
    /// The class's StorageClass exists.
    pub storage_class: bool,
    /// The workspace's PersistentVolume.
    pub volume: Option<VolumeView>,
    /// The workspace's claim.
    pub claim: Option<ClaimView>,
    /// A claim of that name exists and is not the workspace's (no owner reference to it).
    pub claim_taken: bool,
}

/// What matters of the PersistentVolume.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeView {
    /// Capacity in GiB.
    pub capacity_gib: i64,
    /// `spec.csi.volumeHandle`.
    pub file_system_id: String,
}

/// What matters of the PersistentVolumeClaim.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimView {
    /// `status.phase == Bound`.
    pub bound: bool,
    /// Has a deletion timestamp (pods may still hold it through pvc-protection).
    pub deleting: bool,
}

/// The AWS side as observed.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsView<'a> {
    /// VPC of the class's subnet, once looked up.
    pub vpc_id: Option<&'a str>,
    /// The workspace's security group, if the operator made one.
    pub security_group: Option<&'a SecurityGroup>,
    /// The workspace's (or the adopted) file system.
    pub file_system: Option<&'a FileSystem>,
    /// Associations of that file system.
    pub associations: &'a [DataRepositoryAssociation],
}

/// Everything the decision looks at.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub workspace: &'a LustreWorkspace,
    pub class: ClassLookup<'a>,
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// This install's id, when it has one.
    pub cluster_id: Option<&'a str>,
    pub aws: AwsView<'a>,
    pub kube: &'a KubeView,
}

/// Why the reconciler waits (nothing to do until AWS or Kubernetes moves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// File system CREATING.
    FileSystemCreating,
    /// File system UPDATING (or an update still optimizing).
    FileSystemUpdating,
    /// File system DELETING.
    FileSystemDeleting,
    /// Associations CREATING / UPDATING / DELETING.
    Associations,
    /// The claim is not Bound yet.
    ClaimBinding,
    /// The claim is deleting but pods still use it (pvc-protection).
    ClaimInUse,
}

/// The single next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The class does not exist; wait for it (classes are watched).
    ClassMissing(String),
    /// The class's `allowedNamespaces` does not admit the workspace's namespace (any more):
    /// no AWS change until it does; what exists is kept (namespaces are watched).
    NamespaceNotAllowed { class: String, namespace: String },
    /// The spec breaks rules; no AWS call until it changes.
    Invalid(Vec<Violation>),
    /// The adopted file system cannot be used.
    AdoptionRefused(String),
    /// The claim name is taken by a claim the workspace does not own.
    ClaimConflict(String),
    /// Mark the file system as adopted by this workspace (one adopter at a time).
    TagAdopted { arn: String },
    /// Look up the VPC of the class's subnet.
    LookUpVpc { subnet_id: String },
    /// Create the workspace's security group.
    CreateSecurityGroup { vpc_id: String },
    /// Add the missing Lustre rules.
    AuthorizeRules {
        group_id: String,
        rules: Vec<IngressRule>,
    },
    /// Create the file system.
    CreateFileSystem(Box<FileSystemRequest>),
    /// Grow or change throughput.
    UpdateFileSystem {
        id: String,
        update: FileSystemUpdate,
    },
    /// Unlink associations no longer asked for.
    DeleteAssociations(Vec<String>),
    /// Link the S3 prefixes not linked yet.
    CreateAssociations(Vec<DataRepositoryRequest>),
    /// The file system is FAILED / MISCONFIGURED: needs a person.
    FileSystemFailed(String),
    /// An association is FAILED / MISCONFIGURED.
    AssociationFailed { name: String, message: String },
    /// Create or update the class's StorageClass.
    ApplyStorageClass,
    /// Create or update the PersistentVolume.
    ApplyVolume,
    /// Create the PersistentVolumeClaim.
    ApplyClaim,
    /// Nothing to do until something moves.
    Wait(Wait),
    /// Everything is in place.
    Ready,
    // Deletion.
    /// Delete the claim.
    DeleteClaim,
    /// Delete the PersistentVolume.
    DeleteVolume,
    /// Tag the kept file system as retained.
    TagRetained { arn: String },
    /// Take this workspace's adopter mark off the file system it adopted.
    UntagAdopted { arn: String },
    /// Delete the file system (with a final backup when asked).
    DeleteFileSystem { id: String, final_backup: bool },
    /// Delete the security group (DependencyViolation until the ENIs are gone).
    DeleteSecurityGroup { id: String },
    /// Nothing left: remove the finalizer.
    Finished,
}

/// The workspace's identity for tokens and tags.
pub fn owner(ws: &LustreWorkspace, class_name: &str) -> Owner {
    Owner {
        namespace: ws.metadata.namespace.clone().unwrap_or_default(),
        name: ws.metadata.name.clone().unwrap_or_default(),
        uid: ws.metadata.uid.clone().unwrap_or_default(),
        class: class_name.to_string(),
    }
}

/// The claim's name: `spec.claimName` or the workspace's name.
pub fn claim_name(ws: &LustreWorkspace) -> String {
    ws.spec
        .claim_name
        .clone()
        .unwrap_or_else(|| ws.metadata.name.clone().unwrap_or_default())
}

/// Tags for the workspace's AWS resources.
pub fn resource_tags(ws: &LustreWorkspace, class: &LustreWorkspaceClass) -> Tags {
    let class_name = class.metadata.name.clone().unwrap_or_default();
    naming::owner_tags(&owner(ws, &class_name), &class.spec.tags, &ws.spec.tags)
}

/// Client peers the class lets in.
pub fn client_peers(class: &LustreWorkspaceClass) -> Vec<Peer> {
    let sg = &class.spec.security_group;
    sg.client_security_group_ids
        .iter()
        .map(|g| Peer::Group(g.clone()))
        .chain(sg.client_cidrs.iter().map(|c| Peer::Cidr(c.clone())))
        .collect()
}

/// Whether the workspace may adopt `fs` under its class's adoption policy: a SCRATCH_2 or
/// PERSISTENT_2 file system in the VPC of the class's subnet that no other workspace adopts;
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
    if fs.vpc_id.as_deref() != Some(vpc_id)
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

fn file_system_request(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    security_group: Option<&str>,
) -> FileSystemRequest {
    let deployment = effective_deployment_type(&ws.spec, &class.spec);
    let compression = ws.spec.data_compression_type.or_else(|| {
        class
            .spec
            .defaults
            .as_ref()
            .and_then(|d| d.data_compression_type)
    });
    let mut groups: Vec<String> = security_group.into_iter().map(str::to_string).collect();
    groups.extend(
        class
            .spec
            .security_group
            .additional_security_group_ids
            .iter()
            .cloned(),
    );
    FileSystemRequest {
        client_token: naming::file_system_token(ws.metadata.uid.as_deref().unwrap_or_default()),
        deployment_type: match deployment {
            DeploymentType::Scratch2 => lustre_cloud::DeploymentType::Scratch2,
            DeploymentType::Persistent2 => lustre_cloud::DeploymentType::Persistent2,
        },
        storage_capacity_gib: ws.spec.storage_capacity_gib,
        per_unit_storage_throughput: ws.spec.per_unit_storage_throughput,
        subnet_id: class.spec.subnet_id.clone(),
        security_group_ids: groups,
        kms_key_id: (deployment == DeploymentType::Persistent2)
            .then(|| class.spec.kms_key_id.clone())
            .flatten(),
        lz4_compression: compression == Some(lustre_api::DataCompressionType::Lz4),
        automatic_backup_retention_days: class.spec.automatic_backup_retention_days,
        weekly_maintenance_start_time: class.spec.weekly_maintenance_start_time.clone(),
        file_system_type_version: LUSTRE_VERSION.to_string(),
        tags: resource_tags(ws, class),
    }
}

fn association_requests(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: &FileSystem,
    missing: &[&lustre_api::DataRepository],
) -> Vec<DataRepositoryRequest> {
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let tags = resource_tags(ws, class);
    missing
        .iter()
        .map(|r| DataRepositoryRequest {
            client_token: naming::association_token(uid, &fs.id, &r.file_system_path, &r.s3_path),
            file_system_id: fs.id.clone(),
            file_system_path: r.file_system_path.clone(),
            data_repository_path: r.s3_path.clone(),
            auto_import: r.auto_import.iter().map(|e| event(*e)).collect(),
            auto_export: r.auto_export.iter().map(|e| event(*e)).collect(),
            batch_import_meta_data_on_create: r.import_metadata_on_create.unwrap_or(false),
            imported_file_chunk_size_mib: r.imported_file_chunk_size_mib,
            tags: tags.clone(),
        })
        .collect()
}

fn event(e: lustre_api::S3Event) -> lustre_cloud::S3Event {
    match e {
        lustre_api::S3Event::New => lustre_cloud::S3Event::New,
        lustre_api::S3Event::Changed => lustre_cloud::S3Event::Changed,
        lustre_api::S3Event::Deleted => lustre_cloud::S3Event::Deleted,
    }
}

/// Whether an observed association is what a spec entry asks for.
pub fn association_matches(a: &DataRepositoryAssociation, r: &lustre_api::DataRepository) -> bool {
    let mut want_import: Vec<_> = r.auto_import.iter().map(|e| event(*e)).collect();
    let mut want_export: Vec<_> = r.auto_export.iter().map(|e| event(*e)).collect();
    let (mut have_import, mut have_export) = (a.auto_import.clone(), a.auto_export.clone());
    for v in [
        &mut want_import,
        &mut want_export,
        &mut have_import,
        &mut have_export,
    ] {
        v.sort();
        v.dedup();
    }
    a.file_system_path == r.file_system_path
        && a.data_repository_path == r.s3_path
        && want_import == have_import
        && want_export == have_export
}

/// Whether the class admits a namespace with these labels (no selector: every namespace).
pub fn namespace_admitted(class: &LustreWorkspaceClass, labels: &BTreeMap<String, String>) -> bool {
    class
        .spec
        .allowed_namespaces
        .as_ref()
        .is_none_or(|selector| lustre_api::validation::selector_matches(selector, labels))
}

/// The next step for a workspace that is not being deleted.
pub fn next_action(i: &Inputs) -> Action {
    let ws = i.workspace;
    let class = match i.class {
        ClassLookup::Found(c) => c,
        ClassLookup::Missing(name) => return Action::ClassMissing(name.to_string()),
        ClassLookup::NoDefault => return Action::ClassMissing(String::new()),
    };
    if !namespace_admitted(class, i.namespace_labels) {
        return Action::NamespaceNotAllowed {
            class: class.name_any(),
            namespace: ws.namespace().unwrap_or_default(),
        };
    }
    let mut violations = ws.validate(None);
    violations.extend(ws.validate_against_class(class, i.namespace_labels));
    if !violations.is_empty() {
        return Action::Invalid(violations);
    }
    // Before any AWS change: a workspace that cannot get its claim gets nothing.
    if i.kube.claim_taken {
        return Action::ClaimConflict(claim_name(ws));
    }
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();

    let adopted = ws.spec.file_system_id.is_some();
    if let Some(id) = &ws.spec.file_system_id {
        // No AWS call for a class that adopts nothing.
        if class.spec.adoption.is_none() {
            return Action::AdoptionRefused(adoption_refused(id));
        }
        let Some(vpc) = i.aws.vpc_id else {
            return Action::LookUpVpc {
                subnet_id: class.spec.subnet_id.clone(),
            };
        };
        if !may_adopt(ws, class, vpc, i.aws.file_system, i.cluster_id) {
            return Action::AdoptionRefused(adoption_refused(id));
        }
        if let Some(fs) = i.aws.file_system
            && fs.tags.get(tag_keys::ADOPTED_BY).map(String::as_str) != Some(uid)
        {
            return Action::TagAdopted {
                arn: fs.arn.clone(),
            };
        }
    }
    let mut security_group_id = None;
    if !adopted && class.spec.security_group.managed {
        match i.aws.security_group {
            None => {
                return match i.aws.vpc_id {
                    None => Action::LookUpVpc {
                        subnet_id: class.spec.subnet_id.clone(),
                    },
                    Some(vpc) => Action::CreateSecurityGroup {
                        vpc_id: vpc.to_string(),
                    },
                };
            }
            Some(sg) => {
                let missing: Vec<IngressRule> = lustre_ingress(&sg.id, &client_peers(class))
                    .into_iter()
                    .filter(|r| !sg.ingress.contains(r))
                    .collect();
                if !missing.is_empty() {
                    return Action::AuthorizeRules {
                        group_id: sg.id.clone(),
                        rules: missing,
                    };
                }
                security_group_id = Some(sg.id.as_str());
            }
        }
    }

    let fs = match (i.aws.file_system, &ws.spec.file_system_id) {
        (None, Some(id)) => return Action::AdoptionRefused(adoption_refused(id)),
        (None, None) => {
            // A file system this workspace recorded and AWS no longer knows was deleted behind
            // the operator's back. Creating a new one would hand pods an empty file system
            // under the same claim, so say so and stop.
            if let Some(id) = ws.status.as_ref().and_then(|s| s.file_system_id.as_deref()) {
                return Action::FileSystemFailed(format!(
                    "file system {id} no longer exists in AWS (deleted outside the operator); delete this workspace and create it again for a new, empty file system"
                ));
            }
            return Action::CreateFileSystem(Box::new(file_system_request(
                ws,
                class,
                security_group_id,
            )));
        }
        (Some(fs), _) => fs,
    };

    match &fs.lifecycle {
        l if l.is_failed() => {
            return Action::FileSystemFailed(
                fs.failure_message
                    .as_deref()
                    .map(lustre_cloud::redact)
                    .unwrap_or_else(|| format!("file system {} is {}", fs.id, l.as_str())),
            );
        }
        Lifecycle::Creating => return Action::Wait(Wait::FileSystemCreating),
        Lifecycle::Updating => return Action::Wait(Wait::FileSystemUpdating),
        Lifecycle::Deleting => {
            return Action::FileSystemFailed(format!(
                "file system {} is being deleted outside the operator",
                fs.id
            ));
        }
        _ => {}
    }
    if fs.update_in_progress {
        return Action::Wait(Wait::FileSystemUpdating);
    }

    if !adopted {
        let mut update = FileSystemUpdate::default();
        let want = i64::from(ws.spec.storage_capacity_gib);
        let have = i64::from(fs.storage_capacity_gib);
        if want < have {
            return Action::Invalid(vec![Violation {
                field: "spec.storageCapacityGiB".into(),
                message: format!(
                    "{} (the file system already has {have} GiB)",
                    lustre_api::rules::CAPACITY_GROWS_MSG
                ),
            }]);
        }
        if want > have {
            update.storage_capacity_gib = Some(ws.spec.storage_capacity_gib);
        }
        if fs.deployment_type == lustre_cloud::DeploymentType::Persistent2
            && ws.spec.per_unit_storage_throughput.is_some()
            && ws.spec.per_unit_storage_throughput != fs.per_unit_storage_throughput
        {
            update.per_unit_storage_throughput = ws.spec.per_unit_storage_throughput;
        }
        if update != FileSystemUpdate::default() {
            return Action::UpdateFileSystem {
                id: fs.id.clone(),
                update,
            };
        }
    }

    // Data repository associations: unlink what is no longer asked for first (paths may not
    // overlap, so a changed entry is removed before its replacement is made).
    let mine: Vec<&DataRepositoryAssociation> = i
        .aws
        .associations
        .iter()
        .filter(|a| a.file_system_id == fs.id)
        .collect();
    let desired = &ws.spec.data_repositories;
    let stale: Vec<String> = mine
        .iter()
        .filter(|a| a.lifecycle != Lifecycle::Deleting)
        .filter(|a| !desired.iter().any(|r| association_matches(a, r)))
        // An adopted file system may carry associations someone else made: only ours go.
        .filter(|a| !adopted || naming::owner_uid(&a.tags) == Some(uid))
        .map(|a| a.id.clone())
        .collect();
    if !stale.is_empty() {
        return Action::DeleteAssociations(stale);
    }
    if mine.iter().any(|a| a.lifecycle == Lifecycle::Deleting) {
        return Action::Wait(Wait::Associations);
    }
    for r in desired {
        if let Some(a) = mine.iter().find(|a| association_matches(a, r))
            && a.lifecycle.is_failed()
        {
            return Action::AssociationFailed {
                name: r.name.clone(),
                message: a
                    .failure_message
                    .as_deref()
                    .map(lustre_cloud::redact)
                    .unwrap_or_else(|| format!("association {} is {}", a.id, a.lifecycle.as_str())),
            };
        }
    }
    let missing: Vec<&lustre_api::DataRepository> = desired
        .iter()
        .filter(|r| !mine.iter().any(|a| association_matches(a, r)))
        .collect();
    if !missing.is_empty() {
        return Action::CreateAssociations(association_requests(ws, class, fs, &missing));
    }
    if mine.iter().any(|a| a.lifecycle != Lifecycle::Available) {
        return Action::Wait(Wait::Associations);
    }

    if !i.kube.storage_class {
        return Action::ApplyStorageClass;
    }
    match &i.kube.volume {
        Some(v)
            if v.file_system_id == fs.id
                && v.capacity_gib == i64::from(fs.storage_capacity_gib) => {}
        _ => return Action::ApplyVolume,
    }
    match &i.kube.claim {
        None => Action::ApplyClaim,
        Some(c) if !c.bound => Action::Wait(Wait::ClaimBinding),
        Some(_) => Action::Ready,
    }
}

/// The next step for a workspace being deleted. Works when create never got far and when the
/// class is gone (`class` is then `None`).
pub fn next_cleanup_action(i: &Inputs) -> Action {
    let ws = i.workspace;
    let class = match i.class {
        ClassLookup::Found(c) => Some(c),
        _ => None,
    };
    match &i.kube.claim {
        Some(c) if !c.deleting => return Action::DeleteClaim,
        Some(_) => return Action::Wait(Wait::ClaimInUse),
        None => {}
    }
    if i.kube.volume.is_some() {
        return Action::DeleteVolume;
    }
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let adopted = ws.spec.file_system_id.is_some();
    let retain = deletion_policy(ws, class) == DeletionPolicy::Retain;
    if retain && !adopted {
        return match i.aws.file_system {
            Some(fs)
                if fs
                    .tags
                    .get(lustre_api::constants::tags::RETAINED)
                    .map(String::as_str)
                    != Some("true") =>
            {
                Action::TagRetained {
                    arn: fs.arn.clone(),
                }
            }
            _ => Action::Finished,
        };
    }
    let ours: Vec<&DataRepositoryAssociation> = i
        .aws
        .associations
        .iter()
        .filter(|a| {
            i.aws
                .file_system
                .is_some_and(|fs| fs.id == a.file_system_id)
        })
        .filter(|a| !adopted || naming::owner_uid(&a.tags) == Some(uid))
        .collect();
    let to_delete: Vec<String> = ours
        .iter()
        .filter(|a| a.lifecycle != Lifecycle::Deleting)
        .map(|a| a.id.clone())
        .collect();
    if !to_delete.is_empty() {
        return Action::DeleteAssociations(to_delete);
    }
    if !ours.is_empty() {
        return Action::Wait(Wait::Associations);
    }
    if adopted
        && let Some(fs) = i.aws.file_system
        && fs.tags.get(tag_keys::ADOPTED_BY).map(String::as_str) == Some(uid)
    {
        return Action::UntagAdopted {
            arn: fs.arn.clone(),
        };
    }
    if !adopted && let Some(fs) = i.aws.file_system {
        return match fs.lifecycle {
            Lifecycle::Creating => Action::Wait(Wait::FileSystemCreating),
            Lifecycle::Deleting => Action::Wait(Wait::FileSystemDeleting),
            _ => Action::DeleteFileSystem {
                id: fs.id.clone(),
                final_backup: ws.spec.final_backup_on_delete == Some(true)
                    && fs.deployment_type == lustre_cloud::DeploymentType::Persistent2
                    && !fs.lifecycle.is_failed(),
            },
        };
    }
    if let Some(sg) = i.aws.security_group {
        return Action::DeleteSecurityGroup { id: sg.id.clone() };
    }
    Action::Finished
}

/// One line for logs and Events.
pub fn describe(action: &Action) -> String {
    match action {
        Action::ClassMissing(name) if name.is_empty() => {
            "no class named and no default class".into()
        }
        Action::ClassMissing(name) => format!("class {name} not found"),
        Action::NamespaceNotAllowed { class, namespace } => format!(
            "class {class} does not admit namespace {namespace} (its allowedNamespaces selector does not match the namespace's labels): no AWS change is made until it does; the file system and its data are kept"
        ),
        Action::Invalid(v) => format!("invalid spec: {}", summarize(v)),
        Action::AdoptionRefused(m) => format!("adoption refused: {m}"),
        Action::ClaimConflict(name) => format!(
            "claim {name} already exists and is not this workspace's: the operator will not take it over; delete that claim, or create the workspace again with another spec.claimName"
        ),
        Action::LookUpVpc { subnet_id } => format!("looking up the VPC of {subnet_id}"),
        Action::CreateSecurityGroup { vpc_id } => {
            format!("creating the security group in {vpc_id}")
        }
        Action::AuthorizeRules { group_id, rules } => {
            format!("opening {} Lustre rule(s) on {group_id}", rules.len())
        }
        Action::CreateFileSystem(r) => {
            format!("creating a {} GiB file system", r.storage_capacity_gib)
        }
        Action::UpdateFileSystem { id, update } => format!("updating {id}: {update:?}"),
        Action::DeleteAssociations(ids) => format!("unlinking {}", ids.join(", ")),
        Action::CreateAssociations(r) => format!(
            "linking {}",
            r.iter()
                .map(|r| format!("{} at {}", r.data_repository_path, r.file_system_path))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::FileSystemFailed(m) => format!("file system failed: {m}"),
        Action::AssociationFailed { name, message } => {
            format!("data repository {name} failed: {message}")
        }
        Action::ApplyStorageClass => "applying the StorageClass".into(),
        Action::ApplyVolume => "applying the PersistentVolume".into(),
        Action::ApplyClaim => "creating the PersistentVolumeClaim".into(),
        Action::Wait(w) => format!("waiting: {w:?}"),
        Action::Ready => "ready".into(),
        Action::DeleteClaim => "deleting the claim".into(),
        Action::DeleteVolume => "deleting the PersistentVolume".into(),
        Action::TagRetained { arn } => format!("tagging {arn} as retained"),
        Action::TagAdopted { arn } => format!("marking {arn} as adopted by this workspace"),
        Action::UntagAdopted { arn } => {
            format!("taking this workspace's adopter mark off {arn}")
        }
        Action::DeleteFileSystem { id, final_backup } => format!(
            "deleting {id}{}",
            if *final_backup {
                " after a final backup"
            } else {
                ""
            }
        ),
        Action::DeleteSecurityGroup { id } => format!("deleting security group {id}"),
        Action::Finished => "cleanup finished".into(),
    }
}
