//! FSx backups in the cloud layer's words: what the controller asks FSx to keep of a
//! persistent file system, and what it observes of a backup while FSx makes it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::types::{DeploymentType, Tags};

/// How to delete a file system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSystemDeletion {
    /// Take a final backup first (PERSISTENT types), tagged with these tags.
    pub final_backup_tags: Option<Tags>,
}

/// A backup to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRequest {
    /// Idempotency token (from the object that asked for the backup).
    pub client_token: String,
    /// The file system.
    pub file_system_id: String,
    /// Tags, including the operator's identity tags (given tags replace the ones
    /// `CopyTagsToBackups` would copy).
    pub tags: Tags,
}

/// Where a backup is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackupLifecycle {
    /// Accepted, not started (user-initiated Lustre backups).
    Pending,
    /// FSx is taking it.
    Creating,
    /// FSx is moving it to S3 (user-initiated Lustre backups).
    Transferring,
    /// Done: it can be restored.
    Available,
    /// Copied from another region or account.
    Copying,
    /// It failed: see the failure message.
    Failed,
    /// Deleted.
    Deleted,
    /// A word this product does not know.
    Other(String),
}

impl BackupLifecycle {
    /// From FSx's word.
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "CREATING" => Self::Creating,
            "TRANSFERRING" => Self::Transferring,
            "AVAILABLE" => Self::Available,
            "COPYING" => Self::Copying,
            "FAILED" => Self::Failed,
            "DELETED" => Self::Deleted,
            other => Self::Other(other.to_string()),
        }
    }

    /// FSx's word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Creating => "CREATING",
            Self::Transferring => "TRANSFERRING",
            Self::Available => "AVAILABLE",
            Self::Copying => "COPYING",
            Self::Failed => "FAILED",
            Self::Deleted => "DELETED",
            Self::Other(s) => s,
        }
    }

    /// AVAILABLE, FAILED or DELETED: it will not change on its own again.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Available | Self::Failed | Self::Deleted)
    }
}

/// An observed backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// backup-...
    pub id: String,
    /// The file system it was taken of (which may be gone since).
    pub file_system_id: String,
    /// Where it is.
    pub lifecycle: BackupLifecycle,
    /// How far FSx is (0–100), while it makes it.
    pub progress_percent: Option<i32>,
    /// Its size, once known.
    pub size_bytes: Option<i64>,
    /// The capacity of the file system it was taken of: a restore must ask for exactly this.
    pub storage_capacity_gib: i32,
    /// The deployment type of that file system.
    pub deployment_type: DeploymentType,
    /// USER_INITIATED, AUTOMATIC or AWS_BACKUP.
    pub backup_type: String,
    /// When FSx started it.
    pub created_at: Option<SystemTime>,
    /// AWS's failure details, verbatim.
    pub failure_message: Option<String>,
    /// Tags.
    pub tags: Tags,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in [
            "PENDING",
            "CREATING",
            "TRANSFERRING",
            "AVAILABLE",
            "COPYING",
            "FAILED",
            "DELETED",
        ] {
            assert_eq!(BackupLifecycle::parse(s).as_str(), s);
        }
        assert!(BackupLifecycle::parse("AVAILABLE").is_finished());
        assert!(!BackupLifecycle::parse("TRANSFERRING").is_finished());
        assert_eq!(
            BackupLifecycle::parse("NEW"),
            BackupLifecycle::Other("NEW".into())
        );
    }
}
