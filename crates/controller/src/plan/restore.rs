//! A workspace restored from a backup (`spec.source`): the file system is made with
//! CreateFileSystemFromBackup once the backup is found, proven the namespace's to restore,
//! AVAILABLE, and of the spec's capacity (FSx restores a Lustre file system at its backup's
//! capacity only).

use std::ops::ControlFlow::{Break, Continue};

use lustre_cloud::{Backup, BackupLifecycle, DeploymentType, FileSystemRequest};

use super::{Action, Inputs, Wait};

/// What the look-up of the workspace's source found.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceBackup {
    /// The backup, proven to be the one the source names and restorable here.
    Found(Backup),
    /// Not yet: what the workspace waits for.
    Waiting(String),
    /// Never, as the spec and class stand: why.
    Refused(String),
}

/// Points the create at the source's backup, or says why it cannot be made yet.
pub(super) fn source(i: &Inputs, request: &mut FileSystemRequest) -> super::create::Plan<()> {
    if i.workspace.spec.source.is_none() {
        return Continue(());
    }
    let backup = match i.aws.source {
        Some(SourceBackup::Found(b)) => b,
        Some(SourceBackup::Refused(why)) => {
            return Break(Action::invalid("spec.source", why.clone()));
        }
        Some(SourceBackup::Waiting(_)) | None => return Break(Action::Wait(Wait::SourceBackup)),
    };
    if backup.lifecycle != BackupLifecycle::Available {
        return Break(Action::Wait(Wait::SourceBackup));
    }
    if backup.deployment_type != DeploymentType::Persistent2 {
        return Break(Action::invalid(
            "spec.source",
            format!("backup {} is not of a PERSISTENT_2 file system", backup.id),
        ));
    }
    if backup.storage_capacity_gib != request.storage_capacity_gib {
        return Break(Action::invalid(
            "spec.storageCapacityGiB",
            format!(
                "backup {} holds a {} GiB file system: FSx restores it at exactly that size, so set storageCapacityGiB: {} (grow it after the restore)",
                backup.id, backup.storage_capacity_gib, backup.storage_capacity_gib
            ),
        ));
    }
    request.backup_id = Some(backup.id.clone());
    Continue(())
}

/// What a workspace waiting for its source says (`FileSystemReady`).
pub fn source_wait(i: &Inputs) -> String {
    match i.aws.source {
        Some(SourceBackup::Waiting(why)) => why.clone(),
        Some(SourceBackup::Found(b)) => format!(
            "waiting for backup {} to be AVAILABLE (it is {}, {}%)",
            b.id,
            b.lifecycle.as_str(),
            b.progress_percent.unwrap_or(0)
        ),
        _ => "looking up the backup to restore".to_string(),
    }
}

/// What a workspace whose file system is being made says.
pub fn creating(request: &FileSystemRequest) -> String {
    match &request.backup_id {
        Some(b) => format!("restoring backup {b}"),
        None => "creating the file system".to_string(),
    }
}
