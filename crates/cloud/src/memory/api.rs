//! The [`crate::Cloud`] calls of the in-memory account.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MemoryCloud, aws_error, fs_groups, overlaps, replayed};
use crate::backups::FileSystemDeletion;
use crate::error::{CloudError, CloudResult};
use crate::naming;
use crate::tasks::*;
use crate::types::*;
use crate::{FileSystems, Networking};

pub(super) fn not_found(operation: &'static str, code: &str, id: &str) -> CloudError {
    aws_error(operation, code, format!("{id} does not exist"))
}

#[async_trait]
impl Networking for MemoryCloud {
    async fn subnet(&self, subnet_id: &str) -> CloudResult<Subnet> {
        let a = self.gate("DescribeSubnets").await?;
        a.subnets
            .get(subnet_id)
            .map(|(vpc, zone)| Subnet {
                id: subnet_id.to_string(),
                vpc_id: vpc.clone(),
                availability_zone: zone.clone(),
            })
            .ok_or_else(|| not_found("DescribeSubnets", "InvalidSubnetID.NotFound", subnet_id))
    }

    async fn create_security_group(&self, request: &SecurityGroupRequest) -> CloudResult<String> {
        let op = "CreateSecurityGroup";
        let mut a = self.gate(op).await?;
        if a.groups
            .values()
            .any(|g| g.name == request.name && g.vpc_id == request.vpc_id)
        {
            let message = format!("The security group '{}' already exists", request.name);
            return Err(aws_error(op, "InvalidGroup.Duplicate", message));
        }
        let id = a.id("sg");
        let group = SecurityGroup {
            id: id.clone(),
            name: request.name.clone(),
            vpc_id: request.vpc_id.clone(),
            tags: request.tags.clone(),
            ingress: Vec::new(),
        };
        a.groups.insert(id.clone(), group);
        Ok(id)
    }

    async fn describe_security_groups(&self, ids: &[String]) -> CloudResult<Vec<SecurityGroup>> {
        let a = self.gate("DescribeSecurityGroups").await?;
        Ok(pick(&a.groups, ids))
    }

    async fn find_security_groups_by_owner(&self, uid: &str) -> CloudResult<Vec<SecurityGroup>> {
        let a = self.gate("DescribeSecurityGroups").await?;
        Ok(owned_by(&a.groups, uid, |g| &g.tags))
    }

    async fn authorize_ingress(&self, group_id: &str, rules: &[IngressRule]) -> CloudResult<()> {
        let op = "AuthorizeSecurityGroupIngress";
        let mut a = self.gate(op).await?;
        let group = a
            .groups
            .get_mut(group_id)
            .ok_or_else(|| not_found(op, "InvalidGroup.NotFound", group_id))?;
        group.ingress.extend(rules.iter().cloned());
        group.ingress.sort();
        group.ingress.dedup();
        Ok(())
    }

    async fn delete_security_group(&self, group_id: &str) -> CloudResult<()> {
        let op = "DeleteSecurityGroup";
        let mut a = self.gate(op).await?;
        if !a.groups.contains_key(group_id) {
            return Err(not_found(op, "InvalidGroup.NotFound", group_id));
        }
        if let Some(fs) = a
            .file_systems
            .values()
            .find(|fs| fs_groups(&a.fs_tokens, &fs.id).contains(&group_id.to_string()))
        {
            let message = format!("resource {group_id} has a dependent object ({})", fs.id);
            return Err(aws_error(op, "DependencyViolation", message));
        }
        a.groups.remove(group_id);
        Ok(())
    }
}

#[async_trait]
impl FileSystems for MemoryCloud {
    async fn create_file_system(&self, request: &FileSystemRequest) -> CloudResult<FileSystem> {
        let op = match request.backup_id {
            Some(_) => "CreateFileSystemFromBackup",
            None => "CreateFileSystem",
        };
        let mut a = self.gate(op).await?;
        if let Some(id) = replayed(&a.fs_tokens, &request.client_token, request, op)?
            && let Some(fs) = a.file_systems.get(&id)
        {
            return Ok(fs.clone());
        }
        if let Some(b) = &request.backup_id {
            super::backups::restorable(&a, b, request.storage_capacity_gib)?;
        }
        let Some((vpc, _)) = a.subnets.get(&request.subnet_id).cloned() else {
            let message = format!("subnet {} does not exist", request.subnet_id);
            return Err(aws_error(op, "InvalidNetworkSettings", message));
        };
        if let Some(missing) = request
            .security_group_ids
            .iter()
            .find(|g| !a.groups.contains_key(*g))
        {
            let message = format!("Security group {missing} does not exist");
            return Err(aws_error(op, "InvalidNetworkSettings", message));
        }
        let id = a.id("fs");
        let fs = FileSystem {
            id: id.clone(),
            arn: format!("arn:aws:fsx:memory:000000000000:file-system/{id}"),
            lifecycle: Lifecycle::Creating,
            failure_message: None,
            dns_name: Some(format!("{id}.fsx.memory.amazonaws.com")),
            mount_name: Some(format!("m{}", &id[3..11])),
            storage_capacity_gib: request.storage_capacity_gib,
            deployment_type: request.deployment_type,
            per_unit_storage_throughput: request.per_unit_storage_throughput,
            subnet_id: Some(request.subnet_id.clone()),
            vpc_id: Some(vpc),
            network_interface_ids: vec![format!("eni-{}", &id[3..])],
            file_system_type_version: Some(request.file_system_type_version.clone()),
            tags: request.tags.clone(),
            update_in_progress: false,
            settings: FileSystemSettings {
                metadata: request.metadata,
                metadata_iops: request.metadata.map(|m| match m {
                    MetadataConfiguration::Automatic => {
                        automatic_metadata_iops(request.storage_capacity_gib)
                    }
                    MetadataConfiguration::UserProvisioned(iops) => iops,
                }),
                metadata_changed_at: None,
                root_squash: request.root_squash.clone(),
                log: request.log.clone(),
                efa: request.efa,
                intelligent_tiering: request.tiering.is_some(),
                throughput_capacity: request.tiering.as_ref().map(|t| t.throughput_capacity),
            },
        };
        a.fs_tokens
            .insert(request.client_token.clone(), (request.clone(), id.clone()));
        a.file_systems.insert(id, fs.clone());
        Ok(fs)
    }

    async fn describe_file_systems(&self, ids: &[String]) -> CloudResult<Vec<FileSystem>> {
        let a = self.gate("DescribeFileSystems").await?;
        if ids.is_empty() {
            return Ok(a.file_systems.values().cloned().collect());
        }
        Ok(pick(&a.file_systems, ids))
    }

    async fn describe_file_systems_each(
        &self,
        ids: &[String],
        each: &mut (dyn FnMut(FileSystem) + Send),
    ) -> CloudResult<()> {
        let Some(size) = self.lock().page_size else {
            self.describe_file_systems(ids)
                .await?
                .into_iter()
                .for_each(each);
            return Ok(());
        };
        let mut page = 0;
        loop {
            let found: Vec<FileSystem> = {
                let a = self.gate("DescribeFileSystems").await?;
                let all: Box<dyn Iterator<Item = &FileSystem>> = if ids.is_empty() {
                    Box::new(a.file_systems.values())
                } else {
                    Box::new(ids.iter().filter_map(|id| a.file_systems.get(id)))
                };
                all.skip(page * size).take(size).cloned().collect()
            };
            let last = found.len() < size;
            found.into_iter().for_each(&mut *each);
            if last {
                return Ok(());
            }
            page += 1;
        }
    }

    async fn find_file_systems_by_owner(&self, uid: &str) -> CloudResult<Vec<FileSystem>> {
        let a = self.gate("DescribeFileSystems").await?;
        Ok(owned_by(&a.file_systems, uid, |fs| &fs.tags))
    }

    async fn update_file_system(
        &self,
        id: &str,
        update: &FileSystemUpdate,
    ) -> CloudResult<FileSystem> {
        let op = "UpdateFileSystem";
        let mut a = self.gate(op).await?;
        let fs = a
            .file_systems
            .get_mut(id)
            .ok_or_else(|| not_found(op, "FileSystemNotFound", id))?;
        if fs.lifecycle != Lifecycle::Available || fs.update_in_progress {
            let message = format!(
                "{id} is {} with an update in progress",
                fs.lifecycle.as_str()
            );
            return Err(aws_error(op, "BadRequest", message));
        }
        if update
            .storage_capacity_gib
            .is_some_and(|gib| gib < fs.storage_capacity_gib)
        {
            let message = "storage capacity can only grow";
            return Err(aws_error(op, "BadRequest", message));
        }
        fs.lifecycle = Lifecycle::Updating;
        fs.update_in_progress = true;
        let fs = fs.clone();
        a.pending_updates.insert(id.to_string(), update.clone());
        Ok(fs)
    }

    async fn delete_file_system(&self, id: &str, deletion: &FileSystemDeletion) -> CloudResult<()> {
        let op = "DeleteFileSystem";
        let mut a = self.gate(op).await?;
        if let Some(t) = a.tasks.values().find(|t| {
            t.file_system_id == id
                && matches!(
                    t.lifecycle,
                    TaskLifecycle::Pending | TaskLifecycle::Executing
                )
        }) {
            let message = format!("{id} has task {} running", t.id);
            return Err(aws_error(op, "BadRequest", message));
        }
        let fs = a
            .file_systems
            .get_mut(id)
            .ok_or_else(|| not_found(op, "FileSystemNotFound", id))?;
        fs.lifecycle = Lifecycle::Deleting;
        if let Some(tags) = &deletion.final_backup_tags {
            let fs = fs.clone();
            let id = a.id("backup");
            let backup = super::backups::taken(id.clone(), &fs, tags.clone());
            a.backups.insert(id, backup);
        }
        Ok(())
    }

    async fn tag_resource(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        let op = "TagResource";
        let mut a = self.gate(op).await?;
        let target = match a.file_systems.values_mut().find(|f| f.arn == arn) {
            Some(fs) => &mut fs.tags,
            None => {
                &mut a
                    .associations
                    .values_mut()
                    .find(|d| arn.ends_with(&d.id))
                    .ok_or_else(|| not_found(op, "ResourceNotFound", arn))?
                    .tags
            }
        };
        target.extend(tags.clone());
        Ok(())
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        let op = "UntagResource";
        let mut a = self.gate(op).await?;
        let fs = a
            .file_systems
            .values_mut()
            .find(|f| f.arn == arn)
            .ok_or_else(|| not_found(op, "ResourceNotFound", arn))?;
        for k in keys {
            fs.tags.remove(k);
        }
        Ok(())
    }

    async fn create_data_repository_association(
        &self,
        request: &DataRepositoryRequest,
    ) -> CloudResult<DataRepositoryAssociation> {
        let op = "CreateDataRepositoryAssociation";
        let mut a = self.gate(op).await?;
        if let Some(id) = replayed(&a.dra_tokens, &request.client_token, request, op)?
            && let Some(d) = a.associations.get(&id)
        {
            return Ok(d.clone());
        }
        let fs_id = &request.file_system_id;
        match a.file_systems.get(fs_id) {
            None => return Err(not_found(op, "FileSystemNotFound", fs_id)),
            Some(fs) if fs.lifecycle != Lifecycle::Available => {
                let message = format!("{fs_id} is {}", fs.lifecycle.as_str());
                return Err(aws_error(op, "BadRequest", message));
            }
            Some(_) => {}
        }
        if a.associations.values().any(|d| {
            d.file_system_id == *fs_id && overlaps(&d.file_system_path, &request.file_system_path)
        }) {
            let message = format!(
                "{} overlaps an existing association",
                request.file_system_path
            );
            return Err(aws_error(op, "BadRequest", message));
        }
        let id = a.id("dra");
        let association = DataRepositoryAssociation {
            id: id.clone(),
            file_system_id: fs_id.clone(),
            file_system_path: request.file_system_path.clone(),
            data_repository_path: request.data_repository_path.clone(),
            lifecycle: Lifecycle::Creating,
            failure_message: None,
            auto_import: request.auto_import.clone(),
            auto_export: request.auto_export.clone(),
            tags: request.tags.clone(),
        };
        a.dra_tokens
            .insert(request.client_token.clone(), (request.clone(), id.clone()));
        a.associations.insert(id, association.clone());
        Ok(association)
    }

    async fn describe_data_repository_associations(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataRepositoryAssociation>> {
        let a = self.gate("DescribeDataRepositoryAssociations").await?;
        Ok(a.associations
            .values()
            .filter(|d| file_system_ids.contains(&d.file_system_id))
            .cloned()
            .collect())
    }

    async fn delete_data_repository_association(&self, id: &str) -> CloudResult<()> {
        let op = "DeleteDataRepositoryAssociation";
        let mut a = self.gate(op).await?;
        let d = a
            .associations
            .get_mut(id)
            .ok_or_else(|| not_found(op, "DataRepositoryAssociationNotFound", id))?;
        d.lifecycle = Lifecycle::Deleting;
        Ok(())
    }

    async fn update_data_repository_association(
        &self,
        id: &str,
        update: &AssociationUpdate,
    ) -> CloudResult<DataRepositoryAssociation> {
        let op = "UpdateDataRepositoryAssociation";
        let mut a = self.gate(op).await?;
        let d = a
            .associations
            .get_mut(id)
            .ok_or_else(|| not_found(op, "DataRepositoryAssociationNotFound", id))?;
        if d.lifecycle != Lifecycle::Available {
            let message = format!("{id} is {}", d.lifecycle.as_str());
            return Err(aws_error(op, "BadRequest", message));
        }
        if let Some(events) = &update.auto_import {
            d.auto_import = events.clone();
        }
        if let Some(events) = &update.auto_export {
            d.auto_export = events.clone();
        }
        d.lifecycle = Lifecycle::Updating;
        Ok(d.clone())
    }
}

/// The resources with these ids (missing ones left out).
fn pick<T: Clone>(all: &BTreeMap<String, T>, ids: &[String]) -> Vec<T> {
    ids.iter().filter_map(|id| all.get(id).cloned()).collect()
}

/// The resources the operator made for the workspace with this UID.
fn owned_by<T: Clone>(all: &BTreeMap<String, T>, uid: &str, tags: impl Fn(&T) -> &Tags) -> Vec<T> {
    all.values()
        .filter(|r| naming::owner_uid(tags(r)) == Some(uid))
        .cloned()
        .collect()
}
