//! The cloud layer: the narrow set of FSx and EC2 operations the LustreWorkspace controller
//! needs, in domain types ([`Cloud`]), and their implementation on the AWS SDK
//! ([`aws::AwsCloud`]). The controller never sees an SDK type.

pub mod aws;
pub mod backups;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod naming;
pub mod tasks;
pub mod types;

use std::fmt::Debug;

use async_trait::async_trait;

pub use backups::*;
pub use error::{CloudError, CloudResult, ErrorKind, redact};
pub use tasks::*;
pub use types::*;

/// The FSx / EC2 operations of one region: its network half (EC2), its file system half
/// (FSx), FSx's data repository tasks and its backups, each implemented where its API is
/// spoken.
pub trait Cloud: Networking + FileSystems + DataTasks + Backups + Send + Sync + Debug {}

impl<T: Networking + FileSystems + DataTasks + Backups + Send + Sync + Debug> Cloud for T {}

/// The EC2 operations: subnets and the file systems' security groups.
#[async_trait]
pub trait Networking: Send + Sync {
    /// A subnet's VPC and Availability Zone ([`ErrorKind::NotFound`] when there is none).
    async fn subnet(&self, subnet_id: &str) -> CloudResult<Subnet>;

    /// Creates a security group and returns its id. A group of the same name in the VPC is
    /// a [`ErrorKind::Conflict`] with code `InvalidGroup.Duplicate`.
    async fn create_security_group(&self, request: &SecurityGroupRequest) -> CloudResult<String>;

    /// The security groups with these ids (missing ones are left out).
    async fn describe_security_groups(&self, ids: &[String]) -> CloudResult<Vec<SecurityGroup>>;

    /// The security groups the operator created for the workspace with this UID.
    async fn find_security_groups_by_owner(&self, uid: &str) -> CloudResult<Vec<SecurityGroup>>;

    /// Adds inbound rules; rules that already exist count as added.
    async fn authorize_ingress(&self, group_id: &str, rules: &[IngressRule]) -> CloudResult<()>;

    /// Deletes a security group. While network interfaces still use it the error is
    /// [`ErrorKind::DependencyViolation`].
    async fn delete_security_group(&self, group_id: &str) -> CloudResult<()>;
}

/// The FSx operations: file systems, their tags and their data repository associations.
#[async_trait]
pub trait FileSystems: Send + Sync {
    /// Creates a Lustre file system; the same token with the same request returns the same
    /// file system.
    async fn create_file_system(&self, request: &FileSystemRequest) -> CloudResult<FileSystem>;

    /// The file systems with these ids, in as few calls as the API allows (missing ones are
    /// left out). With no ids: every file system of the region.
    async fn describe_file_systems(&self, ids: &[String]) -> CloudResult<Vec<FileSystem>>;

    /// [`FileSystems::describe_file_systems`], each file system handed to `each` as its page
    /// arrives rather than all of them returned at once (the poller's rounds describe every
    /// file system it follows, thousands). On an error some may have been handed already.
    async fn describe_file_systems_each(
        &self,
        ids: &[String],
        each: &mut (dyn FnMut(FileSystem) + Send),
    ) -> CloudResult<()> {
        self.describe_file_systems(ids)
            .await?
            .into_iter()
            .for_each(each);
        Ok(())
    }

    /// The file systems the operator created for the workspace with this UID.
    async fn find_file_systems_by_owner(&self, uid: &str) -> CloudResult<Vec<FileSystem>>;

    /// Starts a capacity or throughput change.
    async fn update_file_system(
        &self,
        id: &str,
        update: &FileSystemUpdate,
    ) -> CloudResult<FileSystem>;

    /// Starts deleting a file system (with a final backup when asked).
    async fn delete_file_system(&self, id: &str, deletion: &FileSystemDeletion) -> CloudResult<()>;

    /// Adds or overwrites tags on an FSx resource.
    async fn tag_resource(&self, arn: &str, tags: &Tags) -> CloudResult<()>;

    /// Removes tags (by key) from an FSx resource; keys it does not carry are ignored.
    async fn untag_resource(&self, arn: &str, keys: &[String]) -> CloudResult<()>;

    /// Links an S3 prefix into a file system.
    async fn create_data_repository_association(
        &self,
        request: &DataRepositoryRequest,
    ) -> CloudResult<DataRepositoryAssociation>;

    /// The associations of these file systems, in as few calls as the API allows.
    async fn describe_data_repository_associations(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataRepositoryAssociation>>;

    /// Unlinks an association, keeping the data in the file system.
    async fn delete_data_repository_association(&self, id: &str) -> CloudResult<()>;

    /// Changes an AVAILABLE association's automatic import / export events in place (it is
    /// UPDATING, then AVAILABLE again).
    async fn update_data_repository_association(
        &self,
        id: &str,
        update: &AssociationUpdate,
    ) -> CloudResult<DataRepositoryAssociation>;
}

/// The FSx data repository tasks: data moved between a file system and its linked S3 paths.
#[async_trait]
pub trait DataTasks: Send + Sync {
    /// Starts a task; the same token with the same request returns the same task. While
    /// another task of the file system is PENDING or EXECUTING the error is
    /// [`ErrorKind::DependencyViolation`] with code `DataRepositoryTaskExecuting` (retry
    /// later). A path that is not valid fails the task, not the call.
    async fn create_data_repository_task(&self, request: &DataTaskRequest)
    -> CloudResult<DataTask>;

    /// The tasks with these ids, in as few calls as the API allows (50 ids a call; missing
    /// ones are left out).
    async fn describe_data_repository_tasks(&self, ids: &[String]) -> CloudResult<Vec<DataTask>>;

    /// Every task of these file systems, whatever its lifecycle (20 file systems a call,
    /// page by page; file systems that no longer exist are left out).
    async fn data_repository_tasks_of(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataTask>>;

    /// Cancels a PENDING or EXECUTING task and returns its lifecycle (CANCELING). A task
    /// that already ended is [`ErrorKind::Conflict`] with code `DataRepositoryTaskEnded`.
    async fn cancel_data_repository_task(&self, id: &str) -> CloudResult<TaskLifecycle>;
}

/// FSx backups of persistent file systems (restoring one is a [`FileSystemRequest`] with a
/// `backup_id`).
#[async_trait]
pub trait Backups: Send + Sync {
    /// Starts a backup; the same token with the same request returns the same backup. While
    /// another backup of the file system is under way the error is
    /// [`ErrorKind::DependencyViolation`] with code `BackupInProgress` (retry later).
    async fn create_backup(&self, request: &BackupRequest) -> CloudResult<Backup>;

    /// The backups with these ids, in as few calls as the API allows (50 ids a call; missing
    /// ones are left out).
    async fn describe_backups(&self, ids: &[String]) -> CloudResult<Vec<Backup>>;

    /// Every backup of these file systems (also of file systems deleted since), page by page.
    async fn backups_of(&self, file_system_ids: &[String]) -> CloudResult<Vec<Backup>>;

    /// Deletes a backup. One a file system is being restored from is
    /// [`ErrorKind::DependencyViolation`] (`BackupRestoring`, `BackupInProgress`); one that
    /// is gone is [`ErrorKind::NotFound`].
    async fn delete_backup(&self, id: &str) -> CloudResult<()>;
}

/// Told about every AWS call the adapter makes, for metrics (service, operation, outcome are
/// bounded label values).
pub trait CallObserver: Send + Sync + Debug {
    /// `outcome` is `"ok"` or an [`ErrorKind::category`].
    fn observe(&self, service: &'static str, operation: &'static str, outcome: &'static str);
}
