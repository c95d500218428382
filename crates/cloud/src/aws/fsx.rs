//! FSx calls and the conversion of FSx shapes into domain types.

use aws_sdk_fsx::types as fsx;

use super::errors::carried;
use super::lustre_shapes::{
    association_from, events_to, log_to, metadata_to, read_cache_to, root_squash_to,
};
pub(crate) use super::lustre_shapes::{file_system_from, tags_from, tags_to};
use super::{AwsCloud, all_pages, in_chunks};
use crate::backups::FileSystemDeletion;
use crate::error::{CloudResult, ErrorKind};
use crate::naming;
use crate::tasks::AssociationUpdate;
use crate::types::*;

/// DescribeFileSystems takes at most 50 ids.
const MAX_IDS_PER_DESCRIBE: usize = 50;
/// A filter takes at most 20 values.
const MAX_FILTER_VALUES: usize = 20;
/// DescribeDataRepositoryAssociations returns at most 25 a page.
const MAX_ASSOCIATIONS_PER_PAGE: i32 = 25;

const SERVICE: &str = "fsx";

/// The storage type, and the capacity to send (none for elastic Intelligent-Tiering).
pub(crate) fn storage_of(r: &FileSystemRequest) -> (fsx::StorageType, Option<i32>) {
    match r.tiering {
        Some(_) => (fsx::StorageType::IntelligentTiering, None),
        None => (fsx::StorageType::Ssd, Some(r.storage_capacity_gib)),
    }
}

/// The Lustre settings of a create (and of a restore, where they override the backup's).
pub(crate) fn lustre_configuration(
    r: &FileSystemRequest,
) -> fsx::CreateFileSystemLustreConfiguration {
    let deployment = match r.deployment_type {
        DeploymentType::Persistent2 => fsx::LustreDeploymentType::Persistent2,
        _ => fsx::LustreDeploymentType::Scratch2,
    };
    let mut lustre = fsx::CreateFileSystemLustreConfiguration::builder()
        .deployment_type(deployment)
        .data_compression_type(if r.lz4_compression {
            fsx::DataCompressionType::Lz4
        } else {
            fsx::DataCompressionType::None
        })
        .set_per_unit_storage_throughput(r.per_unit_storage_throughput)
        .set_weekly_maintenance_start_time(r.weekly_maintenance_start_time.clone());
    if r.deployment_type == DeploymentType::Persistent2 {
        lustre = lustre
            .set_automatic_backup_retention_days(r.automatic_backup_retention_days)
            .set_daily_automatic_backup_start_time(r.daily_automatic_backup_start_time.clone());
        if r.copy_tags_to_backups {
            lustre = lustre.copy_tags_to_backups(true);
        }
    }
    if let Some(m) = r.metadata {
        let (mode, iops) = metadata_to(m);
        let config = fsx::CreateFileSystemLustreMetadataConfiguration::builder()
            .mode(mode)
            .set_iops(iops)
            .build();
        lustre = lustre.metadata_configuration(config);
    }
    if r.efa {
        lustre = lustre.efa_enabled(true);
    }
    if let Some(t) = &r.tiering {
        lustre = lustre
            .throughput_capacity(t.throughput_capacity)
            .data_read_cache_configuration(read_cache_to(&t.read_cache));
    }
    lustre
        .set_root_squash_configuration(r.root_squash.as_ref().map(root_squash_to))
        .set_log_configuration(r.log.as_ref().map(log_to))
        .build()
}

#[async_trait::async_trait]
impl crate::FileSystems for AwsCloud {
    async fn create_file_system(&self, r: &FileSystemRequest) -> CloudResult<FileSystem> {
        if let Some(backup) = &r.backup_id {
            return self.restore(r, backup).await;
        }
        const OP: &str = "CreateFileSystem";
        // Intelligent-Tiering storage is elastic: no capacity is sent.
        let (storage_type, capacity) = storage_of(r);
        let sent = self
            .fsx
            .create_file_system()
            .client_request_token(&r.client_token)
            .file_system_type(fsx::FileSystemType::Lustre)
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

    /// Up to 50 ids ask for exactly those (one call); more, or an id that no longer exists
    /// (FSx then fails the whole call), list the region's file systems page by page and keep
    /// the asked-for ones.
    async fn describe_file_systems(&self, ids: &[String]) -> CloudResult<Vec<FileSystem>> {
        let mut found = Vec::new();
        self.describe_file_systems_each(ids, &mut |fs| found.push(fs))
            .await?;
        Ok(found)
    }

    async fn describe_file_systems_each(
        &self,
        ids: &[String],
        each: &mut (dyn FnMut(FileSystem) + Send),
    ) -> CloudResult<()> {
        if ids.is_empty() {
            return self.describe_pages(&[], &mut |fs| each(fs)).await;
        }
        if ids.len() <= MAX_IDS_PER_DESCRIBE {
            let mut found = Vec::new();
            match self.describe_pages(ids, &mut |fs| found.push(fs)).await {
                Ok(()) => {
                    found.into_iter().for_each(each);
                    return Ok(());
                }
                // Alone, FileSystemNotFound says it is gone.
                Err(e) if e.kind == ErrorKind::NotFound && ids.len() == 1 => return Ok(()),
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut listed: std::collections::HashSet<String> = std::collections::HashSet::new();
        // Each page hands on only the asked-for ones, once (a region's listing can be
        // thousands).
        self.describe_pages(&[], &mut |fs| {
            if wanted.contains(fs.id.as_str()) && listed.insert(fs.id.clone()) {
                each(fs);
            }
        })
        .await?;
        // A listing is no snapshot: FSx leaves the order across pages unspecified, and file
        // systems created or deleted between pages move the others, so one can be skipped.
        // Absent from the pages is not gone: each missing one is described by its id, and
        // only FileSystemNotFound says it is gone (a skip taken for gone would let a deleted
        // workspace finish without deleting its file system).
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        for id in missing {
            match self
                .describe_pages(std::slice::from_ref(&id), &mut |fs| each(fs))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn find_file_systems_by_owner(&self, uid: &str) -> CloudResult<Vec<FileSystem>> {
        self.describe_all_pages(&[], |fs| naming::owner_uid(&fs.tags) == Some(uid))
            .await
    }

    async fn update_file_system(&self, id: &str, u: &FileSystemUpdate) -> CloudResult<FileSystem> {
        const OP: &str = "UpdateFileSystem";
        let mut call = self
            .fsx
            .update_file_system()
            .file_system_id(id)
            .set_storage_capacity(u.storage_capacity_gib);
        let metadata = u.metadata.map(|m| {
            let (mode, iops) = metadata_to(m);
            fsx::UpdateFileSystemLustreMetadataConfiguration::builder()
                .mode(mode)
                .set_iops(iops)
                .build()
        });
        let lustre = fsx::UpdateFileSystemLustreConfiguration::builder()
            .set_per_unit_storage_throughput(u.per_unit_storage_throughput)
            .set_throughput_capacity(u.throughput_capacity)
            .set_metadata_configuration(metadata)
            .set_root_squash_configuration(u.root_squash.as_ref().map(root_squash_to))
            .set_log_configuration(u.log.as_ref().map(log_to))
            .build();
        if lustre != fsx::UpdateFileSystemLustreConfiguration::builder().build() {
            call = call.lustre_configuration(lustre);
        }
        let sent = call.send().await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "file system", out.file_system(), file_system_from)
        })
    }

    async fn delete_file_system(&self, id: &str, d: &FileSystemDeletion) -> CloudResult<()> {
        const OP: &str = "DeleteFileSystem";
        let lustre = match &d.final_backup_tags {
            Some(tags) => fsx::DeleteFileSystemLustreConfiguration::builder()
                .skip_final_backup(false)
                .set_final_backup_tags(Some(tags_to(&self.tagged(tags))))
                .build(),
            None => fsx::DeleteFileSystemLustreConfiguration::builder()
                .skip_final_backup(true)
                .build(),
        };
        let sent = self
            .fsx
            .delete_file_system()
            .file_system_id(id)
            .lustre_configuration(lustre)
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }

    async fn tag_resource(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        const OP: &str = "TagResource";
        let sent = self
            .fsx
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags_to(tags)))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        const OP: &str = "UntagResource";
        let sent = self
            .fsx
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }

    async fn create_data_repository_association(
        &self,
        r: &DataRepositoryRequest,
    ) -> CloudResult<DataRepositoryAssociation> {
        const OP: &str = "CreateDataRepositoryAssociation";
        let s3 = fsx::S3DataRepositoryConfiguration::builder()
            .auto_import_policy(
                fsx::AutoImportPolicy::builder()
                    .set_events(Some(events_to(&r.auto_import)))
                    .build(),
            )
            .auto_export_policy(
                fsx::AutoExportPolicy::builder()
                    .set_events(Some(events_to(&r.auto_export)))
                    .build(),
            )
            .build();
        let sent = self
            .fsx
            .create_data_repository_association()
            .client_request_token(&r.client_token)
            .file_system_id(&r.file_system_id)
            .file_system_path(&r.file_system_path)
            .data_repository_path(&r.data_repository_path)
            .batch_import_meta_data_on_create(r.batch_import_meta_data_on_create)
            .set_imported_file_chunk_size(r.imported_file_chunk_size_mib)
            .s3(s3)
            .set_tags(Some(tags_to(&self.tagged(&r.tags))))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "association", out.association(), association_from)
        })
    }

    /// Filters by up to 20 file systems a call (a chunk holding a file system that no longer
    /// exists is asked again one file system at a time).
    async fn describe_data_repository_associations(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataRepositoryAssociation>> {
        in_chunks(file_system_ids, MAX_FILTER_VALUES, |chunk| {
            self.describe_associations_of(chunk)
        })
        .await
    }

    async fn delete_data_repository_association(&self, id: &str) -> CloudResult<()> {
        const OP: &str = "DeleteDataRepositoryAssociation";
        let sent = self
            .fsx
            .delete_data_repository_association()
            .association_id(id)
            .delete_data_in_file_system(false)
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }

    async fn update_data_repository_association(
        &self,
        id: &str,
        u: &AssociationUpdate,
    ) -> CloudResult<DataRepositoryAssociation> {
        const OP: &str = "UpdateDataRepositoryAssociation";
        let mut s3 = fsx::S3DataRepositoryConfiguration::builder();
        if let Some(events) = &u.auto_import {
            s3 = s3.auto_import_policy(
                fsx::AutoImportPolicy::builder()
                    .set_events(Some(events_to(events)))
                    .build(),
            );
        }
        if let Some(events) = &u.auto_export {
            s3 = s3.auto_export_policy(
                fsx::AutoExportPolicy::builder()
                    .set_events(Some(events_to(events)))
                    .build(),
            );
        }
        let sent = self
            .fsx
            .update_data_repository_association()
            .association_id(id)
            .s3(s3.build())
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "association", out.association(), association_from)
        })
    }
}

impl AwsCloud {
    async fn describe_file_system_page(
        &self,
        ids: &[String],
        next_token: Option<String>,
    ) -> CloudResult<(Vec<FileSystem>, Option<String>)> {
        const OP: &str = "DescribeFileSystems";
        let mut call = self.fsx.describe_file_systems().set_next_token(next_token);
        if !ids.is_empty() {
            call = call.set_file_system_ids(Some(ids.to_vec()));
        }
        self.answer(SERVICE, OP, call.send().await, |out| {
            Ok((
                out.file_systems().iter().map(file_system_from).collect(),
                out.next_token().map(str::to_string),
            ))
        })
    }

    /// Every page of a DescribeFileSystems, each file system handed to `each` as its page
    /// arrives (not the whole region's listing at once).
    async fn describe_pages(
        &self,
        ids: &[String],
        each: &mut (dyn FnMut(FileSystem) + Send),
    ) -> CloudResult<()> {
        let mut token = None;
        loop {
            let (page, next) = self.describe_file_system_page(ids, token).await?;
            page.into_iter().for_each(&mut *each);
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// Every page of a DescribeFileSystems, keeping the file systems `keep` wants.
    async fn describe_all_pages(
        &self,
        ids: &[String],
        keep: impl Fn(&FileSystem) -> bool + Send + Sync,
    ) -> CloudResult<Vec<FileSystem>> {
        let mut all = Vec::new();
        self.describe_pages(ids, &mut |fs| {
            if keep(&fs) {
                all.push(fs);
            }
        })
        .await?;
        Ok(all)
    }

    async fn describe_associations_of(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataRepositoryAssociation>> {
        const OP: &str = "DescribeDataRepositoryAssociations";
        let filter = fsx::Filter::builder()
            .name(fsx::FilterName::FileSystemId)
            .set_values(Some(file_system_ids.to_vec()))
            .build();
        all_pages(|token| {
            let filter = filter.clone();
            async move {
                let sent = self
                    .fsx
                    .describe_data_repository_associations()
                    .filters(filter)
                    .max_results(MAX_ASSOCIATIONS_PER_PAGE)
                    .set_next_token(token)
                    .send()
                    .await;
                let out = self.answer(SERVICE, OP, sent, Ok)?;
                let next = out.next_token().map(str::to_string);
                Ok((
                    out.associations().iter().map(association_from).collect(),
                    next,
                ))
            }
        })
        .await
    }
}
