//! What FSx is asked for a data task: its paths in FSx's three spellings (export and release
//! paths relative to the mount, import paths in S3), its report under a read-write link, its
//! token and tags; or why it cannot be asked at all (with no AWS call).

use kube::ResourceExt;
use lustre_api::validation::{LinkedPath, is_read_only, summarize, task_paths};
use lustre_api::{DataTaskType, LustreDataTask, LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::{DataTaskRequest, TaskType};

/// Where a task's completion report goes, under its link's S3 path.
const REPORT_DIR: &str = "lustre-task-reports";

/// ClientRequestToken of a data task: its object's UID, so a retry after a crash finds the
/// task already started.
fn token(uid: &str) -> String {
    let mut t = format!("ldt-{uid}");
    t.truncate(naming::MAX_TOKEN_LEN);
    t
}

/// The request for `task` on the workspace's file system, or why it is refused.
pub fn request(
    task: &LustreDataTask,
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    file_system_id: &str,
) -> Result<DataTaskRequest, String> {
    let violations = task.validate(None);
    if !violations.is_empty() {
        return Err(summarize(&violations));
    }
    let namespace = task.namespace().unwrap_or_default();
    let spec = &task.spec;
    let linked = task_paths(spec, &ws.spec, class, &namespace).map_err(|v| summarize(&v))?;
    if spec.task_type == DataTaskType::Export
        && let Some(p) = linked.iter().find(|p| !p.link.auto_export.is_empty())
    {
        let events: Vec<&str> = p.link.auto_export.iter().map(|e| e.as_str()).collect();
        return Err(format!(
            "{} exports automatically (autoExport [{}]): FSx runs no export task beside automatic export; files are exported as they change",
            p.link.file_system_path,
            events.join(", ")
        ));
    }
    let report_path = match spec.report.as_ref().is_some_and(|r| r.enabled) {
        false => None,
        true => Some(report_path(&linked, class, &namespace)?),
    };
    let task_type = match spec.task_type {
        DataTaskType::Export => TaskType::Export,
        DataTaskType::Import => TaskType::Import,
        DataTaskType::Release => TaskType::Release,
    };
    let owner = Owner {
        namespace,
        name: ws.name_any(),
        uid: ws.uid().unwrap_or_default(),
        class: class.name_any(),
    };
    Ok(DataTaskRequest {
        client_token: token(&task.uid().unwrap_or_default()),
        file_system_id: file_system_id.to_string(),
        task_type,
        paths: fsx_paths(task_type, &linked),
        release_older_than_days: spec.release.as_ref().map(|r| r.older_than_days),
        report_path,
        tags: naming::owner_tags(&owner, &Default::default(), &Default::default()),
    })
}

/// The paths as FSx takes them; the whole file system as FSx spells it when one of them is
/// the root (no paths for export and import, `/` for release).
fn fsx_paths(task_type: TaskType, linked: &[LinkedPath]) -> Vec<String> {
    match task_type {
        TaskType::Import => linked.iter().map(LinkedPath::s3).collect(),
        _ => {
            let relative: Vec<String> = linked.iter().map(LinkedPath::relative).collect();
            match (relative.iter().any(String::is_empty), task_type) {
                (true, TaskType::Release) => vec!["/".to_string()],
                (true, _) => Vec::new(),
                (false, _) => relative,
            }
        }
    }
}

/// The report goes under the S3 path of the first read-write link among the task's paths.
fn report_path(
    linked: &[LinkedPath],
    class: &LustreWorkspaceClass,
    namespace: &str,
) -> Result<String, String> {
    linked
        .iter()
        .find(|p| !is_read_only(&p.link.s3_path, class, namespace))
        .map(|p| format!("{}{REPORT_DIR}", p.link.s3_path))
        .ok_or_else(|| {
            "report.enabled needs a read-write linked S3 path among the task's paths: every one is read-only in the class".to_string()
        })
}
