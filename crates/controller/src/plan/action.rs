//! The steps a reconcile can take, and what each one is: its name in logs, errors and kill
//! points, its message, its Event reason, whether it changes anything, is announced, lets the
//! reconcile go on, or stops the workspace until a person acts. Every property is one
//! exhaustive `match` over [`Action`] (no `_ =>`): a new step does not compile until each is
//! written.

use lustre_api::Violation;
use lustre_api::constants::reason;
use lustre_api::validation::summarize;
use lustre_cloud::{
    AssociationUpdate, DataRepositoryRequest, DataTaskRequest, FileSystemRequest, FileSystemUpdate,
    IngressRule, S3Event,
};

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
    /// The volume is not Available yet (kube-controller-manager's binder has not seen it):
    /// the claim is made after.
    VolumeAvailable,
    /// The claim is not Bound yet.
    ClaimBinding,
    /// The claim is deleting but pods still use it (pvc-protection).
    ClaimInUse,
    /// The export before deletion runs (or is being canceled).
    Exporting,
    /// The import of newly linked data runs.
    Importing,
    /// Data tasks still run on the file system being deleted.
    TasksRunning,
    /// `placement: MatchPods`: no pod using the claim has been scheduled yet.
    FirstPod,
    /// `source`: the backup to restore is not there, or not AVAILABLE, yet.
    SourceBackup,
    /// Deleting: claims of shares in other namespaces are still there (pods use them).
    SharesReleased,
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
    /// The class's namespace limits leave no room for the workspace (or its growth): it
    /// waits, with no AWS call, until room frees up.
    OverBudget(String),
    /// The claim name is taken by a claim the workspace does not own.
    ClaimConflict(String),
    /// Mark the file system as adopted by this workspace (one adopter at a time).
    TagAdopted { arn: String },
    /// Look up a subnet's VPC and zone.
    LookUpSubnet { subnet_id: String },
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
    /// Import the listing of newly linked S3 prefixes (`importMetadataOnCreate`).
    StartImport(Box<DataTaskRequest>),
    /// That import failed: needs a person.
    ImportFailed(String),
    /// Change a link's automatic import / export events in place.
    UpdateAssociation {
        id: String,
        update: AssociationUpdate,
    },
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
    /// The workspace's expiry passed: delete the workspace itself (cleanup follows).
    Expire(String),
    /// Nothing to do until something moves.
    Wait(Wait),
    /// Everything is in place.
    Ready,
    // Deletion.
    /// Delete the claim.
    DeleteClaim,
    /// Delete the PersistentVolume.
    DeleteVolume,
    /// Start the export before deletion.
    StartExport(Box<DataTaskRequest>),
    /// Cancel the export before deletion: it ran longer than its timeout (minutes).
    CancelExport { id: String, minutes: i32 },
    /// The export before deletion failed and the policy is Block: the deletion stops here.
    ExportFailed(String),
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

/// What sort of step an [`Action`] is; decides its Events, the finalizer and whether the
/// reconcile goes on after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stops the workspace until a person acts.
    Stop(Stopped),
    /// Reads AWS and goes on (its reason names the part it prepares, for a Warning when it
    /// fails).
    Look(&'static str),
    /// Changes something in AWS: a Normal Event of this reason when it succeeds; `continues`
    /// when its result is known locally and nothing waits on AWS.
    Aws {
        reason: &'static str,
        continues: bool,
    },
    /// Writes a Kubernetes object the operator owns (visible itself and in the conditions: no
    /// Event on success) and goes on.
    Kube(&'static str),
    /// Deletes the workspace itself: a Normal Event of this reason; the reconcile ends.
    Ends(&'static str),
    /// Waits, or is done: nothing to carry out.
    Idle,
}

/// A step that stops the workspace until a person acts: the Ready condition's reason (also
/// the reason of the Warning Event that goes with it) and message, which says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub reason: &'static str,
    pub message: String,
}

/// How the poller follows a workspace's file system after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Described every pending interval: AWS is moving it (creating, updating, deleting,
    /// associations changing).
    EveryInterval,
    /// Ready, or failed in a way only a person can fix: drift checks only.
    DriftOnly,
    /// Left as the step that acted set it (a create or delete registers it itself).
    AsBefore,
}

/// When a workspace is looked at again without a watch or the poller waking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// After this many claim re-check intervals (a wait on Kubernetes).
    Claim(u32),
    /// After the pending poll interval (a wait on an FSx task).
    Tasks,
}

/// What happens after a reconcile that ended on a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    /// When to look again on its own; `None`: when a watch or the poller wakes the
    /// workspace (spec, class, claim, namespace, AWS).
    pub recheck: Option<Recheck>,
    /// How the poller follows the file system.
    pub poll: Poll,
}

impl Action {
    /// A spec refused for one reason the plan found (one the schema cannot see).
    pub fn invalid(field: &str, message: String) -> Self {
        Self::Invalid(vec![Violation {
            field: field.into(),
            message,
        }])
    }

    /// The step's name (its variant's) and its kind: the one table of what every step is.
    fn traits(&self) -> (&'static str, Kind) {
        use super::event_reason as ev;
        let aws = |reason, continues| Kind::Aws { reason, continues };
        let stop = |reason, message| Kind::Stop(Stopped { reason, message });
        match self {
            Self::ClassMissing(name) if name.is_empty() => (
                "ClassMissing",
                stop(
                    reason::CLASS_NOT_FOUND,
                    "no className given and no LustreWorkspaceClass is marked default".into(),
                ),
            ),
            Self::ClassMissing(name) => (
                "ClassMissing",
                stop(
                    reason::CLASS_NOT_FOUND,
                    format!("LustreWorkspaceClass {name} does not exist"),
                ),
            ),
            Self::NamespaceNotAllowed { .. } => (
                "NamespaceNotAllowed",
                stop(reason::NAMESPACE_NOT_ALLOWED, self.describe()),
            ),
            Self::Invalid(v) => ("Invalid", stop(reason::INVALID_SPEC, summarize(v))),
            Self::AdoptionRefused(m) => {
                ("AdoptionRefused", stop(reason::ADOPTION_REFUSED, m.clone()))
            }
            Self::OverBudget(m) => ("OverBudget", stop(reason::OVER_BUDGET, m.clone())),
            Self::ClaimConflict(_) => (
                "ClaimConflict",
                stop(reason::CLAIM_CONFLICT, self.describe()),
            ),
            Self::FileSystemFailed(m) => (
                "FileSystemFailed",
                stop(reason::FILE_SYSTEM_FAILED, m.clone()),
            ),
            Self::AssociationFailed { name, message } => (
                "AssociationFailed",
                stop(reason::DATA_REPOSITORY_FAILED, format!("{name}: {message}")),
            ),
            Self::ExportFailed(m) => ("ExportFailed", stop(reason::EXPORT_FAILED, m.clone())),
            Self::ImportFailed(_) => ("ImportFailed", stop(reason::IMPORT_FAILED, self.describe())),
            Self::StartImport(_) => ("StartImport", aws(ev::IMPORTING, false)),
            Self::TagAdopted { .. } => ("TagAdopted", aws(ev::ADOPTING, true)),
            Self::LookUpSubnet { .. } => ("LookUpSubnet", Kind::Look(ev::CREATING_SECURITY_GROUP)),
            Self::CreateSecurityGroup { .. } => (
                "CreateSecurityGroup",
                aws(ev::CREATING_SECURITY_GROUP, true),
            ),
            Self::AuthorizeRules { .. } => ("AuthorizeRules", aws(ev::OPENING_LUSTRE_PORTS, true)),
            Self::CreateFileSystem(_) => ("CreateFileSystem", aws(ev::CREATING_FILE_SYSTEM, false)),
            Self::UpdateFileSystem { .. } => {
                ("UpdateFileSystem", aws(ev::UPDATING_FILE_SYSTEM, false))
            }
            Self::DeleteAssociations(_) => ("DeleteAssociations", aws(ev::UNLINKING, false)),
            Self::CreateAssociations(_) => ("CreateAssociations", aws(ev::LINKING, false)),
            Self::UpdateAssociation { .. } => ("UpdateAssociation", aws(ev::UPDATING_LINK, false)),
            Self::ApplyStorageClass => ("ApplyStorageClass", Kind::Kube(ev::CREATING_VOLUME)),
            Self::ApplyVolume => ("ApplyVolume", Kind::Kube(ev::CREATING_VOLUME)),
            Self::ApplyClaim => ("ApplyClaim", Kind::Kube(ev::CREATING_VOLUME)),
            Self::Expire(_) => ("Expire", Kind::Ends(ev::EXPIRED)),
            Self::Wait(_) => ("Wait", Kind::Idle),
            Self::Ready => ("Ready", Kind::Idle),
            Self::DeleteClaim => ("DeleteClaim", Kind::Kube(ev::DELETING_VOLUME)),
            Self::DeleteVolume => ("DeleteVolume", Kind::Kube(ev::DELETING_VOLUME)),
            Self::StartExport(_) => ("StartExport", aws(ev::EXPORTING, false)),
            Self::CancelExport { .. } => ("CancelExport", aws(ev::EXPORT_TIMED_OUT, false)),
            Self::TagRetained { .. } => ("TagRetained", aws(ev::RETAINED, true)),
            Self::UntagAdopted { .. } => ("UntagAdopted", aws(ev::RELEASING, true)),
            Self::DeleteFileSystem { .. } => {
                ("DeleteFileSystem", aws(ev::DELETING_FILE_SYSTEM, true))
            }
            Self::DeleteSecurityGroup { .. } => (
                "DeleteSecurityGroup",
                aws(ev::DELETING_SECURITY_GROUP, true),
            ),
            Self::Finished => ("Finished", Kind::Idle),
        }
    }

    /// The step's name in logs, errors and kill points: its variant's name.
    pub fn step(&self) -> &'static str {
        self.traits().0
    }

    /// What sort of step it is.
    pub fn kind(&self) -> Kind {
        self.traits().1
    }

    /// The reason of its Events.
    pub fn event_reason(&self) -> &'static str {
        match self.kind() {
            Kind::Stop(Stopped { reason, .. })
            | Kind::Look(reason)
            | Kind::Kube(reason)
            | Kind::Aws { reason, .. }
            | Kind::Ends(reason) => reason,
            Kind::Idle => super::event_reason::RECONCILED,
        }
    }

    /// Changes something in AWS or Kubernetes (the finalizer goes on before the first).
    pub fn changes(&self) -> bool {
        matches!(self.kind(), Kind::Aws { .. } | Kind::Kube(_))
    }

    /// Recorded as a Normal Event when it succeeds: what changes in AWS. The Kubernetes
    /// objects the operator writes are visible themselves and in the conditions; an Event
    /// each would double the writes of a workspace for no news.
    pub fn announced(&self) -> bool {
        matches!(self.kind(), Kind::Aws { .. } | Kind::Ends(_))
    }

    /// Never waits and its result is known locally: the reconcile goes on.
    pub fn continues(&self) -> bool {
        match self.kind() {
            Kind::Look(_) | Kind::Kube(_) => true,
            Kind::Aws { continues, .. } => continues,
            Kind::Stop(_) | Kind::Ends(_) | Kind::Idle => false,
        }
    }

    /// For a step that stops the workspace until a person acts: its reason and message.
    pub fn stopped(&self) -> Option<Stopped> {
        match self.kind() {
            Kind::Stop(stopped) => Some(stopped),
            Kind::Look(_) | Kind::Aws { .. } | Kind::Kube(_) | Kind::Ends(_) | Kind::Idle => None,
        }
    }

    /// What happens after a reconcile that ended on this step.
    pub fn after(&self) -> After {
        let recheck = |n| After {
            recheck: Some(Recheck::Claim(n)),
            poll: Poll::AsBefore,
        };
        let poll = |poll| After {
            recheck: None,
            poll,
        };
        match self {
            Self::Wait(Wait::VolumeAvailable | Wait::ClaimBinding) => recheck(1),
            // The volume was deleted but a finalizer still holds it (pv-protection): the
            // volumes' watch wakes the workspace when it goes.
            Self::DeleteVolume => recheck(1),
            Self::Wait(Wait::ClaimInUse | Wait::SharesReleased) => recheck(5),
            // FSx tasks (and a source backup) are not followed by the poller: looked at every
            // pending interval.
            Self::Wait(
                Wait::Exporting | Wait::Importing | Wait::TasksRunning | Wait::SourceBackup,
            )
            | Self::StartExport(_)
            | Self::CancelExport { .. }
            | Self::StartImport(_) => After {
                recheck: Some(Recheck::Tasks),
                poll: Poll::AsBefore,
            },
            Self::Wait(
                Wait::FileSystemCreating
                | Wait::FileSystemUpdating
                | Wait::FileSystemDeleting
                | Wait::Associations,
            ) => poll(Poll::EveryInterval),
            // The claims' watch wakes the workspace when the scheduler names a node.
            Self::Wait(Wait::FirstPod) => poll(Poll::AsBefore),
            Self::Ready
            | Self::FileSystemFailed(_)
            | Self::AssociationFailed { .. }
            | Self::ImportFailed(_) => poll(Poll::DriftOnly),
            // Woken by a watch (spec, class, claim, namespace) or by the poller (a step that
            // set AWS moving registered its file system itself).
            Self::ClassMissing(_)
            | Self::NamespaceNotAllowed { .. }
            | Self::Invalid(_)
            | Self::AdoptionRefused(_)
            | Self::OverBudget(_)
            | Self::ClaimConflict(_)
            | Self::TagAdopted { .. }
            | Self::LookUpSubnet { .. }
            | Self::CreateSecurityGroup { .. }
            | Self::AuthorizeRules { .. }
            | Self::CreateFileSystem(_)
            | Self::UpdateFileSystem { .. }
            | Self::DeleteAssociations(_)
            | Self::CreateAssociations(_)
            | Self::UpdateAssociation { .. }
            | Self::ApplyStorageClass
            | Self::ApplyVolume
            | Self::ApplyClaim
            | Self::DeleteClaim
            | Self::TagRetained { .. }
            | Self::UntagAdopted { .. }
            | Self::DeleteFileSystem { .. }
            | Self::DeleteSecurityGroup { .. }
            | Self::ExportFailed(_)
            | Self::Expire(_)
            | Self::Finished => poll(Poll::AsBefore),
        }
    }

    /// One line for logs and Events.
    pub fn describe(&self) -> String {
        match self {
            Self::ClassMissing(name) if name.is_empty() => {
                "no class named and no default class".into()
            }
            Self::ClassMissing(name) => format!("class {name} not found"),
            Self::NamespaceNotAllowed { class, namespace } => format!(
                "class {class} does not admit namespace {namespace} (its allowedNamespaces selector does not match the namespace's labels): no AWS change is made until it does; the file system and its data are kept"
            ),
            Self::Invalid(v) => format!("invalid spec: {}", summarize(v)),
            Self::AdoptionRefused(m) => format!("adoption refused: {m}"),
            Self::OverBudget(m) => format!("over budget: {m}"),
            Self::ClaimConflict(name) => format!(
                "claim {name} already exists and is not this workspace's: the operator will not take it over; delete that claim, or create the workspace again with another spec.claimName"
            ),
            Self::LookUpSubnet { subnet_id } => {
                format!("looking up the VPC and zone of {subnet_id}")
            }
            Self::CreateSecurityGroup { vpc_id } => {
                format!("creating the security group in {vpc_id}")
            }
            Self::AuthorizeRules { group_id, rules } => {
                format!("opening {} Lustre rule(s) on {group_id}", rules.len())
            }
            Self::CreateFileSystem(r) => {
                format!("creating a {} GiB file system", r.storage_capacity_gib)
            }
            Self::UpdateFileSystem { id, update } => format!("updating {id}: {update:?}"),
            Self::DeleteAssociations(ids) => format!("unlinking {}", ids.join(", ")),
            Self::CreateAssociations(r) => format!(
                "linking {}",
                r.iter()
                    .map(|r| format!("{} at {}", r.data_repository_path, r.file_system_path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::UpdateAssociation { id, update } => format!(
                "updating {id} in place: autoImport {}, autoExport {}",
                events(&update.auto_import),
                events(&update.auto_export)
            ),
            Self::FileSystemFailed(m) => format!("file system failed: {m}"),
            Self::AssociationFailed { name, message } => {
                format!("data repository {name} failed: {message}")
            }
            Self::ApplyStorageClass => "applying the StorageClass".into(),
            Self::ApplyVolume => "applying the PersistentVolume".into(),
            Self::ApplyClaim => "creating the PersistentVolumeClaim".into(),
            Self::Wait(w) => format!("waiting: {w:?}"),
            Self::Ready => "ready".into(),
            Self::Expire(m) => m.clone(),
            Self::DeleteClaim => "deleting the claim".into(),
            Self::DeleteVolume => "deleting the PersistentVolume".into(),
            Self::StartExport(r) => format!(
                "exporting {} to S3 before the file system is deleted",
                super::export::paths(r)
            ),
            Self::CancelExport { id, minutes } => format!(
                "canceling export {id}: it ran longer than deletionExport.timeoutMinutes ({minutes})"
            ),
            Self::ExportFailed(m) => format!("export before deletion failed: {m}"),
            Self::StartImport(r) => format!(
                "importing the listing of {} (importMetadataOnCreate)",
                r.paths.join(", ")
            ),
            Self::ImportFailed(m) => super::import::failure(m),
            Self::TagRetained { arn } => format!("tagging {arn} as retained"),
            Self::TagAdopted { arn } => format!("marking {arn} as adopted by this workspace"),
            Self::UntagAdopted { arn } => {
                format!("taking this workspace's adopter mark off {arn}")
            }
            Self::DeleteFileSystem {
                id,
                final_backup: true,
            } => format!("deleting {id} after a final backup"),
            Self::DeleteFileSystem { id, .. } => format!("deleting {id}"),
            Self::DeleteSecurityGroup { id } => format!("deleting security group {id}"),
            Self::Finished => "cleanup finished".into(),
        }
    }
}

/// Automatic import or export events as a step names them.
fn events(e: &Option<Vec<S3Event>>) -> String {
    match e {
        Some(e) => format!(
            "[{}]",
            e.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
        ),
        None => "unchanged".into(),
    }
}
