//! `LustreWorkspaceBackup`s: FSx backups of workspaces' file systems declared as objects. A
//! controller of their own beside the workspaces', in the same process and leadership: woken
//! by its objects, by their workspaces' changes and by the backup poller. The final backup a
//! workspace's deletion takes becomes one of these objects ([`final_backup`]).

pub(crate) mod final_backup;
mod reconcile;
mod request;
mod status;

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use lustre_api::LustreWorkspaceBackup;

use crate::beside::{Changes, report, wired};
use crate::context::Context;
use crate::controller::scoped;
use crate::follow::BackupPoller;
use crate::kept::Workspaces;

/// Annotation on a final backup's object: the region of the file system it was taken of.
pub(crate) const REGION_ANNOTATION: &str = "workspaces.lustre.dev/region";

/// What a backup's reconcile reads besides the shared context.
pub(crate) struct BackupCtx {
    pub ctx: Arc<Context>,
    /// The workspaces' watch (shared with their controller).
    pub workspaces: Workspaces,
    pub poller: BackupPoller,
}

/// Runs the backups' controller until `shutdown` resolves.
pub(crate) async fn run(
    ctx: Arc<Context>,
    workspaces: Workspaces,
    changes: Changes,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(wake) = ctx.backups.take_wakes() else {
        return;
    };
    let poller = ctx.backups.poller.clone();
    let poll_task = tokio::spawn(poller.clone().run(ctx.config.intervals.pending));
    let controller = Controller::new(
        scoped::<LustreWorkspaceBackup>(&ctx),
        watcher::Config::default(),
    );
    let backups = controller.store();
    let cx = Arc::new(BackupCtx {
        ctx: ctx.clone(),
        workspaces,
        poller,
    });
    let naming = move |ns: &str, name: &str| naming(&backups, ns, name);
    wired(&ctx, controller, naming, changes, Some(wake), shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, cx)
        .for_each(|r| report("LustreWorkspaceBackup", r))
        .await;
    poll_task.abort();
}

/// The backups that name a workspace and still wait for it.
fn naming(
    backups: &Store<LustreWorkspaceBackup>,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<LustreWorkspaceBackup>> {
    backups
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(ns) && b.spec.workspace == name)
        .filter(|b| b.status.as_ref().is_none_or(|s| s.backup_id.is_none()))
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
}
