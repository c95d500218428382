//! The controller's wiring: what wakes a workspace (its own changes, its claim, its class,
//! its namespace's labels, the poller, the pods that use its claim), and the tasks that run
//! beside it.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use lustre_api::constants::{DEFAULT_CLASS_ANNOTATION, labels};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cache;
use crate::context::Context;
use crate::reconcile::{error_policy, reconcile};

type Wake = UnboundedReceiver<ObjectRef<LustreWorkspace>>;

/// Runs the controller until `shutdown` resolves; `wake` is the poller's stream. Runs once
/// per process (the caches' watches start here).
pub async fn run(
    ctx: Arc<Context>,
    wake: Wake,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(caches) = cache::streams(&ctx) else {
        tracing::error!("the controller was started twice in one process");
        return;
    };
    let poll_task = tokio::spawn(ctx.poller.clone().run(ctx.config.intervals));
    let ready_task = tokio::spawn(ctx.caches.clone().mark_ready());
    // The workspaces' own watch, kept slim like the caches (see crate::cache).
    let (workspaces, writer) = reflector::store();
    let own = watcher(scoped::<LustreWorkspace>(&ctx), watcher::Config::default())
        .default_backoff()
        .modify(cache::slim)
        .reflect(writer)
        .applied_objects();
    let _ = ctx.workspaces.set(workspaces.clone());
    let controller = Controller::for_stream(own, workspaces.clone());
    let sweep_task = tokio::spawn(sweep_memory(ctx.clone(), workspaces.clone()));
    let pods_task = ctx
        .pods
        .clone()
        .map(|pods| tokio::spawn(crate::pods::run(ctx.clone(), pods)));
    let shutdown = futures::FutureExt::shared(shutdown);
    let tasks = tokio::spawn(crate::data_tasks::run(
        ctx.clone(),
        workspaces.clone(),
        shutdown.clone(),
    ));
    let backups = tokio::spawn(crate::backups::run(
        ctx.clone(),
        workspaces.clone(),
        shutdown.clone(),
    ));
    let grants = tokio::spawn(crate::shares::run(
        ctx.clone(),
        workspaces.clone(),
        shutdown.clone(),
    ));
    let (by_class, by_namespace, by_volume) = (workspaces.clone(), workspaces.clone(), workspaces);
    controller
        // Claims by owner reference, whatever their labels (a tenant may strip the operator's
        // label from its claim); the managed ones' phase (Bound) from their own watch.
        .owns_stream(caches.claims)
        .owns_stream(caches.managed_claims)
        .watches_stream(caches.classes, move |class| using_class(&by_class, &class))
        .watches_stream(
            caches
                .namespaces
                .predicate_filter(labels_and_limits, Default::default()),
            move |ns| in_namespace(&by_namespace, &ns.name_any()),
        )
        // A volume a finalizer held (pv-protection) wakes its workspace when it goes.
        .watches_stream(caches.volumes, move |pv| of_volume(&by_volume, &pv))
        // Kept current for the reconciles' reads; a StorageClass wakes no workspace.
        .watches_stream(caches.storage_classes, |_| None)
        .reconcile_on(poller_wakes(wake))
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| report(&ctx, result))
        .await;
    let _ = tasks.await;
    let _ = backups.await;
    let _ = grants.await;
    poll_task.abort();
    sweep_task.abort();
    if let Some(t) = pods_task {
        t.abort();
    }
    ready_task.abort();
}

/// An API for namespaced objects over the operator's namespaces: one namespace when it
/// watches exactly one, else all.
pub(crate) fn scoped<K>(ctx: &Context) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match ctx.config.namespaces.as_slice() {
        [only] => Api::namespaced(ctx.client.clone(), only),
        _ => Api::all(ctx.client.clone()),
    }
}

/// What of a namespace its workspaces depend on: its labels (a class's `allowedNamespaces`)
/// and its own limits (`limits.workspaces.lustre.dev/<class>`); a change of either wakes them.
fn labels_and_limits<K: Resource>(ns: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ns.labels().hash(&mut h);
    ns.annotations()
        .iter()
        .filter(|(k, _)| k.starts_with(lustre_api::constants::NAMESPACE_LIMITS_ANNOTATION_PREFIX))
        .for_each(|kv| kv.hash(&mut h));
    Some(h.finish())
}

/// The workspace a volume was made for (its labels name it), if it is still known.
fn of_volume(
    workspaces: &Store<LustreWorkspace>,
    pv: &crate::slim::Volume,
) -> Option<ObjectRef<LustreWorkspace>> {
    let l = pv.labels();
    let r =
        ObjectRef::new(l.get(labels::WORKSPACE_NAME)?).within(l.get(labels::WORKSPACE_NAMESPACE)?);
    workspaces.get(&r).map(|_| r)
}

/// The workspaces a class change concerns: those naming it, or using the default.
fn using_class(
    workspaces: &Store<LustreWorkspace>,
    class: &LustreWorkspaceClass,
) -> Vec<ObjectRef<LustreWorkspace>> {
    let name = class.name_any();
    let is_default = class
        .annotations()
        .get(DEFAULT_CLASS_ANNOTATION)
        .map(String::as_str)
        == Some("true");
    workspaces
        .state()
        .iter()
        .filter(|ws| match ws.spec.class_name.as_deref() {
            Some(n) => n == name,
            None => {
                is_default
                    || ws.status.as_ref().and_then(|s| s.class_name.as_deref())
                        == Some(name.as_str())
            }
        })
        .map(|ws| ObjectRef::from_obj(&**ws))
        .collect()
}

/// The workspaces in a namespace.
fn in_namespace(
    workspaces: &Store<LustreWorkspace>,
    name: &str,
) -> Vec<ObjectRef<LustreWorkspace>> {
    workspaces
        .state()
        .iter()
        .filter(|ws| ws.metadata.namespace.as_deref() == Some(name))
        .map(|ws| ObjectRef::from_obj(&**ws))
        .collect()
}

fn poller_wakes(wake: Wake) -> impl Stream<Item = ObjectRef<LustreWorkspace>> {
    futures::stream::unfold(
        wake,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    )
}

type Reconciled = Result<
    (ObjectRef<LustreWorkspace>, controller::Action),
    controller::Error<crate::error::Error, watcher::Error>,
>;

async fn report(ctx: &Context, result: Reconciled) {
    match result {
        Ok((obj, _)) => tracing::trace!(workspace = %obj, "reconciled"),
        // A wake-up for a workspace deleted meanwhile: nothing to do.
        Err(controller::Error::ObjectNotFound(obj)) => {
            tracing::debug!(workspace = %obj, "woken after deletion")
        }
        Err(e) => {
            ctx.metrics
                .failures
                .with_label_values(&["controller"])
                .inc();
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "controller stream error"
            );
        }
    }
}

/// Drops what the process remembers of workspaces that are gone without a cleanup it saw
/// finish (deleted before they ever got a finalizer, or deleted while another replica led),
/// once per drift interval.
async fn sweep_memory(ctx: Arc<Context>, workspaces: Store<LustreWorkspace>) {
    let mut tick = tokio::time::interval(ctx.config.intervals.drift);
    tick.tick().await;
    loop {
        tick.tick().await;
        if workspaces.wait_until_ready().await.is_err() {
            continue;
        }
        let live: HashSet<String> = workspaces
            .state()
            .iter()
            .filter_map(|ws| ws.uid())
            .collect();
        ctx.memory.retain(&live);
        // Claims idle for a day: their workspaces recorded it in status long ago.
        if let Some(pods) = &ctx.pods
            && let Ok(cutoff) =
                jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(24))
        {
            pods.prune(cutoff);
        }
    }
}
