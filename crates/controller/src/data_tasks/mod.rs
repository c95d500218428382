//! `LustreDataTask`s: FSx data repository tasks (export, import, release) declared as objects.
//! A controller of their own beside the workspaces', in the same process and leadership:
//! woken by its tasks, by their workspaces' changes and by the task poller.

mod reconcile;
mod request;
pub(crate) mod status;

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use lustre_api::LustreDataTask;

use crate::beside::{Changes, report, wired};
use crate::context::Context;
use crate::controller::scoped;
use crate::follow::TaskPoller;
use crate::kept::Workspaces;

/// What a data task's reconcile reads besides the shared context.
pub(crate) struct TaskCtx {
    pub ctx: Arc<Context>,
    /// The workspaces' watch (shared with their controller).
    pub workspaces: Workspaces,
    /// The data tasks' own watch (for the queue of a file system).
    pub tasks: Store<LustreDataTask>,
    pub poller: TaskPoller,
}

/// Runs the data tasks' controller until `shutdown` resolves.
pub(crate) async fn run(
    ctx: Arc<Context>,
    workspaces: Workspaces,
    changes: Changes,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(wake) = ctx.tasks.take_wakes() else {
        return;
    };
    let poller = ctx.tasks.poller.clone();
    let poll_task = tokio::spawn(poller.clone().run(ctx.config.intervals.pending));
    let controller = Controller::new(scoped::<LustreDataTask>(&ctx), watcher::Config::default());
    let tasks = controller.store();
    let by_workspace = tasks.clone();
    let cx = Arc::new(TaskCtx {
        ctx: ctx.clone(),
        workspaces,
        tasks,
        poller,
    });
    let naming = move |ns: &str, name: &str| naming(&by_workspace, ns, name);
    wired(&ctx, controller, naming, changes, Some(wake), shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, cx)
        .for_each(|r| report("LustreDataTask", r))
        .await;
    poll_task.abort();
}

/// The tasks that name a workspace.
fn naming(tasks: &Store<LustreDataTask>, ns: &str, name: &str) -> Vec<ObjectRef<LustreDataTask>> {
    tasks
        .state()
        .iter()
        .filter(|t| t.namespace().as_deref() == Some(ns) && t.spec.workspace == name)
        .map(|t| ObjectRef::from_obj(&**t))
        .collect()
}
