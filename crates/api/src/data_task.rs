//! `LustreDataTask`: data moved once between a workspace's file system and its linked S3
//! paths (an FSx data repository task), declared like any other object.

// Each `printcolumn(...)` repeats keys such as `type_ = "string"`: clippy reads the
// repetition as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;

/// Export files to S3, import S3's listing, or release exported files' data from the file
/// system, once. The operator runs the tasks of one file system one after another (a later one
/// waits `Pending`), follows each in one batched call per poll, and cancels a running task when
/// its object is deleted. Create a new object to run a task again.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "workspaces.lustre.dev",
    version = "v1alpha1",
    kind = "LustreDataTask",
    plural = "lustredatatasks",
    singular = "lustredatatask",
    shortname = "ldt",
    category = "lustre",
    namespaced,
    status = "LustreDataTaskStatus",
    derive = "PartialEq",
    derive = "Default",
    cel,
    doc = "Data moved once between a workspace's FSx for Lustre file system and its linked S3 paths: export, import or release.",
    printcolumn(
        name = "Workspace",
        type_ = "string",
        json_path = ".spec.workspace",
        description = "The workspace whose file system the task runs on"
    ),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.type",
        description = "Export, Import or Release"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Running, Succeeded, Failed or Canceled"
    ),
    printcolumn(
        name = "Files",
        type_ = "string",
        json_path = ".status.progress",
        description = "Files done out of the files the task covers"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(rules::TASK_IMMUTABLE).message(rules::TASK_IMMUTABLE_MSG),
    validation = Rule::new(rules::TASK_RELEASE_ONLY).message(rules::TASK_RELEASE_ONLY_MSG).field_path(".release"),
)]
#[serde(rename_all = "camelCase")]
pub struct LustreDataTaskSpec {
    /// The workspace, in this namespace, whose file system the task runs on. It needs at
    /// least one entry in `dataRepositories`.
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub workspace: String,

    /// Export (files written or changed in the file system go to S3), Import (S3's listing
    /// comes into the file system) or Release (the data of files already exported is freed
    /// from the file system; their listing stays and they load again on access).
    #[serde(rename = "type")]
    pub task_type: DataTaskType,

    /// Paths as pods see them under the claim's mount, such as `/datasets/run-7`, each at or
    /// under a `fileSystemPath` of the workspace's `dataRepositories` (at most 100). Leave it
    /// out for everything linked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 1024), regex(pattern = rules::FS_PATH_RE)))]
    pub paths: Vec<String>,

    /// Release only: which files to release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseOptions>,

    /// A completion report in S3 listing the files that failed, under the linked S3 path of
    /// the first path (a read-write one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportOptions>,
}

/// What a data task does.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
#[schemars(transform = crate::schema::drop_description)]
pub enum DataTaskType {
    /// File system → S3.
    #[default]
    Export,
    /// S3 listing → file system.
    Import,
    /// Free the data of exported files.
    Release,
}

impl DataTaskType {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "Export",
            Self::Import => "Import",
            Self::Release => "Release",
        }
    }
}

/// Which files a release frees.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseOptions {
    /// Only files not read or written for at least this many days (0: every exported file).
    #[schemars(range(min = 0, max = 3650))]
    pub older_than_days: i64,
}

/// The completion report.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportOptions {
    /// Write the report.
    pub enabled: bool,
}

/// What the operator did with the task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LustreDataTaskStatus {
    /// Pending, Running, Succeeded, Failed or Canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DataTaskPhase>,
    /// Why it is where it is (what it waits for, what failed), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Complete and Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The file system it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_id: Option<String>,
    /// The FSx task id (task-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// FSx's lifecycle of the task (PENDING, EXECUTING, SUCCEEDED, FAILED, CANCELING, CANCELED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// Files the task covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_files: Option<i64>,
    /// Files done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_files: Option<i64>,
    /// Files that failed (listed in the report when it is enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_files: Option<i64>,
    /// `succeeded/total`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Where the report is written (`<reportPath>/task-<id>/failures.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_path: Option<String>,
    /// When FSx started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// Where a data task is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum DataTaskPhase {
    /// Waiting: for its workspace, or for the file system's earlier tasks.
    Pending,
    /// FSx is running it.
    Running,
    /// Every file moved.
    Succeeded,
    /// Refused, or ended with failures; see the message and conditions.
    Failed,
    /// Canceled (what was moved stays moved).
    Canceled,
}

impl DataTaskPhase {
    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
        }
    }

    /// Succeeded, Failed or Canceled: the task will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}
