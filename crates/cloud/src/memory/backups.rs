//! The backups of the in-memory account: persistent file systems without links only, one at
//! a time per file system, restored only at the backup's capacity. A backup is PENDING until
//! [`MemoryCloud::advance`] makes it AVAILABLE.

use async_trait::async_trait;

use super::api::not_found;
use super::{Account, MemoryCloud, aws_error, replayed};
use crate::Backups;
use crate::backups::*;
use crate::error::CloudResult;
use crate::types::{DeploymentType, FileSystem, Lifecycle, Tags};

/// A backup of `fs` as FSx describes it once taken (AVAILABLE: final backups are complete
/// when the delete goes on).
pub(super) fn taken(id: String, fs: &FileSystem, tags: Tags) -> Backup {
    Backup {
        id,
        file_system_id: fs.id.clone(),
        lifecycle: BackupLifecycle::Available,
        progress_percent: Some(100),
        size_bytes: Some(0),
        storage_capacity_gib: fs.storage_capacity_gib,
        deployment_type: fs.deployment_type,
        backup_type: "USER_INITIATED".into(),
        created_at: Some(std::time::SystemTime::now()),
        failure_message: None,
        tags,
    }
}

/// A restore from `backup_id` at `capacity` GiB: the backup must be AVAILABLE and of that size.
pub(super) fn restorable(a: &Account, backup_id: &str, capacity: i32) -> CloudResult<()> {
    let op = "CreateFileSystemFromBackup";
    let b = a
        .backups
        .get(backup_id)
        .ok_or_else(|| not_found(op, "BackupNotFound", backup_id))?;
    if b.lifecycle != BackupLifecycle::Available {
        let message = format!("backup {backup_id} is {}", b.lifecycle.as_str());
        return Err(aws_error(op, "BadRequest", message));
    }
    if b.storage_capacity_gib != capacity {
        let message = format!(
            "StorageCapacity {capacity} must equal the backup's {}",
            b.storage_capacity_gib
        );
        return Err(aws_error(op, "BadRequest", message));
    }
    Ok(())
}

#[async_trait]
impl Backups for MemoryCloud {
    async fn create_backup(&self, r: &BackupRequest) -> CloudResult<Backup> {
        let op = "CreateBackup";
        let mut a = self.gate(op).await?;
        if let Some(id) = replayed(&a.backup_tokens, &r.client_token, r, op)?
            && let Some(b) = a.backups.get(&id)
        {
            return Ok(b.clone());
        }
        let fs_id = &r.file_system_id;
        let fs = a
            .file_systems
            .get(fs_id)
            .cloned()
            .ok_or_else(|| not_found(op, "FileSystemNotFound", fs_id))?;
        let linked = a
            .associations
            .values()
            .any(|d| d.file_system_id == *fs_id && d.lifecycle != Lifecycle::Deleting);
        if fs.deployment_type != DeploymentType::Persistent2 || linked {
            let message = format!("{fs_id}: only persistent file systems without links");
            return Err(aws_error(op, "BadRequest", message));
        }
        if let Some(b) = a
            .backups
            .values()
            .find(|b| b.file_system_id == *fs_id && !b.lifecycle.is_finished())
        {
            let message = format!("backup {} of {fs_id} is under way", b.id);
            return Err(aws_error(op, "BackupInProgress", message));
        }
        let id = a.id("backup");
        let mut backup = taken(id.clone(), &fs, r.tags.clone());
        backup.lifecycle = BackupLifecycle::Pending;
        backup.progress_percent = Some(0);
        a.backups.insert(id.clone(), backup.clone());
        a.backup_tokens
            .insert(r.client_token.clone(), (r.clone(), id));
        Ok(backup)
    }

    async fn describe_backups(&self, ids: &[String]) -> CloudResult<Vec<Backup>> {
        let a = self.gate("DescribeBackups").await?;
        Ok(ids
            .iter()
            .filter_map(|id| a.backups.get(id).cloned())
            .collect())
    }

    async fn backups_of(&self, file_system_ids: &[String]) -> CloudResult<Vec<Backup>> {
        let a = self.gate("DescribeBackups").await?;
        Ok(a.backups
            .values()
            .filter(|b| file_system_ids.contains(&b.file_system_id))
            .cloned()
            .collect())
    }

    async fn delete_backup(&self, id: &str) -> CloudResult<()> {
        let op = "DeleteBackup";
        let mut a = self.gate(op).await?;
        let b = a
            .backups
            .get(id)
            .ok_or_else(|| not_found(op, "BackupNotFound", id))?;
        if !b.lifecycle.is_finished() {
            return Err(aws_error(
                op,
                "BackupInProgress",
                format!("{id} is under way"),
            ));
        }
        a.backups.remove(id);
        Ok(())
    }
}
