//! A data task's status: its phase from FSx's lifecycle, the counts, the times, and the
//! `Complete` / `Failed` conditions (a condition keeps its transition time while its status
//! holds).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use lustre_api::{DataTaskPhase, LustreDataTask, LustreDataTaskStatus};
use lustre_cloud::{DataTask, TaskLifecycle};

use crate::beside::{conditions_of, time};

/// Pending, waiting for what `note` says.
pub(crate) fn pending(task: &LustreDataTask, note: String) -> LustreDataTaskStatus {
    let mut s = prior(task);
    s.phase = Some(DataTaskPhase::Pending);
    s.message = Some(note);
    s.conditions = conditions(task, DataTaskPhase::Pending, "Waiting", "");
    s
}

/// Failed for `reason` before (or without) FSx running it.
pub(crate) fn failed(task: &LustreDataTask, reason: &str, note: String) -> LustreDataTaskStatus {
    let mut s = prior(task);
    s.phase = Some(DataTaskPhase::Failed);
    s.conditions = conditions(task, DataTaskPhase::Failed, reason, &note);
    s.message = Some(note);
    s
}

/// The status what FSx shows of the task calls for.
pub(crate) fn observed(task: &LustreDataTask, t: &DataTask) -> LustreDataTaskStatus {
    let mut s = prior(task);
    let (phase, reason, note) = match &t.lifecycle {
        TaskLifecycle::Succeeded => (
            DataTaskPhase::Succeeded,
            "Succeeded",
            format!("{} of {} files", t.succeeded, t.total),
        ),
        TaskLifecycle::Failed => (DataTaskPhase::Failed, "TaskFailed", failure(t)),
        TaskLifecycle::Canceled => (DataTaskPhase::Canceled, "Canceled", "canceled".to_string()),
        other => (
            DataTaskPhase::Running,
            "Running",
            format!("FSx task {} is {}", t.id, other.as_str()),
        ),
    };
    s.phase = Some(phase);
    s.task_id = Some(t.id.clone());
    s.file_system_id = Some(t.file_system_id.clone());
    s.lifecycle = Some(t.lifecycle.as_str().to_string());
    s.total_files = Some(t.total);
    s.succeeded_files = Some(t.succeeded);
    s.failed_files = Some(t.failed);
    s.progress = Some(format!("{}/{}", t.succeeded, t.total));
    s.report_path = t.report_path.clone();
    s.start_time = t.started_at.and_then(time);
    s.completion_time = t.ended_at.and_then(time);
    s.conditions = conditions(task, phase, reason, &note);
    s.message = Some(note);
    s
}

/// AWS's failure details, with the counts (FAILED may mean only some files failed).
fn failure(t: &DataTask) -> String {
    let counts = format!("{} of {} files failed", t.failed, t.total);
    match &t.failure_message {
        Some(m) => format!("{counts}: {m}"),
        None => counts,
    }
}

fn prior(task: &LustreDataTask) -> LustreDataTaskStatus {
    task.status.clone().unwrap_or_default()
}

/// `Complete` (True once it succeeded) and `Failed` (True when it failed).
fn conditions(
    task: &LustreDataTask,
    phase: DataTaskPhase,
    reason: &str,
    note: &str,
) -> Vec<Condition> {
    let old = task.status.as_ref().map(|s| s.conditions.as_slice());
    let which = [
        ("Complete", phase == DataTaskPhase::Succeeded),
        ("Failed", phase == DataTaskPhase::Failed),
    ];
    conditions_of(
        old.unwrap_or_default(),
        task.metadata.generation,
        which,
        reason,
        note,
    )
}
