//! The export before deletion (`exportOnDelete`): which links it writes to S3, the FSx task
//! that does it, and the cleanup step it calls for. It runs after the claim is released and
//! before any association goes; `deletionExport.failurePolicy` decides whether a failed,
//! refused or timed-out export stops the deletion (Block) or is let go with a Warning
//! (Continue).

use std::ops::ControlFlow::{self, Break, Continue};

use lustre_api::constants::RETRY_EXPORT_ANNOTATION;
use lustre_api::validation::is_read_only;
use lustre_api::{DataRepository, ExportFailurePolicy, LustreWorkspace};
use lustre_cloud::naming;
use lustre_cloud::{DataTask, DataTaskRequest, Lifecycle, TaskLifecycle, TaskType};

use super::{Action, Hook, Inputs, Wait};

/// Where the export's completion report goes, under the first exported link's S3 path.
pub const REPORT_DIR: &str = "lustre-export-reports";

/// The links to export before deletion: those marked `exportOnDelete`, and every link when
/// an expiry with ExportThenDelete deletes the workspace.
pub fn export_links<'a>(i: &Inputs<'a>) -> Vec<&'a DataRepository> {
    let every = super::expiry::exports_every_link(i);
    i.workspace
        .spec
        .data_repositories
        .iter()
        .filter(|r| every || r.export_on_delete == Some(true))
        .collect()
}

/// The attempt the workspace's retry annotation names (`0` without one).
pub fn attempt(ws: &LustreWorkspace) -> String {
    let retry = ws
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RETRY_EXPORT_ANNOTATION));
    naming::export_attempt(retry.map(String::as_str))
}

/// The policy in effect (Block unless the spec says Continue).
pub fn failure_policy(ws: &LustreWorkspace) -> ExportFailurePolicy {
    ws.spec
        .deletion_export
        .as_ref()
        .and_then(|e| e.failure_policy)
        .unwrap_or_default()
}

/// How long the export may run, in minutes.
pub fn timeout_minutes(ws: &LustreWorkspace) -> i32 {
    ws.spec
        .deletion_export
        .as_ref()
        .and_then(|e| e.timeout_minutes)
        .unwrap_or(lustre_api::DeletionExport::DEFAULT_TIMEOUT_MINUTES)
}

/// What the export must cover now: the links with `exportOnDelete` that are linked (their
/// association exists and is not going), on a file system that can run a task. `None`:
/// nothing to export (no such link, never linked, the file system not made or FAILED, the
/// links already being unlinked); `Err`: the export cannot run (a MISCONFIGURED file system,
/// whose data may yet be repaired).
fn scope<'a>(i: &Inputs<'a>) -> Option<Result<Vec<&'a DataRepository>, String>> {
    let fs = i.aws.file_system?;
    let ws = i.workspace;
    let namespace = ws.metadata.namespace.as_deref().unwrap_or_default();
    let links: Vec<&DataRepository> = export_links(i)
        .into_iter()
        .filter(|r| {
            i.aws
                .association_for(r)
                .is_some_and(|a| !matches!(a.lifecycle, Lifecycle::Deleting | Lifecycle::Failed))
        })
        // A prefix the class has made read-only since takes no export.
        .filter(|r| {
            i.class
                .found()
                .is_none_or(|c| !is_read_only(&r.s3_path, c, namespace))
        })
        .collect();
    if links.is_empty() {
        return None;
    }
    match fs.lifecycle {
        Lifecycle::Available | Lifecycle::Updating => Some(Ok(links)),
        Lifecycle::Misconfigured | Lifecycle::MisconfiguredUnavailable => Some(Err(format!(
            "{} is {}: no export can run until it is repaired",
            fs.id,
            fs.lifecycle.as_str()
        ))),
        _ => None,
    }
}

/// The FSx request of the export (the links' paths relative to the mount; the whole file
/// system when one is `/`), with its report under the first link's S3 path.
fn request(i: &Inputs, links: &[&DataRepository], fs: &str) -> DataTaskRequest {
    let ws = i.workspace;
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let relative: Vec<String> = links
        .iter()
        .map(|r| r.file_system_path.trim_start_matches('/').to_string())
        .collect();
    let paths = match relative.iter().any(String::is_empty) {
        true => Vec::new(),
        false => relative,
    };
    let attempt = attempt(ws);
    let tags = Hook::ExportOnDelete.tags(i, &attempt);
    DataTaskRequest {
        client_token: naming::export_token(uid, &attempt),
        file_system_id: fs.to_string(),
        task_type: TaskType::Export,
        paths,
        release_older_than_days: None,
        report_path: Some(format!("{}{REPORT_DIR}", links[0].s3_path)),
        tags,
    }
}

/// The cleanup step of the export: start it, wait for it, cancel it when it overran, stop on
/// its failure (Block), or nothing (done, given up with Continue, or nothing to export).
pub(super) fn plan(i: &Inputs) -> ControlFlow<Action> {
    let links = match scope(i) {
        None => return Continue(()),
        Some(Err(why)) => return failed(i, why),
        Some(Ok(links)) => links,
    };
    let view = i.aws.export;
    if let Some(words) = view.refused {
        return failed(i, format!("FSx refused the export: {words}"));
    }
    let Some(task) = view.task else {
        let fs = i.aws.file_system.map(|f| f.id.as_str()).unwrap_or_default();
        return Break(Action::StartExport(Box::new(request(i, &links, fs))));
    };
    match &task.lifecycle {
        TaskLifecycle::Succeeded => Continue(()),
        l if l.is_finished() => failed(i, outcome(task)),
        TaskLifecycle::Pending | TaskLifecycle::Executing if view.overdue => {
            Break(Action::CancelExport {
                id: task.id.clone(),
                minutes: timeout_minutes(i.workspace),
            })
        }
        _ => Break(Action::Wait(Wait::Exporting)),
    }
}

/// A failed export under the workspace's policy: Block stops the deletion here, Continue
/// lets it go on (the DataExported condition and a Warning say so).
fn failed(i: &Inputs, why: String) -> ControlFlow<Action> {
    match failure_policy(i.workspace) {
        ExportFailurePolicy::Block => Break(Action::ExportFailed(why)),
        ExportFailurePolicy::Continue => Continue(()),
    }
}

/// The paths an export request covers, as the mount shows them.
pub fn paths(r: &DataTaskRequest) -> String {
    if r.paths.is_empty() {
        return "the whole file system".to_string();
    }
    r.paths
        .iter()
        .map(|p| format!("/{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line on what the export did.
pub fn outcome(task: &DataTask) -> String {
    Hook::ExportOnDelete.outcome(task)
}

/// The DataExported condition's view of the export: `None` when the workspace asks for no
/// export or is not being deleted; else whether it is done and why.
pub fn state(i: &Inputs, action: &Action) -> Option<(bool, &'static str, String)> {
    use lustre_api::constants::{RETRY_EXPORT_ANNOTATION as RETRY, reason};
    let ws = i.workspace;
    export_links(i).first()?;
    let failed = |why: String| {
        let message = match failure_policy(ws) {
            ExportFailurePolicy::Block => format!(
                "{why}. The file system is kept: fix the cause and set annotation {RETRY} to a new value to export again, or set spec.deletionExport.failurePolicy: Continue to delete without the export"
            ),
            ExportFailurePolicy::Continue => {
                format!("{why}; deleting anyway (deletionExport.failurePolicy: Continue)")
            }
        };
        (false, reason::EXPORT_FAILED, message)
    };
    if let Action::ExportFailed(why) = action {
        return Some(failed(why.clone()));
    }
    if let Some(words) = i.aws.export.refused {
        return Some(failed(format!("FSx refused the export: {words}")));
    }
    match i.aws.export.task {
        Some(t) if t.lifecycle == TaskLifecycle::Succeeded => {
            Some((true, reason::EXPORTED, outcome(t)))
        }
        Some(t) if t.lifecycle.is_finished() => Some(failed(outcome(t))),
        Some(t) => Some((
            false,
            reason::EXPORTING,
            format!(
                "export {} {}: {} of {} files exported; the file system waits for it (timeout {} minutes)",
                t.id,
                t.lifecycle.as_str(),
                t.succeeded,
                t.total,
                timeout_minutes(ws)
            ),
        )),
        None if matches!(action, Action::StartExport(_)) => {
            Some((false, reason::EXPORTING, "starting the export".to_string()))
        }
        None => None,
    }
}
