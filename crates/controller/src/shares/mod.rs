//! `LustreWorkspaceGrant`s: a namespace's acceptance of a share another namespace's workspace
//! offers (`spec.shares`). A controller of their own beside the workspaces', in the same
//! process and leadership: woken by its grants and by workspace changes; per accepted share
//! it makes a volume (the workspace's file system, narrowed to the sub-path, read-only where
//! asked) and a claim in the grant's namespace, and removes them when the share, the grant or
//! the workspace goes.

mod objects;
mod reconcile;
mod status;

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use lustre_api::LustreWorkspaceGrant;

pub(crate) use objects::GRANT_UID_LABEL;

use crate::beside::{Changes, report, wired};
use crate::context::Context;
use crate::controller::scoped;
use crate::kept::Workspaces;

/// What a grant's reconcile reads besides the shared context.
pub(crate) struct GrantCtx {
    pub ctx: Arc<Context>,
    /// The workspaces' watch (shared with their controller).
    pub workspaces: Workspaces,
}

/// What making a share's objects came to.
pub(crate) enum Made {
    /// The claim, this grant's: whether it is bound.
    Claim { bound: bool },
    /// A claim of that name exists and is not this grant's: nothing is taken over.
    Taken,
    /// The share changed: its objects are being removed, to be made again.
    Remaking,
}

/// Runs the grants' controller until `shutdown` resolves.
pub(crate) async fn run(
    ctx: Arc<Context>,
    workspaces: Workspaces,
    changes: Changes,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(
        scoped::<LustreWorkspaceGrant>(&ctx),
        watcher::Config::default(),
    );
    let grants = controller.store();
    let _ = ctx.grants.set(grants.clone());
    let cx = Arc::new(GrantCtx {
        ctx: ctx.clone(),
        workspaces,
    });
    // A workspace's change (its shares, its volume, its deletion) wakes the grants naming it.
    let naming = move |ns: &str, name: &str| naming(&grants, ns, name);
    wired(&ctx, controller, naming, changes, None, shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, cx)
        .for_each(|r| report("LustreWorkspaceGrant", r))
        .await;
}

/// The grants that name a workspace.
pub(crate) fn naming(
    grants: &Store<LustreWorkspaceGrant>,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<LustreWorkspaceGrant>> {
    grants
        .state()
        .iter()
        .filter(|g| g.spec.from_namespace == ns && g.spec.workspace == name)
        .map(|g| ObjectRef::from_obj(&**g))
        .collect()
}
