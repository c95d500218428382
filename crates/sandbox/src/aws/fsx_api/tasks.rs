//! Data repository tasks (create, describe, cancel), with the rules
//! FSx documents: one task at a time per file system (`DataRepositoryTaskExecuting`), no
//! export task while an association exports automatically, a linked repository required, the
//! report under a linked S3 path, a path that is not valid failing the task rather than the
//! call, cancel only while PENDING or EXECUTING (`DataRepositoryTaskEnded`).

use serde_json::{Value, json};

use super::super::state::{Lifecycle, State, Task, TaskLifecycle, epoch_seconds};
use super::*;

const TYPES: [&str; 3] = [
    "EXPORT_TO_REPOSITORY",
    "IMPORT_METADATA_FROM_REPOSITORY",
    "RELEASE_DATA_FROM_FILESYSTEM",
];
/// Files the simulation counts per path a task covers.
const FILES_PER_PATH: i64 = 250;

fn task_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "DataRepositoryTaskNotFound",
        format!("Data repository task '{id}' does not exist."),
    )
}

pub fn task_json(t: &Task) -> Value {
    let mut report = json!({"Enabled": t.report_enabled});
    if let Some(p) = &t.report_path {
        report["Path"] = json!(p);
        report["Format"] = json!("REPORT_CSV_20191124");
        report["Scope"] = json!("FAILED_FILES_ONLY");
    }
    let mut out = json!({
        "TaskId": t.id,
        "ResourceARN": t.arn,
        "Lifecycle": t.lifecycle.as_str(),
        "Type": t.task_type,
        "CreationTime": t.creation_time,
        "FileSystemId": t.file_system_id,
        "Paths": t.paths,
        "Report": report,
        "Tags": tags_json(&t.tags),
        "Status": {
            "TotalCount": t.total,
            "SucceededCount": t.succeeded,
            "FailedCount": t.failed,
            "LastUpdatedTime": epoch_seconds(),
        },
    });
    if let Some(v) = t.start_time {
        out["StartTime"] = json!(v);
    }
    if let Some(v) = t.end_time {
        out["EndTime"] = json!(v);
    }
    if let Some(days) = t.release_days {
        out["ReleaseConfiguration"] =
            json!({"DurationSinceLastAccess": {"Unit": "DAYS", "Value": days}});
    }
    if let Some(m) = &t.failure_message {
        out["FailureDetails"] = json!({"Message": m});
    }
    out
}

/// Whether `path` lies at or under `prefix` (both without their trailing slash).
fn under(path: &str, prefix: &str) -> bool {
    let (path, prefix) = (path.trim_end_matches('/'), prefix.trim_end_matches('/'));
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// Why a task's path is not valid (the task then fails): export and release paths are
/// relative to the mount point and must reach a linked directory; import paths are S3 paths
/// under a linked repository.
fn bad_path(kind: &str, path: &str, links: &[(String, String)]) -> Option<String> {
    let ok = if kind == "IMPORT_METADATA_FROM_REPOSITORY" {
        links.iter().any(|(_, repo)| under(path, repo))
    } else {
        let rel = path.trim_start_matches('/');
        rel.is_empty()
            || links.iter().any(|(fs_path, _)| {
                let linked = fs_path.trim_start_matches('/');
                under(rel, linked) || under(linked, rel)
            })
    };
    (!ok).then(|| {
        format!("Path {path} is not valid for this task: it is not in a linked data repository.")
    })
}

fn paths_of(req: &Value) -> Result<Vec<String>, ApiError> {
    let paths: Vec<String> = strings(req.get("Paths"))
        .into_iter()
        .map(str::to_string)
        .collect();
    if paths.len() > 100 {
        return Err(bad_request("Paths takes at most 100 paths."));
    }
    let forbidden = ['\0', '\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'];
    if let Some(p) = paths
        .iter()
        .find(|p| p.len() > 4096 || p.contains(&forbidden[..]))
    {
        return Err(bad_request(format!("Invalid path '{}'.", p.escape_debug())));
    }
    Ok(paths)
}

/// The report: `{Enabled}` required; when enabled, a path under a linked S3 path, and the
/// only format and scope.
fn report_of(req: &Value, links: &[(String, String)]) -> Result<(bool, Option<String>), ApiError> {
    let report = req
        .get("Report")
        .ok_or_else(|| bad_request("Report is required."))?;
    let enabled = report
        .get("Enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad_request("Report.Enabled is required."))?;
    if !enabled {
        return Ok((false, None));
    }
    let path = str_field(report, "Path")
        .ok_or_else(|| bad_request("Report.Path is required when the report is enabled."))?;
    if str_field(report, "Format") != Some("REPORT_CSV_20191124")
        || str_field(report, "Scope") != Some("FAILED_FILES_ONLY")
    {
        return Err(bad_request(
            "Report.Format must be REPORT_CSV_20191124 and Report.Scope FAILED_FILES_ONLY.",
        ));
    }
    if !links
        .iter()
        .any(|(_, repo)| under(path, repo) && !under(repo, path))
    {
        return Err(bad_request(format!(
            "The report path {path} must be inside a linked data repository path."
        )));
    }
    Ok((true, Some(path.to_string())))
}

fn release_days(req: &Value, kind: &str) -> Result<Option<i64>, ApiError> {
    let Some(d) = req
        .get("ReleaseConfiguration")
        .and_then(|r| r.get("DurationSinceLastAccess"))
    else {
        return Ok((kind == "RELEASE_DATA_FROM_FILESYSTEM").then_some(0));
    };
    if kind != "RELEASE_DATA_FROM_FILESYSTEM" {
        return Err(bad_request(
            "ReleaseConfiguration is only for release tasks.",
        ));
    }
    if str_field(d, "Unit").is_some_and(|u| u != "DAYS") {
        return Err(bad_request("DurationSinceLastAccess.Unit must be DAYS."));
    }
    match d.get("Value").map(Value::as_i64) {
        None => Ok(Some(0)),
        Some(Some(v)) if v >= 0 => Ok(Some(v)),
        _ => Err(bad_request(
            "DurationSinceLastAccess.Value must be 0 or more.",
        )),
    }
}

/// The file system's linked paths, (FileSystemPath, DataRepositoryPath), of associations that
/// are not being deleted; refuses a file system that cannot take a task.
fn links_of(s: &State, fs_id: &str, kind: &str) -> Result<Vec<(String, String)>, ApiError> {
    let fs = s
        .file_systems
        .get(fs_id)
        .ok_or_else(|| fs_not_found(fs_id))?;
    if !matches!(fs.lifecycle, Lifecycle::Available | Lifecycle::Updating) {
        return Err(bad_request(format!(
            "File system {fs_id} is {}; it must be AVAILABLE.",
            fs.lifecycle.as_str()
        )));
    }
    if kind == "RELEASE_DATA_FROM_FILESYSTEM" && fs.file_system_type_version == "2.10" {
        return Err(ApiError::new(
            400,
            "UnsupportedOperation",
            "Release tasks are not available on FSx for Lustre 2.10 file systems.",
        ));
    }
    let links: Vec<_> = s
        .associations
        .values()
        .filter(|a| a.file_system_id == fs_id && a.lifecycle != Lifecycle::Deleting)
        .collect();
    if links.is_empty() {
        return Err(bad_request(format!(
            "File system {fs_id} has no linked data repository; a data repository task needs one."
        )));
    }
    if kind == "EXPORT_TO_REPOSITORY"
        && let Some(a) = links.iter().find(|a| !a.auto_export.is_empty())
    {
        return Err(bad_request(format!(
            "Association {} exports automatically; automatic export and export tasks cannot run at the same time.",
            a.id
        )));
    }
    if let Some(t) = s
        .tasks
        .values()
        .find(|t| t.file_system_id == fs_id && t.lifecycle.running())
    {
        return Err(ApiError::new(
            400,
            "DataRepositoryTaskExecuting",
            format!(
                "Task {} is {} on file system {fs_id}. Wait until it has completed, then create the new task.",
                t.id,
                t.lifecycle.as_str()
            ),
        ));
    }
    Ok(links
        .iter()
        .map(|a| (a.file_system_path.clone(), a.data_repository_path.clone()))
        .collect())
}

pub fn create_task(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(done) = replay(&s.tokens, &s.tasks, token.as_ref(), &print, |t| {
        &t.fingerprint
    }) {
        return done.map(|t| json!({"DataRepositoryTask": task_json(t)}));
    }
    let kind = str_field(req, "Type").unwrap_or_default().to_string();
    if !TYPES.contains(&kind.as_str()) {
        return Err(bad_request(format!(
            "Type '{kind}' is not one of {}.",
            TYPES.join(", ")
        )));
    }
    let fs_id = str_field(req, "FileSystemId")
        .unwrap_or_default()
        .to_string();
    let paths = paths_of(req)?;
    let days = release_days(req, &kind)?;
    let links = links_of(s, &fs_id, &kind)?;
    let (report_enabled, report_path) = report_of(req, &links)?;
    let tags = tags_from(req)?;
    let fail_with = paths
        .iter()
        .find_map(|p| bad_path(&kind, p, &links))
        .or_else(|| (!s.fail_next_tasks.is_empty()).then(|| s.fail_next_tasks.remove(0)));
    let covered = if paths.is_empty() {
        links.len()
    } else {
        paths.len()
    };
    let id = s.new_id("task");
    let task = Task {
        arn: s.arn("task", &id),
        id: id.clone(),
        token: token.clone(),
        fingerprint: print,
        file_system_id: fs_id,
        task_type: kind,
        paths,
        report_enabled,
        report_path,
        release_days: days,
        tags,
        lifecycle: TaskLifecycle::Pending,
        creation_time: epoch_seconds(),
        start_time: None,
        end_time: None,
        total: if fail_with.is_some() {
            0
        } else {
            FILES_PER_PATH * covered as i64
        },
        succeeded: 0,
        failed: 0,
        failure_message: None,
        fail_with,
        started: None,
        until: Some(ctx.after(ctx.timing.task_pending_ms)),
        ended_at: None,
    };
    let out = json!({"DataRepositoryTask": task_json(&task)});
    if let Some(t) = token {
        s.tokens.insert(t, id.clone());
    }
    s.tasks.insert(id, task);
    Ok(out)
}

/// One filter of DescribeDataRepositoryTasks, as a test of a task.
type Keep = Box<dyn Fn(&Task) -> bool>;

/// Tasks by id, or by filters (file-system-id, task-lifecycle,
/// data-repository-association-id), 50 a page at most.
pub fn describe_tasks(s: &mut State, _ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let ids = strings(req.get("TaskIds"));
    if ids.len() > 50 {
        return Err(bad_request("TaskIds takes at most 50 ids."));
    }
    let filters = req
        .get("Filters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if filters.len() > 3 {
        return Err(bad_request("Filters takes at most 3 filters."));
    }
    let mut keep: Vec<Keep> = Vec::new();
    for f in &filters {
        let values = filter_values(s, f)?;
        match str_field(f, "Name") {
            Some("file-system-id") => {
                keep.push(Box::new(move |t| values.contains(&t.file_system_id)));
            }
            Some("task-lifecycle") => {
                keep.push(Box::new(move |t| {
                    values.iter().any(|v| v == t.lifecycle.as_str())
                }));
            }
            Some("data-repository-association-id") => {
                let systems: Vec<String> = values
                    .iter()
                    .filter_map(|v| s.associations.get(v))
                    .map(|a| a.file_system_id.clone())
                    .collect();
                keep.push(Box::new(move |t| systems.contains(&t.file_system_id)));
            }
            other => return Err(bad_request(format!("Unsupported filter {other:?}."))),
        }
    }
    let chosen: Vec<&Task> = if ids.is_empty() {
        s.tasks.values().collect()
    } else {
        ids.iter()
            .map(|id| s.tasks.get(*id).ok_or_else(|| task_not_found(id)))
            .collect::<Result<_, _>>()?
    };
    let found = chosen
        .into_iter()
        .filter(|t| keep.iter().all(|k| k(t)))
        .map(task_json)
        .collect();
    page(found, req, 50, "DataRepositoryTasks")
}

pub fn cancel_task(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "TaskId").unwrap_or_default().to_string();
    let until = ctx.after(ctx.timing.task_cancel_ms);
    let t = s.tasks.get_mut(&id).ok_or_else(|| task_not_found(&id))?;
    if !t.lifecycle.running() {
        return Err(ApiError::new(
            400,
            "DataRepositoryTaskEnded",
            format!(
                "Task {id} is {}; it can no longer be canceled.",
                t.lifecycle.as_str()
            ),
        ));
    }
    t.lifecycle = TaskLifecycle::Canceling;
    t.until = Some(until);
    Ok(json!({"Lifecycle": "CANCELING", "TaskId": id}))
}
