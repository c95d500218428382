//! The `workspaces.lustre.dev/v1alpha1` API: the `LustreWorkspace`, `LustreWorkspaceClass` and
//! `LustreDataTask`, `LustreWorkspaceBackup` and `LustreWorkspaceGrant` custom resources, their validation (schema + CEL at admission, and the same rules in Rust),
//! the names the operator writes, and CRD generation.

pub mod admission;
pub mod backup;
pub mod cel_bounds;
pub mod class;
pub mod constants;
pub mod cost;
pub mod crd;
pub mod data_task;
pub mod docs;
pub mod expiry;
pub mod export;
pub mod lustre_settings;
pub mod messages;
pub mod rules;
pub mod schema;
pub mod share;
pub mod validation;
pub mod workspace;
pub mod workspace_status;

pub use backup::{
    BackupPhase, LustreWorkspaceBackup, LustreWorkspaceBackupSpec, LustreWorkspaceBackupStatus,
    RestorePolicy, WorkspaceSource,
};
pub use class::{
    AdoptionPolicy, ClassDefaults, EfaPolicy, LustreWorkspaceClass, LustreWorkspaceClassSpec,
    NamespaceLimits, Placement, SecurityGroupPolicy,
};
pub use data_task::{
    DataTaskPhase, DataTaskType, LustreDataTask, LustreDataTaskSpec, LustreDataTaskStatus,
    ReleaseOptions, ReportOptions,
};
pub use expiry::{ClassExpiry, DefaultExpiry, Expiry, ExpiryAction, ExpiryPolicy};
pub use export::{DeletionExport, ExportFailurePolicy, ExportStatus};
pub use lustre_settings::{
    LogLevel, Logging, MetadataConfiguration, MetadataMode, ReadCache, ReadCacheSizing, RootSquash,
    StorageType,
};
pub use share::{
    GrantPhase, LustreWorkspaceGrant, LustreWorkspaceGrantSpec, LustreWorkspaceGrantStatus, Share,
    ShareStatus, SharingPolicy,
};
pub use validation::Violation;
pub use workspace::{
    DataCompressionType, DataRepository, DataRepositoryStatus, DeletionPolicy, DeploymentType,
    LustreWorkspace, LustreWorkspaceSpec, LustreWorkspaceStatus, Phase, S3Event,
};
