//! One backup object's reconcile: wait for its workspace to be Ready, refuse (with no AWS
//! call) what FSx cannot back up, start the backup once (the token is the object's UID),
//! follow it through the poller and write what FSx shows; on delete, delete the backup
//! unless the object retains it.
//!
//! Nothing in the object's status or annotations is trusted on its own: a backup id is
//! followed, restored or deleted only when FSx shows that backup tagged with this object's UID
//! and namespace (a tenant who may write status cannot point the operator at another
//! namespace's backup).

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use lustre_api::constants::{BACKUP_FINALIZER, FINAL_BACKUP_FILE_SYSTEM_ANNOTATION, tags};
use lustre_api::{BackupPhase, DeletionPolicy, LustreWorkspace, LustreWorkspaceBackup, Phase};
use lustre_cloud::{Backup, Cloud, ErrorKind};

use super::status::{at, observed};
use super::{BackupCtx, request};
use crate::error::{Error, Step};
use crate::observe::{Class, resolve_class};
use crate::work_write::{set_finalizer, write_status};

pub(crate) async fn reconcile(
    b: Arc<LustreWorkspaceBackup>,
    cx: Arc<BackupCtx>,
) -> Result<Requeue, Error> {
    if !cx.ctx.caches.ready().await {
        return Ok(Requeue::requeue(cx.ctx.config.intervals.pending));
    }
    if b.metadata.deletion_timestamp.is_some() {
        return remove(&cx, &b).await;
    }
    if let Some(id) = started_id(&cx, &b) {
        return follow(&cx, &b, &id).await;
    }
    let status = b.status.clone().unwrap_or_default();
    if status.phase == Some(BackupPhase::Failed) {
        return Ok(Requeue::await_change());
    }
    if b.spec.final_backup == Some(true) {
        return find_final(&cx, &b).await;
    }
    let Some(ws) = workspace(&cx, &b) else {
        let note = format!(
            "waiting for workspace {} in this namespace",
            b.spec.workspace
        );
        return wait(&cx, &b, note).await;
    };
    if ws.metadata.deletion_timestamp.is_some() {
        let note = format!("workspace {} is being deleted", ws.name_any());
        return fail(&cx, &b, "WorkspaceDeleting", note).await;
    }
    let Class::Found(class) = resolve_class(&cx.ctx, &ws) else {
        return wait(&cx, &b, "waiting for the workspace's class".into()).await;
    };
    if let Err(why) = request::backupable(&ws, &class) {
        return fail(&cx, &b, "Refused", why).await;
    }
    let ws_status = ws.status.clone().unwrap_or_default();
    let (Some(Phase::Ready), Some(fs)) = (ws_status.phase, ws_status.file_system_id.as_deref())
    else {
        let phase = ws_status.phase.map_or("Pending", Phase::as_str);
        let note = format!(
            "waiting for workspace {} to be Ready (it is {phase})",
            ws.name_any()
        );
        return wait(&cx, &b, note).await;
    };
    let cloud = cx.ctx.cloud_for(Some(&*class)).await;
    if !request::file_system_is_workspaces(&cloud, fs, &ws).await? {
        let note = format!(
            "file system {fs} is not confirmed as workspace {}'s yet",
            ws.name_any()
        );
        return wait(&cx, &b, note).await;
    }
    set_finalizer(&cx.ctx, &*b, BACKUP_FINALIZER, true, None).await?;
    let request = request::request(&b, &ws, &class, fs);
    start(&cx, &b, &request, &cloud, class.spec.region.clone()).await
}

/// Starts the backup (the finalizer is on) and follows it; a backup under way waits, a
/// refusal fails the object.
async fn start(
    cx: &BackupCtx,
    b: &Arc<LustreWorkspaceBackup>,
    request: &lustre_cloud::BackupRequest,
    cloud: &Arc<dyn Cloud>,
    region: Option<String>,
) -> Result<Requeue, Error> {
    let fs = request.file_system_id.as_str();
    match cloud.create_backup(request).await {
        Ok(started) => {
            crate::act::kill_point("CreateBackup");
            let note = format!("backup {} of {fs} started", started.id);
            cx.ctx
                .publish(&**b, EventType::Normal, "Started", note)
                .await;
            track(cx, b, cloud, region, started).await
        }
        Err(e) if e.kind == ErrorKind::DependencyViolation => {
            let note = format!("another backup of {fs} is under way: {}", e.message);
            wait(cx, b, note).await
        }
        Err(e) if matches!(e.kind, ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
            set_finalizer(&cx.ctx, &**b, BACKUP_FINALIZER, false, None).await?;
            fail(
                cx,
                b,
                "Refused",
                format!("FSx refused the backup: {}", e.message),
            )
            .await
        }
        Err(e) => Err(Step::Act("starting the backup").cloud()(e)),
    }
}

/// Follows a backup found or started for this object and writes what FSx shows.
async fn track(
    cx: &BackupCtx,
    b: &Arc<LustreWorkspaceBackup>,
    cloud: &Arc<dyn Cloud>,
    region: Option<String>,
    seen: Backup,
) -> Result<Requeue, Error> {
    if !seen.lifecycle.is_finished() {
        let object = ObjectRef::from_obj(&**b);
        cx.poller
            .follow(object, region.clone(), cloud.clone(), seen.clone());
    }
    let mut next = observed(b, &seen);
    next.region = region;
    write_status(&cx.ctx, &**b, next).await?;
    if seen.lifecycle.is_finished() {
        cx.poller.forget(&seen.id);
        announce(cx, b, &seen).await;
        return Ok(Requeue::await_change());
    }
    Ok(Requeue::requeue(cx.ctx.config.intervals.drift))
}

/// Follows a started backup: the poller's last observation (or one describe after a
/// restart).
async fn follow(
    cx: &BackupCtx,
    b: &Arc<LustreWorkspaceBackup>,
    id: &str,
) -> Result<Requeue, Error> {
    let region = region(cx, b);
    let cloud = cx.ctx.clouds.cloud(region.as_deref()).await;
    let seen = match cx.poller.seen(id) {
        Some(seen) => Some(seen),
        None => describe(&cloud, id).await?,
    };
    let Some(seen) = seen.filter(|s| ours(s, b)) else {
        cx.poller.forget(id);
        let note = format!("FSx backup {id} is gone, or not this object's");
        return fail(cx, b, "BackupLost", note).await;
    };
    if seen.lifecycle.is_finished() && shown(b, &seen) {
        cx.poller.forget(id);
        return Ok(Requeue::await_change());
    }
    track(cx, b, &cloud, region, seen).await
}

/// Whether the status already shows this finished observation (nothing to write or say).
fn shown(b: &LustreWorkspaceBackup, seen: &Backup) -> bool {
    b.status.as_ref().and_then(|s| s.lifecycle.as_deref()) == Some(seen.lifecycle.as_str())
}

/// A final backup's object: find the backup the workspace's deletion took, tagged with this
/// object's UID, among the backups of the file system its annotation names.
async fn find_final(cx: &BackupCtx, b: &Arc<LustreWorkspaceBackup>) -> Result<Requeue, Error> {
    let Some(fs) = b
        .annotations()
        .get(FINAL_BACKUP_FILE_SYSTEM_ANNOTATION)
        .cloned()
    else {
        let note = "no file system is named: only the operator makes final-backup objects";
        return fail(cx, b, "NotAFinalBackup", note.to_string()).await;
    };
    let region = region(cx, b);
    let cloud = cx.ctx.clouds.cloud(region.as_deref()).await;
    match tagged_for(&cloud, &fs, b).await? {
        Some(seen) => {
            set_finalizer(&cx.ctx, &**b, BACKUP_FINALIZER, true, None).await?;
            track(cx, b, &cloud, region, seen).await
        }
        None => {
            let note = format!(
                "waiting for the final backup of {fs}, taken as the workspace's file system is deleted"
            );
            wait(cx, b, note).await
        }
    }
}

/// On delete: the backup goes with the object unless it is retained; one still being made
/// or restored from is deleted once FSx lets it go.
async fn remove(cx: &BackupCtx, b: &Arc<LustreWorkspaceBackup>) -> Result<Requeue, Error> {
    let uid = b.uid().unwrap_or_default();
    let retain = b.spec.deletion_policy == Some(DeletionPolicy::Retain);
    let has_finalizer = b.finalizers().iter().any(|f| f == BACKUP_FINALIZER);
    if !retain && has_finalizer {
        let region = region(cx, b);
        let cloud = cx.ctx.clouds.cloud(region.as_deref()).await;
        let found = match started_id(cx, b) {
            Some(id) => describe(&cloud, &id).await?.filter(|s| ours(s, b)),
            // Started by a process that died before writing the id: found by its tag.
            None => match b
                .status
                .as_ref()
                .and_then(|s| s.file_system_id.clone())
                .or_else(|| workspace(cx, b)?.status.as_ref()?.file_system_id.clone())
            {
                Some(fs) => tagged_for(&cloud, &fs, b).await?,
                None => None,
            },
        };
        if let Some(backup) = found {
            match cloud.delete_backup(&backup.id).await {
                Ok(()) => {
                    let note = format!("deleted backup {} with the object", backup.id);
                    cx.ctx
                        .publish(&**b, EventType::Normal, "Deleted", note)
                        .await;
                }
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) if e.kind == ErrorKind::DependencyViolation => {
                    let note = format!(
                        "deleting backup {} once FSx lets it go: {}",
                        backup.id, e.message
                    );
                    write_status(
                        &cx.ctx,
                        &**b,
                        at(b, BackupPhase::Deleting, "Deleting", note),
                    )
                    .await?;
                    return Ok(Requeue::requeue(cx.ctx.config.intervals.pending));
                }
                Err(e) => return Err(Step::Act("deleting the backup").cloud()(e)),
            }
            cx.poller.forget(&backup.id);
        }
    }
    set_finalizer(&cx.ctx, &**b, BACKUP_FINALIZER, false, None).await?;
    cx.poller.deleted(&uid);
    Ok(Requeue::await_change())
}

/// The backup of this object: the id in status, or the one this process just started.
fn started_id(cx: &BackupCtx, b: &LustreWorkspaceBackup) -> Option<String> {
    let in_status = b.status.as_ref().and_then(|s| s.backup_id.clone());
    in_status.or_else(|| cx.poller.started_for(&b.uid().unwrap_or_default()))
}

/// The region of the backup: as recorded (status, or the final backup's annotation), else
/// the workspace's class's.
fn region(cx: &BackupCtx, b: &LustreWorkspaceBackup) -> Option<String> {
    b.status
        .as_ref()
        .and_then(|s| s.region.clone())
        .or_else(|| b.annotations().get(super::REGION_ANNOTATION).cloned())
        .or_else(|| {
            let ws = workspace(cx, b)?;
            match resolve_class(&cx.ctx, &ws) {
                Class::Found(c) => c.spec.region.clone(),
                _ => None,
            }
        })
}

/// One describe of a backup by id (`None`: FSx knows no such backup).
async fn describe(cloud: &Arc<dyn Cloud>, id: &str) -> Result<Option<Backup>, Error> {
    let found = cloud
        .describe_backups(&[id.to_string()])
        .await
        .map_err(Step::Act("describing the backup").cloud())?;
    Ok(found.into_iter().find(|b| b.id == id))
}

/// The backup of file system `fs` tagged with this object's UID.
async fn tagged_for(
    cloud: &Arc<dyn Cloud>,
    fs: &str,
    b: &LustreWorkspaceBackup,
) -> Result<Option<Backup>, Error> {
    let found = cloud
        .backups_of(&[fs.to_string()])
        .await
        .map_err(Step::Act("listing the file system's backups").cloud())?;
    Ok(found.into_iter().find(|s| ours(s, b)))
}

/// Whether FSx's backup is this object's: tagged with its UID and namespace.
fn ours(seen: &Backup, b: &LustreWorkspaceBackup) -> bool {
    seen.tags.get(tags::BACKUP_UID) == b.uid().as_ref()
        && seen.tags.get(tags::NAMESPACE) == b.namespace().as_ref()
}

/// The workspace the backup names, in its own namespace.
fn workspace(cx: &BackupCtx, b: &LustreWorkspaceBackup) -> Option<Arc<LustreWorkspace>> {
    let ns = b.namespace()?;
    cx.workspaces
        .get(&ObjectRef::new(&b.spec.workspace).within(&ns))
}

/// Pending with `note`; looked at again on the next change or poll interval.
async fn wait(cx: &BackupCtx, b: &LustreWorkspaceBackup, note: String) -> Result<Requeue, Error> {
    write_status(&cx.ctx, b, at(b, BackupPhase::Pending, "Waiting", note)).await?;
    Ok(Requeue::requeue(cx.ctx.config.intervals.pending))
}

/// Failed for `reason` (with no backup started); said once in a Warning Event.
async fn fail(
    cx: &BackupCtx,
    b: &LustreWorkspaceBackup,
    reason: &str,
    note: String,
) -> Result<Requeue, Error> {
    let first = b.status.as_ref().and_then(|s| s.phase) != Some(BackupPhase::Failed);
    write_status(&cx.ctx, b, at(b, BackupPhase::Failed, reason, note.clone())).await?;
    if first {
        cx.ctx.publish(b, EventType::Warning, reason, note).await;
    }
    Ok(Requeue::await_change())
}

/// The end of a backup, said once per process in an Event.
async fn announce(cx: &BackupCtx, b: &LustreWorkspaceBackup, seen: &Backup) {
    if !cx.poller.announce(&b.uid().unwrap_or_default()) {
        return;
    }
    let (kind, reason) = match seen.lifecycle {
        lustre_cloud::BackupLifecycle::Available => (EventType::Normal, "Available"),
        _ => (EventType::Warning, "BackupFailed"),
    };
    let note = observed(b, seen).message.unwrap_or_default();
    cx.ctx.publish(b, kind, reason, note).await;
}

/// Failed reconciles back off per object like workspaces'.
pub(crate) fn error_policy(
    b: Arc<LustreWorkspaceBackup>,
    error: &Error,
    cx: Arc<BackupCtx>,
) -> Requeue {
    crate::beside::backoff(&cx.ctx, &*b, error, "LustreWorkspaceBackup")
}
