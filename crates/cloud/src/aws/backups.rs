//! FSx backups: take, describe, delete, restore; and the conversion of their shapes.

use std::time::SystemTime;

use aws_sdk_fsx::types as fsx;

use super::errors::carried;
use super::fsx::{file_system_from, lustre_configuration, storage_of, tags_from, tags_to};
use super::{AwsCloud, all_pages, in_chunks};
use crate::backups::*;
use crate::error::CloudResult;
use crate::types::{DeploymentType, FileSystem, FileSystemRequest};

const SERVICE: &str = "fsx";
/// DescribeBackups takes at most 50 backup ids, and a filter at most 20 values.
const MAX_BACKUP_IDS: usize = 50;
const MAX_FILTER_VALUES: usize = 20;

pub(crate) fn backup_from(b: &fsx::Backup) -> Backup {
    let fs = b.file_system();
    let deployment = fs
        .and_then(|f| f.lustre_configuration())
        .and_then(|l| l.deployment_type())
        .map(|d| d.as_str());
    Backup {
        id: b.backup_id().unwrap_or_default().to_string(),
        file_system_id: fs
            .and_then(|f| f.file_system_id())
            .unwrap_or_default()
            .to_string(),
        lifecycle: BackupLifecycle::parse(b.lifecycle().map(|l| l.as_str()).unwrap_or("")),
        progress_percent: b.progress_percent(),
        size_bytes: b.size_in_bytes(),
        storage_capacity_gib: fs.and_then(|f| f.storage_capacity()).unwrap_or_default(),
        deployment_type: match deployment {
            Some("PERSISTENT_2") => DeploymentType::Persistent2,
            Some("SCRATCH_2") => DeploymentType::Scratch2,
            _ => DeploymentType::Other,
        },
        backup_type: b.r#type().map(|t| t.as_str()).unwrap_or("").to_string(),
        created_at: b
            .creation_time()
            .and_then(|t| SystemTime::try_from(*t).ok()),
        failure_message: b
            .failure_details()
            .and_then(|d| d.message())
            .map(str::to_string),
        tags: tags_from(b.tags()),
    }
}

#[async_trait::async_trait]
impl crate::Backups for AwsCloud {
    async fn create_backup(&self, r: &BackupRequest) -> CloudResult<Backup> {
        const OP: &str = "CreateBackup";
        let sent = self
            .fsx
            .create_backup()
            .client_request_token(&r.client_token)
            .file_system_id(&r.file_system_id)
            .set_tags(Some(tags_to(&self.tagged(&r.tags))))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "backup", out.backup(), backup_from)
        })
    }

    /// 50 ids a call (a chunk holding an id that no longer exists is asked again id by id).
    async fn describe_backups(&self, ids: &[String]) -> CloudResult<Vec<Backup>> {
        in_chunks(ids, MAX_BACKUP_IDS, |chunk| {
            self.describe_backup_pages(chunk, None)
        })
        .await
    }

    async fn backups_of(&self, file_system_ids: &[String]) -> CloudResult<Vec<Backup>> {
        in_chunks(file_system_ids, MAX_FILTER_VALUES, |chunk| {
            self.describe_backup_pages(&[], Some(chunk))
        })
        .await
    }

    async fn delete_backup(&self, id: &str) -> CloudResult<()> {
        const OP: &str = "DeleteBackup";
        let sent = self.fsx.delete_backup().backup_id(id).send().await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }
}

impl AwsCloud {
    /// CreateFileSystemFromBackup: the request's settings override the backup's.
    pub(crate) async fn restore(
        &self,
        r: &FileSystemRequest,
        backup_id: &str,
    ) -> CloudResult<FileSystem> {
        const OP: &str = "CreateFileSystemFromBackup";
        let (storage_type, capacity) = storage_of(r);
        let sent = self
            .fsx
            .create_file_system_from_backup()
            .backup_id(backup_id)
            .client_request_token(&r.client_token)
            .storage_type(storage_type)
            .set_storage_capacity(capacity)
            .subnet_ids(&r.subnet_id)
            .set_security_group_ids(Some(r.security_group_ids.clone()))
            .set_kms_key_id(r.kms_key_id.clone())
            .file_system_type_version(&r.file_system_type_version)
            .set_tags(Some(tags_to(&self.tagged(&r.tags))))
            .lustre_configuration(lustre_configuration(r))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "file system", out.file_system(), file_system_from)
        })
    }

    /// One DescribeBackups, by ids or by a file-system-id filter, page by page.
    async fn describe_backup_pages(
        &self,
        ids: &[String],
        file_systems: Option<&[String]>,
    ) -> CloudResult<Vec<Backup>> {
        const OP: &str = "DescribeBackups";
        let filter = file_systems.map(|values| {
            fsx::Filter::builder()
                .name(fsx::FilterName::FileSystemId)
                .set_values(Some(values.to_vec()))
                .build()
        });
        all_pages(|token| {
            let filter = filter.clone();
            async move {
                let sent = self
                    .fsx
                    .describe_backups()
                    .set_backup_ids((!ids.is_empty()).then(|| ids.to_vec()))
                    .set_filters(filter.map(|f| vec![f]))
                    .set_next_token(token)
                    .send()
                    .await;
                let out = self.answer(SERVICE, OP, sent, Ok)?;
                let next = out.next_token().map(str::to_string);
                Ok((out.backups().iter().map(backup_from).collect(), next))
            }
        })
        .await
    }
}
