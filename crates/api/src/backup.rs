//! `LustreWorkspaceBackup`: an FSx backup of a workspace's file system, declared like any
//! other object, and what a workspace restores from (`spec.source`).

// Each `printcolumn(...)` repeats keys such as `type_ = "string"`: clippy reads the
// repetition as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;
use crate::workspace::DeletionPolicy;

/// A backup of a PERSISTENT_2 workspace's file system (FSx takes none of scratch file systems
/// or of file systems linked to S3). The operator starts it once (its token is the object's
/// UID), follows it with one batched DescribeBackups per poll for every backup under way, and
/// deletes it with the object unless `deletionPolicy` is Retain. A workspace restores it with
/// `spec.source.backupName`. A workspace deleted with `finalBackupOnDelete` leaves its final
/// backup as one of these objects (`finalBackup: true`, kept by default).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "workspaces.lustre.dev",
    version = "v1alpha1",
    kind = "LustreWorkspaceBackup",
    plural = "lustreworkspacebackups",
    singular = "lustreworkspacebackup",
    shortname = "lwb",
    category = "lustre",
    namespaced,
    status = "LustreWorkspaceBackupStatus",
    derive = "PartialEq",
    derive = "Default",
    cel,
    doc = "An FSx backup of a workspace's FSx for Lustre file system, restorable into a new workspace.",
    printcolumn(
        name = "Workspace",
        type_ = "string",
        json_path = ".spec.workspace",
        description = "The workspace backed up"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Creating, Available, Failed or Deleting"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress",
        description = "How far FSx is with the backup"
    ),
    printcolumn(
        name = "Capacity",
        type_ = "integer",
        json_path = ".status.storageCapacityGiB",
        description = "GiB a restore must ask for (the backed-up file system's capacity)"
    ),
    printcolumn(
        name = "Backup",
        type_ = "string",
        json_path = ".status.backupId",
        priority = 1,
        description = "The FSx backup id"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(rules::BACKUP_IMMUTABLE).message(rules::BACKUP_IMMUTABLE_MSG))]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceBackupSpec {
    /// The workspace, in this namespace, whose file system is backed up: PERSISTENT_2, with no
    /// `dataRepositories`. Immutable.
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub workspace: String,

    /// What deleting this object does to the FSx backup: Delete (the default) deletes it,
    /// Retain keeps it in AWS (restorable by `backupId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Set by the operator on the object it makes for a workspace's final backup
    /// (`finalBackupOnDelete`): such an object starts no backup, it follows the one the
    /// file system's deletion takes. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_backup: Option<bool>,
}

/// Where a backup is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum BackupPhase {
    /// Waiting: for its workspace, or for the file system's backup under way.
    Pending,
    /// FSx is taking it (PENDING, CREATING, TRANSFERRING).
    Creating,
    /// Done: it can be restored.
    Available,
    /// Refused, or FSx failed it; see the message and conditions.
    Failed,
    /// The object is being deleted and the backup with it.
    Deleting,
}

impl BackupPhase {
    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Creating => "Creating",
            Self::Available => "Available",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }
}

/// What the operator did with the backup.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceBackupStatus {
    /// Pending, Creating, Available, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// Why it is where it is, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready (True once restorable) and Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The FSx backup id (backup-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The file system backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_id: Option<String>,
    /// FSx's lifecycle of the backup (PENDING, CREATING, TRANSFERRING, AVAILABLE, FAILED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// How far FSx is (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_percent: Option<i32>,
    /// `N%`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The backup's size in bytes, as FSx reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// The backed-up file system's capacity: a restore asks for exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "storageCapacityGiB")]
    pub storage_capacity_gib: Option<i32>,
    /// When FSx started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// The AWS region it is in (left out: the operator's default region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The backup a workspace's file system is restored from (CreateFileSystemFromBackup).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new(rules::SOURCE_ONE).message(rules::SOURCE_ONE_MSG),
    validation = Rule::new(rules::SOURCE_NAMESPACE).message(rules::SOURCE_NAMESPACE_MSG).field_path(".backupNamespace"),
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSource {
    /// A `LustreWorkspaceBackup` (in `backupNamespace`, by default this namespace) that is
    /// Available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = patterns::DNS_SUBDOMAIN))]
    pub backup_name: Option<String>,
    /// The namespace of `backupName`, where the class's `restore.fromNamespaces` allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub backup_namespace: Option<String>,
    /// An FSx backup id: one this operator took for this namespace (a final backup or a
    /// retained one), or for a namespace the class's `restore.fromNamespaces` allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 15, max = 128), regex(pattern = patterns::BACKUP_ID))]
    pub backup_id: Option<String>,
}

/// Which backups a class's workspaces may restore besides their own namespace's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePolicy {
    /// Namespaces whose backups the class's workspaces may restore (`*`: every namespace).
    /// A namespace's own backups are always restorable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63)))]
    pub from_namespaces: Vec<String>,
}

impl RestorePolicy {
    /// Whether a workspace may restore a backup taken in namespace `from`.
    pub fn allows(policy: Option<&Self>, workspace_namespace: &str, from: &str) -> bool {
        from == workspace_namespace
            || policy.is_some_and(|p| p.from_namespaces.iter().any(|n| n == "*" || n == from))
    }
}
