//! What the controllers beside the workspaces' (data tasks, backups, grants) share: their
//! wiring (woken by their own objects, by the changes of the workspaces they name, and by
//! their poller), the logging of their results, the back-off of a failed reconcile, and how
//! their statuses write conditions and times.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lustre_api::LustreWorkspace;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::context::Context;
use crate::error::Error;

/// The changes of the workspaces, told by the workspaces' own watch once its store has them
/// (the one watch of workspaces in the process): the workspace changed or deleted.
pub(crate) type Changes = UnboundedReceiver<ObjectRef<LustreWorkspace>>;

/// `controller` woken also by the `changes` of the workspaces (status included: an object
/// waiting for its workspace to be Ready) that `naming` maps to its objects (by the
/// workspace's namespace and name), and by `wake`, with the workspaces' concurrency, until
/// `shutdown` resolves.
pub(crate) fn wired<K>(
    ctx: &Context,
    controller: Controller<K>,
    naming: impl Fn(&str, &str) -> Vec<ObjectRef<K>> + Send + Sync + 'static,
    changes: Changes,
    wake: Option<UnboundedReceiver<ObjectRef<K>>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let named = received(changes).flat_map(move |ws| {
        futures::stream::iter(naming(
            ws.namespace.as_deref().unwrap_or_default(),
            &ws.name,
        ))
    });
    let mut wired = controller.reconcile_on(named);
    if let Some(wake) = wake {
        wired = wired.reconcile_on(received(wake));
    }
    wired
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
}

/// A channel's messages as a stream.
pub(crate) fn received<T: Send + 'static>(
    rx: UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// Logs a controller's failed run (the reconcile's own failure is logged by `backoff`).
pub(crate) async fn report<T, E: std::error::Error + 'static>(what: &'static str, r: Result<T, E>) {
    if let Err(e) = r {
        tracing::debug!(
            controller = what,
            error = &e as &dyn std::error::Error,
            "controller"
        );
    }
}

/// After a failed reconcile of `object`: logged with its step, then backed off per object like
/// workspaces' (a terminal error waits for a change).
pub(crate) fn backoff<K: Resource + ResourceExt>(
    ctx: &Arc<Context>,
    object: &K,
    error: &Error,
    what: &'static str,
) -> Requeue {
    tracing::warn!(
        object.kind = what,
        object.namespace = object.namespace().unwrap_or_default(),
        object.name = object.name_any(),
        step = %error.step,
        error = error as &dyn std::error::Error,
        "reconcile failed"
    );
    match ctx.retry_delay(&object.uid().unwrap_or_default(), error) {
        Some(delay) => Requeue::requeue(delay),
        None => Requeue::await_change(),
    }
}

/// An AWS time as Kubernetes writes it.
pub(crate) fn time(t: std::time::SystemTime) -> Option<Time> {
    jiff::Timestamp::try_from(t).ok().map(Time)
}

/// Conditions of these types with these statuses, all for `reason` saying `note`; each keeps
/// its transition time from `old` while its status stays.
pub(crate) fn conditions_of(
    old: &[Condition],
    generation: Option<i64>,
    which: [(&str, bool); 2],
    reason: &str,
    note: &str,
) -> Vec<Condition> {
    let now = Time(jiff::Timestamp::now());
    which
        .iter()
        .map(|&(kind, on)| {
            let status = if on { "True" } else { "False" };
            let since = old
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: kind.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message: note.to_string(),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}
