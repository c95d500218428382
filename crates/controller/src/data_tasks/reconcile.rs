//! One data task's reconcile: wait for its workspace and for the file system's earlier
//! tasks, start the FSx task (once: the token is the object's UID), follow it through the
//! poller, and write what it did; on delete, cancel it if it still runs.
//!
//! Nothing in the task's status is trusted on its own: a task id in status is followed or
//! canceled only when FSx shows that task on this workspace's file system, tagged with this
//! workspace's UID and namespace (a tenant who may write status cannot point the operator at
//! another namespace's task).

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use lustre_api::constants::tags;
use lustre_api::{DataTaskPhase, LustreDataTask, LustreWorkspace, Phase};
use lustre_cloud::{Cloud, DataTask, ErrorKind, TaskLifecycle};

use super::status::{failed, observed, pending};
use super::{TaskCtx, request};
use crate::error::{Error, Step};
use crate::observe::{Class, resolve_class};
use crate::work_write::{set_finalizer, write_status};
use lustre_api::constants::TASK_FINALIZER;

pub(crate) async fn reconcile(
    task: Arc<LustreDataTask>,
    cx: Arc<TaskCtx>,
) -> Result<Requeue, Error> {
    if !cx.ctx.caches.ready().await {
        return Ok(Requeue::requeue(cx.ctx.config.intervals.pending));
    }
    let status = task.status.clone().unwrap_or_default();
    if task.metadata.deletion_timestamp.is_some() {
        return cancel(&task, &cx).await;
    }
    if status.phase.is_some_and(DataTaskPhase::is_finished) {
        return Ok(Requeue::await_change());
    }
    let Some(ws) = workspace(&cx, &task) else {
        let note = format!(
            "waiting for workspace {} in this namespace",
            task.spec.workspace
        );
        return wait(&cx, &task, note).await;
    };
    if ws.metadata.deletion_timestamp.is_some() && status.task_id.is_none() {
        let note = format!("workspace {} is being deleted", ws.name_any());
        return finish(&cx, &task, failed(&task, "WorkspaceDeleting", note)).await;
    }
    let Class::Found(class) = resolve_class(&cx.ctx, &ws) else {
        return wait(&cx, &task, "waiting for the workspace's class".into()).await;
    };
    let cloud = cx.ctx.cloud_for(Some(&*class)).await;
    if let Some(id) = started_id(&cx, &task).as_deref() {
        return follow(&cx, &task, &ws, &cloud, id, class.spec.region.clone()).await;
    }
    let ws_status = ws.status.clone().unwrap_or_default();
    let (Some(Phase::Ready), Some(fs)) = (ws_status.phase, ws_status.file_system_id.as_deref())
    else {
        let phase = ws_status.phase.map_or("Pending", Phase::as_str);
        let note = format!(
            "waiting for workspace {} to be Ready (it is {phase})",
            ws.name_any()
        );
        return wait(&cx, &task, note).await;
    };
    let request = match request::request(&task, &ws, &class, fs) {
        Ok(r) => r,
        Err(note) => return finish(&cx, &task, failed(&task, "Invalid", note)).await,
    };
    if let Some(earlier) = queued_behind(&cx, &task) {
        let note = format!("queued: data task {earlier} runs first on this file system");
        return wait(&cx, &task, note).await;
    }
    set_finalizer(&cx.ctx, &*task, TASK_FINALIZER, true, Some(&*ws)).await?;
    start(&cx, &task, &request, &cloud, class.spec.region.clone()).await
}

/// Starts the FSx task (the finalizer is on) and follows it; a busy file system waits, a
/// refusal ends the task.
async fn start(
    cx: &TaskCtx,
    task: &Arc<LustreDataTask>,
    request: &lustre_cloud::DataTaskRequest,
    cloud: &Arc<dyn Cloud>,
    region: Option<String>,
) -> Result<Requeue, Error> {
    let fs = request.file_system_id.as_str();
    match cloud.create_data_repository_task(request).await {
        Ok(started) => {
            cx.poller.follow(
                ObjectRef::from_obj(&**task),
                region,
                cloud.clone(),
                started.clone(),
            );
            let note = format!(
                "{} {} started on {fs}",
                task.spec.task_type.as_str(),
                started.id
            );
            cx.ctx
                .publish(&**task, EventType::Normal, "Started", note)
                .await;
            write_status(&cx.ctx, &**task, observed(task, &started)).await?;
            Ok(Requeue::requeue(cx.ctx.config.intervals.drift))
        }
        Err(e) if e.kind == ErrorKind::DependencyViolation => {
            let note = format!(
                "the file system is running another data repository task: {}",
                e.message
            );
            wait(cx, task, note).await
        }
        Err(e) if matches!(e.kind, ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
            let outcome = failed(
                task,
                "Refused",
                format!("FSx refused the task: {}", e.message),
            );
            finish(cx, task, outcome).await
        }
        Err(e) => Err(Step::Act("starting the data repository task").cloud()(e)),
    }
}

/// Follows a started task: the poller's last observation (or one describe after a restart),
/// written to status; a finished task is counted, announced and let go.
async fn follow(
    cx: &TaskCtx,
    task: &Arc<LustreDataTask>,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    id: &str,
    region: Option<String>,
) -> Result<Requeue, Error> {
    let seen = match cx.poller.seen(id) {
        Some(seen) => Some(seen),
        None => describe(cloud, id).await?,
    };
    let Some(seen) = seen.filter(|t| ours(t, ws, task)) else {
        let note = format!(
            "FSx task {id} is not a task of workspace {} (gone, or not this workspace's)",
            ws.name_any()
        );
        return finish(cx, task, failed(task, "TaskLost", note)).await;
    };
    if !seen.lifecycle.is_finished() && !cx.poller.follows(id) {
        cx.poller.follow(
            ObjectRef::from_obj(&**task),
            region,
            cloud.clone(),
            seen.clone(),
        );
    }
    let next = observed(task, &seen);
    if seen.lifecycle.is_finished() {
        cx.poller.forget(id);
        return finish(cx, task, next).await;
    }
    write_status(&cx.ctx, &**task, next).await?;
    Ok(Requeue::requeue(cx.ctx.config.intervals.drift))
}

/// On delete: a task still PENDING or EXECUTING is canceled (only one FSx shows as this
/// workspace's; one already CANCELING is not asked again), then the finalizer goes.
async fn cancel(task: &Arc<LustreDataTask>, cx: &TaskCtx) -> Result<Requeue, Error> {
    let status = task.status.clone().unwrap_or_default();
    let running = !status.phase.is_some_and(DataTaskPhase::is_finished);
    let uid = task.uid().unwrap_or_default();
    let started = started_id(cx, task);
    if let (true, Some(id), Some(ws)) = (running, started.as_deref(), workspace(cx, task)) {
        let class = match resolve_class(&cx.ctx, &ws) {
            Class::Found(c) => Some(c),
            _ => None,
        };
        let cloud = cx.ctx.cloud_for(class.as_deref()).await;
        let seen = describe(&cloud, id).await?;
        if seen.is_some_and(|t| {
            ours(&t, &ws, task)
                && matches!(
                    t.lifecycle,
                    TaskLifecycle::Pending | TaskLifecycle::Executing
                )
        }) {
            match cloud.cancel_data_repository_task(id).await {
                Ok(_) => {
                    let note = format!("{id} canceled: the LustreDataTask was deleted");
                    cx.ctx
                        .publish(&**task, EventType::Normal, "Canceled", note)
                        .await;
                    if cx.poller.announce(&uid) {
                        let kind = task.spec.task_type.as_str();
                        cx.ctx.metrics.tasks.finished(kind, "Canceled", None);
                    }
                }
                Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::NotFound) => {}
                Err(e) => return Err(Step::Act("canceling the data repository task").cloud()(e)),
            }
        }
        cx.poller.forget(id);
    }
    set_finalizer(&cx.ctx, &**task, TASK_FINALIZER, false, None).await?;
    cx.poller.deleted(&uid);
    Ok(Requeue::await_change())
}

/// The FSx task of this object: the id in status, or the one this process just started (its
/// status write not seen yet).
fn started_id(cx: &TaskCtx, task: &LustreDataTask) -> Option<String> {
    let in_status = task.status.as_ref().and_then(|s| s.task_id.clone());
    in_status.or_else(|| cx.poller.started_for(&task.uid().unwrap_or_default()))
}

/// One describe of a task by id (`None`: FSx knows no such task).
async fn describe(cloud: &Arc<dyn Cloud>, id: &str) -> Result<Option<DataTask>, Error> {
    let found = cloud
        .describe_data_repository_tasks(&[id.to_string()])
        .await
        .map_err(Step::Act("describing the data repository task").cloud())?;
    Ok(found.into_iter().find(|t| t.id == id))
}

/// Whether FSx's task is this workspace's: on its file system, tagged with its UID and
/// namespace.
fn ours(t: &DataTask, ws: &LustreWorkspace, task: &LustreDataTask) -> bool {
    let fs = ws.status.as_ref().and_then(|s| s.file_system_id.as_deref());
    Some(t.file_system_id.as_str()) == fs
        && t.tags.get(tags::UID) == ws.uid().as_ref()
        && t.tags.get(tags::NAMESPACE) == task.namespace().as_ref()
}

/// The workspace the task names, in the task's own namespace.
fn workspace(cx: &TaskCtx, task: &LustreDataTask) -> Option<Arc<LustreWorkspace>> {
    let ns = task.namespace()?;
    cx.workspaces
        .get(&ObjectRef::new(&task.spec.workspace).within(&ns))
}

/// The first task of the same workspace, created before this one (then by name), that has
/// not finished: tasks of one file system run one after another.
fn queued_behind(cx: &TaskCtx, task: &LustreDataTask) -> Option<String> {
    let key = |t: &LustreDataTask| (t.creation_timestamp().map(|c| c.0), t.name_any());
    let mine = key(task);
    cx.tasks
        .state()
        .iter()
        .filter(|t| t.namespace() == task.namespace() && t.spec.workspace == task.spec.workspace)
        .filter(|t| t.uid() != task.uid() && t.metadata.deletion_timestamp.is_none())
        .filter(|t| {
            !t.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(DataTaskPhase::is_finished)
        })
        .filter(|t| key(t) < mine || t.status.as_ref().is_some_and(|s| s.task_id.is_some()))
        .min_by_key(|t| key(t))
        .map(|t| t.name_any())
}

/// Pending with `note`; looked at again on the next change or poll interval.
async fn wait(cx: &TaskCtx, task: &LustreDataTask, note: String) -> Result<Requeue, Error> {
    write_status(&cx.ctx, task, pending(task, note)).await?;
    Ok(Requeue::requeue(cx.ctx.config.intervals.pending))
}

/// A final status: written, counted, announced; the finalizer goes.
async fn finish(
    cx: &TaskCtx,
    task: &LustreDataTask,
    status: lustre_api::LustreDataTaskStatus,
) -> Result<Requeue, Error> {
    let phase = status.phase.unwrap_or(DataTaskPhase::Failed);
    let note = status.message.clone().unwrap_or_default();
    let kind = task.spec.task_type.as_str();
    let took = match (&status.start_time, &status.completion_time) {
        (Some(s), Some(e)) => Some((e.0.as_second() - s.0.as_second()).max(0) as f64),
        _ => None,
    };
    write_status(&cx.ctx, task, status).await?;
    if cx.poller.announce(&task.uid().unwrap_or_default()) {
        cx.ctx.metrics.tasks.finished(kind, phase.as_str(), took);
        let type_ = if phase == DataTaskPhase::Succeeded {
            EventType::Normal
        } else {
            EventType::Warning
        };
        // An export is also news on its workspace (`kubectl describe lws` lists it).
        if task.spec.task_type == lustre_api::DataTaskType::Export
            && let Some(ws) = workspace(cx, task)
        {
            let reason = match type_ {
                EventType::Normal => lustre_api::constants::reason::EXPORTED,
                EventType::Warning => lustre_api::constants::reason::EXPORT_FAILED,
            };
            let note = format!("LustreDataTask {}: {note}", task.name_any());
            cx.ctx.publish(&*ws, type_, reason, note).await;
        }
        cx.ctx.publish(task, type_, phase.as_str(), note).await;
    }
    set_finalizer(&cx.ctx, task, TASK_FINALIZER, false, None).await?;
    Ok(Requeue::await_change())
}

/// Failed reconciles back off per object like workspaces'.
pub(crate) fn error_policy(task: Arc<LustreDataTask>, error: &Error, cx: Arc<TaskCtx>) -> Requeue {
    crate::beside::backoff(&cx.ctx, &*task, error, "LustreDataTask")
}
