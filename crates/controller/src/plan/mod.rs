//! Decide, then act: one pure function from what a workspace asks for and what was observed
//! (in Kubernetes and AWS) to the single next step. The reconciler does the step, then asks
//! again; a crash anywhere leaves a state this function maps to the right next step.
//!
//! - [`action`]: the steps ([`Action`]) and, written once per step, what each is called,
//!   says, records and whether the reconcile goes on after it;
//! - [`create`]: [`next_action`], a chain of small planners, one per part (gate, adoption,
//!   security group, file system, size, associations, Kubernetes objects);
//! - [`cleanup`]: [`next_cleanup_action`], the same for a workspace being deleted, with
//!   [`export`], the export before deletion;
//! - [`requests`]: the names, tags and AWS requests a step carries.

mod action;
pub mod budget;
mod cleanup;
mod create;
pub mod expiry;
pub mod export;
pub mod import;
mod placement;
mod requests;
pub mod restore;
pub mod settings;

use std::collections::BTreeMap;

use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::{DataRepositoryAssociation, FileSystem, SecurityGroup};

pub use action::{Action, After, Kind, Poll, Recheck, Stopped, Wait};
pub use cleanup::{claim_held, deletion_policy, next_cleanup_action, releasing};
pub use create::{adoption_refused, binding_wait, may_adopt, namespace_admitted, next_action};

/// Reasons of the Events about steps (a Normal one when an AWS change is made, a Warning when
/// a step fails).
pub mod event_reason {
    pub const CREATING_SECURITY_GROUP: &str = "CreatingSecurityGroup";
    pub const OPENING_LUSTRE_PORTS: &str = "OpeningLustrePorts";
    pub const CREATING_FILE_SYSTEM: &str = "CreatingFileSystem";
    pub const UPDATING_FILE_SYSTEM: &str = "UpdatingFileSystem";
    pub const LINKING: &str = "LinkingDataRepositories";
    pub const UNLINKING: &str = "UnlinkingDataRepositories";
    pub const UPDATING_LINK: &str = "UpdatingDataRepository";
    pub const CREATING_VOLUME: &str = "CreatingVolume";
    pub const DELETING_VOLUME: &str = "DeletingVolume";
    pub const EXPORTING: &str = "ExportingBeforeDelete";
    pub const IMPORTING: &str = "ImportingLinkedData";
    pub const EXPORT_TIMED_OUT: &str = "ExportTimedOut";
    pub const DELETING_FILE_SYSTEM: &str = "DeletingFileSystem";
    pub const DELETING_SECURITY_GROUP: &str = "DeletingSecurityGroup";
    pub const RETAINED: &str = "Retained";
    pub const ADOPTING: &str = "AdoptingFileSystem";
    pub const RELEASING: &str = "ReleasingFileSystem";
    pub const RECONCILED: &str = "Reconciled";
    pub const READY: &str = "Ready";
    pub const DELETED: &str = "Deleted";
    pub const EXPIRED: &str = "Expired";
    pub const EXPIRES_SOON: &str = "ExpiresSoon";
}

pub use requests::{
    LUSTRE_VERSION, association_matches, claim_name, client_peers, events_update, owner,
    resource_tags, same_link, wanted_ingress,
};

/// Whether the workspace's claim comes before its file system (`placement: MatchPods`, no
/// zone asked, nothing made yet): the file system then goes in the zone of the node the
/// scheduler picks for the first pod that uses the claim.
pub fn first_pod(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: Option<&FileSystem>,
) -> bool {
    class.spec.placement == Some(lustre_api::Placement::MatchPods)
        && ws.spec.availability_zone.is_none()
        && ws.spec.file_system_id.is_none()
        && fs.is_none()
        && ws
            .status
            .as_ref()
            .is_none_or(|s| s.file_system_id.is_none())
}

/// What a workspace waiting for its first pod says (`FileSystemReady`).
pub fn first_pod_wait(i: &Inputs) -> String {
    format!(
        "waiting for the first pod that uses claim {} to be scheduled (placement: MatchPods): the file system goes in its node's zone",
        claim_name(i.workspace)
    )
}

/// What a deletion waiting for its shares' claims says (`Ready`).
pub fn shares_wait(i: &Inputs) -> String {
    format!(
        "deleting: the shared claims {} are still used by pods in their namespaces; they go when those pods do",
        i.kube.shared.join(", ")
    )
}

/// The zone of the observed file system, once its subnet was looked up.
pub fn zone_of(i: &Inputs) -> Option<String> {
    let fs = i.aws.file_system?;
    file_system_zone(i.aws.subnets, fs).map(str::to_string)
}

/// The Availability Zone of the file system's subnet, once looked up.
pub fn file_system_zone<'a>(
    subnets: &'a [lustre_cloud::Subnet],
    fs: &FileSystem,
) -> Option<&'a str> {
    let id = fs.subnet_id.as_deref()?;
    subnets
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.availability_zone.as_str())
}

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
    /// `placement: MatchPods`: the class's first-pod StorageClass exists.
    pub first_pod_storage_class: bool,
    /// `placement: MatchPods`: the zone of the node picked for the claim's first pod, read
    /// while the workspace has no file system.
    pub first_pod_zone: Option<String>,
    /// The shares the spec offers, as accepted and bound in their namespaces.
    pub shares: Vec<lustre_api::ShareStatus>,
    /// While deleting: the claims of accepted shares that still exist (`namespace/claim`),
    /// which the deletion waits for.
    pub shared: Vec<String>,
}

/// What matters of the PersistentVolume.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeView {
    /// Capacity in GiB.
    pub capacity_gib: i64,
    /// `spec.csi.volumeHandle`.
    pub file_system_id: String,
    /// The zone its node affinity keeps pods in (none: no affinity).
    pub zone: Option<String>,
    /// Its phase is past `Pending`: kube-controller-manager's binder has it in its own store.
    /// A claim naming a volume the binder has not stored yet waits for the binder's resync
    /// (15 s by default) to bind, so the claim is made only once this is true.
    pub available: bool,
    /// Has a deletion timestamp, or this process sent its delete (pv-protection holds it
    /// while it is bound).
    pub deleting: bool,
}

/// What matters of the PersistentVolumeClaim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimView {
    /// `status.phase == Bound`.
    pub bound: bool,
    /// Has a deletion timestamp (pods may still hold it through pvc-protection).
    pub deleting: bool,
    /// Its StorageClass.
    pub storage_class: Option<String>,
    /// The node the scheduler picked for its first pod (a WaitForFirstConsumer claim).
    pub selected_node: Option<String>,
}

/// The AWS side as observed.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsView<'a> {
    /// The class's subnets and the file system's, as far as looked up.
    pub subnets: &'a [lustre_cloud::Subnet],
    /// The workspace's security group, if the operator made one.
    pub security_group: Option<&'a SecurityGroup>,
    /// The workspace's (or the adopted) file system.
    pub file_system: Option<&'a FileSystem>,
    /// Associations of that file system.
    pub associations: &'a [DataRepositoryAssociation],
    /// The export before deletion.
    pub export: HookView<'a>,
    /// The import when links are made.
    pub import: HookView<'a>,
    /// While deleting: other data repository tasks still running on the file system (a
    /// `LustreDataTask`'s).
    pub running_tasks: &'a [String],
    /// Before the file system is made: the backup `spec.source` names, as looked up.
    pub source: Option<&'a restore::SourceBackup>,
}

/// A data repository task the operator runs for a workspace itself (not for a
/// `LustreDataTask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// The export before deletion (`exportOnDelete`).
    ExportOnDelete,
    /// The import when links are made (`importMetadataOnCreate`).
    ImportOnCreate,
}

impl Hook {
    /// The value of its task's purpose tag.
    pub fn purpose(self) -> &'static str {
        use lustre_api::constants::tags;
        match self {
            Self::ExportOnDelete => tags::PURPOSE_EXPORT_ON_DELETE,
            Self::ImportOnCreate => tags::PURPOSE_IMPORT_ON_CREATE,
        }
    }

    /// The tags of this hook's task for the workspace: its identity (the class it was
    /// provisioned with), the purpose and the attempt.
    pub fn tags(self, i: &Inputs, attempt: &str) -> lustre_cloud::Tags {
        use lustre_api::constants::tags;
        let ws = i.workspace;
        let class = i
            .class
            .found()
            .and_then(|c| c.metadata.name.clone())
            .or_else(|| ws.status.as_ref()?.class_name.clone())
            .unwrap_or_default();
        let mut t = lustre_cloud::naming::owner_tags(
            &owner(ws, &class),
            &Default::default(),
            &Default::default(),
        );
        t.insert(tags::PURPOSE.into(), self.purpose().into());
        t.insert(tags::ATTEMPT.into(), attempt.into());
        t
    }

    /// Whether `task` is this hook's task of the workspace for `attempt`: the workspace's UID,
    /// the hook's task type, purpose and attempt tags.
    pub fn owns(self, task: &lustre_cloud::DataTask, ws: &LustreWorkspace, attempt: &str) -> bool {
        use lustre_api::constants::tags;
        let kind = match self {
            Self::ExportOnDelete => lustre_cloud::TaskType::Export,
            Self::ImportOnCreate => lustre_cloud::TaskType::Import,
        };
        let tag = |key: &str| task.tags.get(key).map(String::as_str);
        let uid = ws.metadata.uid.as_deref().unwrap_or_default();
        lustre_cloud::naming::owner_uid(&task.tags) == Some(uid)
            && task.task_type == Some(kind)
            && tag(tags::PURPOSE) == Some(self.purpose())
            && tag(tags::ATTEMPT) == Some(attempt)
    }

    /// One line on what its task did: lifecycle, counts, report and FSx's words.
    pub fn outcome(self, task: &lustre_cloud::DataTask) -> String {
        let (what, done) = match self {
            Self::ExportOnDelete => ("export", "exported"),
            Self::ImportOnCreate => ("import", "imported"),
        };
        let mut line = format!(
            "{what} {} {}: {} of {} files {done}, {} failed",
            task.id,
            task.lifecycle.as_str(),
            task.succeeded,
            task.total,
            task.failed
        );
        if let Some(report) = &task.report_path {
            line.push_str(&format!(" (report under {report})"));
        }
        if let Some(words) = &task.failure_message {
            line.push_str(&format!(": {}", lustre_cloud::redact(words)));
        }
        line
    }
}

/// A hook's task as observed (looked for only while it can run).
#[derive(Clone, Copy, Debug, Default)]
pub struct HookView<'a> {
    /// The FSx task of the current attempt.
    pub task: Option<&'a lustre_cloud::DataTask>,
    /// It has run longer than its timeout.
    pub overdue: bool,
    /// FSx refused to start it: its words.
    pub refused: Option<&'a str>,
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
    /// What the namespace's other workspaces of the class use before this one, when the
    /// class sets `namespaceLimits`.
    pub budget: Option<&'a budget::Budget>,
    /// The pods that use the claim (for an idle expiry).
    pub pods: expiry::Pods,
    /// The time the decision is made at (expiry deadlines).
    pub now: jiff::Timestamp,
}

impl<'a> AwsView<'a> {
    /// The associations of the observed file system (none without one).
    pub fn associations_of_file_system(&self) -> Vec<&'a DataRepositoryAssociation> {
        let associations = self.associations;
        match self.file_system {
            Some(fs) => associations
                .iter()
                .filter(|a| a.file_system_id == fs.id)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The association of the observed file system that is what `repository` asks for.
    pub fn association_for(
        &self,
        repository: &lustre_api::DataRepository,
    ) -> Option<&'a DataRepositoryAssociation> {
        self.associations_of_file_system()
            .into_iter()
            .find(|a| same_link(a, repository))
    }
}

impl<'a> ClassLookup<'a> {
    /// The class, when there is one.
    pub fn found(self) -> Option<&'a LustreWorkspaceClass> {
        match self {
            Self::Found(c) => Some(c),
            Self::Missing(_) | Self::NoDefault => None,
        }
    }
}
