//! The export before deletion on the workspace's API: how it behaves
//! (`spec.deletionExport`) and what the last one did (`status.lastExport`). The links it
//! exports are marked with `exportOnDelete` in `spec.dataRepositories`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The export before deletion: what its failure does and how long it may run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionExport {
    /// Block (default): a failed, refused or timed-out export stops the deletion and keeps
    /// the file system, with a reason that says how to go on. Continue: the deletion goes on
    /// with a Warning Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<ExportFailurePolicy>,
    /// How long the export may run before it is canceled and counted as failed, in minutes
    /// (1 to 10080; default 1440, one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10080))]
    pub timeout_minutes: Option<i32>,
}

impl DeletionExport {
    /// Default of [`Self::timeout_minutes`].
    pub const DEFAULT_TIMEOUT_MINUTES: i32 = 1440;
}

/// What a failed export before deletion does to the deletion.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
#[schemars(transform = crate::schema::drop_description)]
pub enum ExportFailurePolicy {
    /// Stop the deletion and keep the file system until the export succeeds or the policy
    /// changes.
    #[default]
    Block,
    /// Delete anyway, with a Warning Event.
    Continue,
}

impl ExportFailurePolicy {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "Block",
            Self::Continue => "Continue",
        }
    }
}

/// One export the operator ran before deleting the workspace's file system.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// The FSx task (task-...).
    pub task_id: String,
    /// Its lifecycle as FSx reports it (PENDING, EXECUTING, SUCCEEDED, FAILED, CANCELING,
    /// CANCELED).
    pub lifecycle: String,
    /// The file system paths it exports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Files it covers, and how many were exported and failed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_files: Option<i64>,
    /// Files exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_files: Option<i64>,
    /// Files that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_files: Option<i64>,
    /// Where FSx wrote its completion report (the failures are listed there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_path: Option<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// AWS's failure details, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
