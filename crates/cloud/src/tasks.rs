//! Data repository tasks in the cloud layer's words: what the controller asks FSx to move
//! between a file system and its linked S3 paths (export, import, release), and what it
//! observes of a task while it runs.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::types::{S3Event, Tags};

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskType {
    /// Files changed in the file system are written to S3 (`EXPORT_TO_REPOSITORY`).
    Export,
    /// The listing of S3 objects is brought into the file system
    /// (`IMPORT_METADATA_FROM_REPOSITORY`).
    Import,
    /// Exported files' data is freed from the file system, their listing kept
    /// (`RELEASE_DATA_FROM_FILESYSTEM`).
    Release,
}

impl TaskType {
    /// FSx's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "EXPORT_TO_REPOSITORY",
            Self::Import => "IMPORT_METADATA_FROM_REPOSITORY",
            Self::Release => "RELEASE_DATA_FROM_FILESYSTEM",
        }
    }

    /// From FSx's word (`None` for a type this product does not start, e.g. File Cache's).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Export, Self::Import, Self::Release]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A task to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataTaskRequest {
    /// Idempotency token (from the object that asked for the task).
    pub client_token: String,
    /// The file system.
    pub file_system_id: String,
    /// What it does.
    pub task_type: TaskType,
    /// Export and release: paths relative to the mount point; import: `s3://` paths. Empty:
    /// everything linked.
    pub paths: Vec<String>,
    /// Release: only files not accessed for this many days.
    pub release_older_than_days: Option<i64>,
    /// Where the completion report goes (under a linked S3 path); `None`: no report.
    pub report_path: Option<String>,
    /// Tags, including the operator's identity tags.
    pub tags: Tags,
}

/// Where a task is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskLifecycle {
    /// Accepted, not started.
    Pending,
    /// Moving files.
    Executing,
    /// Done, every file moved.
    Succeeded,
    /// Ended with failures (possibly only some files: read the counts).
    Failed,
    /// A cancel is being applied.
    Canceling,
    /// Canceled (what was already moved stays moved).
    Canceled,
    /// A word this product does not know.
    Other(String),
}

impl TaskLifecycle {
    /// From FSx's word.
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "EXECUTING" => Self::Executing,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "CANCELING" => Self::Canceling,
            "CANCELED" => Self::Canceled,
            other => Self::Other(other.to_string()),
        }
    }

    /// FSx's word.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Executing => "EXECUTING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Other(s) => s,
        }
    }

    /// SUCCEEDED, FAILED or CANCELED: it will not change again.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// An observed task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataTask {
    /// task-...
    pub id: String,
    /// The file system.
    pub file_system_id: String,
    /// What it does (`None`: a type this product does not start).
    pub task_type: Option<TaskType>,
    /// Where it is.
    pub lifecycle: TaskLifecycle,
    /// The paths it was given.
    pub paths: Vec<String>,
    /// Files it covers, and how many succeeded and failed so far (equal to the total once
    /// it has finished).
    pub total: i64,
    /// Files moved.
    pub succeeded: i64,
    /// Files that failed.
    pub failed: i64,
    /// The report's S3 path (the failures are in `<path>/task-<id>/failures.csv`).
    pub report_path: Option<String>,
    /// AWS's failure details, verbatim.
    pub failure_message: Option<String>,
    /// When it was created, started and ended.
    pub created_at: Option<SystemTime>,
    /// When it started executing.
    pub started_at: Option<SystemTime>,
    /// When it finished.
    pub ended_at: Option<SystemTime>,
    /// Tags.
    pub tags: Tags,
}

/// An association's automatic import and export events, changed in place (`None` leaves one
/// as it is; an empty list turns it off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssociationUpdate {
    /// Automatic import events.
    pub auto_import: Option<Vec<S3Event>>,
    /// Automatic export events.
    pub auto_export: Option<Vec<S3Event>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for t in [TaskType::Export, TaskType::Import, TaskType::Release] {
            assert_eq!(TaskType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TaskType::parse("AUTO_RELEASE_DATA"), None);
        for s in [
            "PENDING",
            "EXECUTING",
            "SUCCEEDED",
            "FAILED",
            "CANCELING",
            "CANCELED",
        ] {
            assert_eq!(TaskLifecycle::parse(s).as_str(), s);
        }
        assert!(TaskLifecycle::parse("CANCELED").is_finished());
        assert!(!TaskLifecycle::parse("CANCELING").is_finished());
        assert_eq!(
            TaskLifecycle::parse("NEW"),
            TaskLifecycle::Other("NEW".into())
        );
    }
}
