//! The controller's wiring: what wakes a workspace (its own changes, its claim, its class,
//! its namespace's labels, the poller, the pods that use its claim), and the tasks that run
//! beside it.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use lustre_api::constants::{DEFAULT_CLASS_ANNOTATION, labels};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::cache;
use crate::context::Context;
use crate::kept::{Kept, Workspaces, kept_ref};
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
    let metrics = ctx.metrics.clone();
    let poll_task = tokio::spawn(ctx.poller.clone().run(ctx.config.intervals, move |took| {
        metrics.poll_round.observe(took.as_secs_f64())
    }));
    let ready_task = tokio::spawn(ctx.caches.clone().mark_ready());
    let (store, writer) = reflector::store::<Kept>();
    let (tasks_tx, tasks_rx) = unbounded_channel();
    let (backups_tx, backups_rx) = unbounded_channel();
    let (grants_tx, grants_rx) = unbounded_channel();
    let own = own_watch(&ctx, writer, &store, [tasks_tx, backups_tx, grants_tx]);
    let workspaces = Workspaces(store.clone());
    let _ = ctx.workspaces.set(workspaces.clone());
    let controller = Controller::for_stream(own, store.clone());
    let sweep_task = tokio::spawn(sweep_memory(ctx.clone(), workspaces.clone()));
    let pods_task = ctx
        .pods
        .clone()
        .map(|pods| tokio::spawn(crate::pods::run(ctx.clone(), pods)));
    let shutdown = futures::FutureExt::shared(shutdown);
    let tasks = tokio::spawn(crate::data_tasks::run(
        ctx.clone(),
        workspaces.clone(),
        tasks_rx,
        shutdown.clone(),
    ));
    let backups = tokio::spawn(crate::backups::run(
        ctx.clone(),
        workspaces.clone(),
        backups_rx,
        shutdown.clone(),
    ));
    let grants = tokio::spawn(crate::shares::run(
        ctx.clone(),
        workspaces,
        grants_rx,
        shutdown.clone(),
    ));
    let running = wired(controller, caches, store, wake, &ctx)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .trigger_backoff(Unpaused)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_kept, error_policy, ctx.clone());
    Busy::timed(Box::pin(running), &ctx.metrics, "all")
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

/// The workspaces' own watch, kept slim like the caches (see crate::cache) and compact
/// (crate::kept): the one watch of workspaces in the process. The controllers `beside` this
/// one (data tasks, backups, grants) hear of every change from it once the store has applied
/// it (a relist's objects: as they come, the store replaced when the relist is done, as with
/// the watches they each ran before; what the relist no longer names, as deleted); the
/// controller takes the applied ones.
fn own_watch(
    ctx: &Arc<Context>,
    writer: reflector::store::Writer<Kept>,
    store: &Store<Kept>,
    beside: [UnboundedSender<ObjectRef<LustreWorkspace>>; 3],
) -> impl Stream<Item = Result<Kept, watcher::Error>> + Send + use<> {
    let counting = ctx.clone();
    watcher(scoped::<LustreWorkspace>(ctx), watcher::Config::default())
        .default_backoff()
        .map_ok(kept)
        .reflect(writer)
        // A workspace deleted while the watch was away is told to those beside too.
        .flat_map(crate::relist::deletions(store.clone()))
        .try_filter_map(move |event| {
            // An object of a relist is in the store only once the relist is done: the event,
            // not the store, says whether it was applied or deleted.
            let (ws, applied) = match event {
                watcher::Event::Apply(ws) | watcher::Event::InitApply(ws) => (ws, true),
                watcher::Event::Delete(ws) => (ws, false),
                watcher::Event::Init | watcher::Event::InitDone => {
                    return std::future::ready(Ok(None));
                }
            };
            let r = ObjectRef::<LustreWorkspace>::new(&ws.name_any())
                .within(&ws.namespace().unwrap_or_default());
            for tx in &beside {
                let _ = tx.send(r.clone());
            }
            if applied {
                counting.metrics.woke("workspace", 1);
            }
            std::future::ready(Ok(applied.then_some(ws)))
        })
}

/// The controller woken by the caches' watches and the poller (each wake counted by source).
fn wired(
    controller: Controller<Kept>,
    caches: cache::Streams,
    store: Store<Kept>,
    wake: Wake,
    ctx: &Context,
) -> Controller<Kept> {
    let (by_class, by_namespace, by_volume) = (store.clone(), store.clone(), store);
    let m = || ctx.metrics.clone();
    let (m1, m2, m3, m4, m5, m6) = (m(), m(), m(), m(), m(), m());
    let metrics = &ctx.metrics;
    let poller = ctx.poller.clone();
    controller
        // Claims by owner reference, whatever their labels (a tenant may strip the operator's
        // label from its claim); the managed ones' phase (Bound) from their own watch.
        .watches_stream(Busy::timed(caches.claims, metrics, "watches"), move |c| {
            counted(&m1, "claim", owner(&c))
        })
        .watches_stream(
            Busy::timed(caches.managed_claims, metrics, "watches"),
            move |c| counted(&m2, "claim", owner(&c)),
        )
        .watches_stream(
            Busy::timed(caches.classes, metrics, "watches"),
            move |class| counted(&m3, "class", using_class(&by_class, &class)),
        )
        .watches_stream(
            Busy::timed(caches.namespaces, metrics, "watches")
                .predicate_filter(labels_and_limits, Default::default()),
            move |ns| {
                counted(
                    &m4,
                    "namespace",
                    in_namespace(&by_namespace, &ns.name_any()),
                )
            },
        )
        // A volume a finalizer held (pv-protection) wakes its workspace when it goes.
        .watches_stream(Busy::timed(caches.volumes, metrics, "watches"), move |pv| {
            counted(&m5, "volume", of_volume(&by_volume, &pv))
        })
        // Kept current for the reconciles' reads; a StorageClass wakes no workspace.
        .watches_stream(
            Busy::timed(caches.storage_classes, metrics, "watches"),
            |_| None,
        )
        .reconcile_on(crate::beside::received(wake).map(move |r| {
            m6.woke("poller", 1);
            let uid = r.extra.uid.as_deref().unwrap_or_default();
            if let Some(waited) = poller.wake_age(uid) {
                m6.wake_received.observe(waited.as_secs_f64());
            }
            kept_ref(&r)
        }))
}

/// The back-off of the controller's merged wakes: none. Every watch that wakes workspaces
/// backs off on its own after an error (`default_backoff` on each: the workspaces' own and
/// every cache's; the poller's channel has no errors), while kube-runtime's default for the
/// merged stream paused all of them together after any one's error (0.8 s, doubling while
/// errors came in a row): no cache was updated and no poller's wake taken in meanwhile, so
/// one watch's 410 Gone froze what every reconcile reads. (The controllers beside this one
/// keep that default: their main watch, made by kube-runtime, has no back-off of its own.)
struct Unpaused;

impl Iterator for Unpaused {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<std::time::Duration> {
        Some(std::time::Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for Unpaused {
    fn reset(&mut self) {}
}

/// A stream whose polls add their wall time to the controller's busy time (one `part` of
/// `lustre_operator_controller_busy_seconds_total`).
struct Busy<S> {
    inner: S,
    busy: prometheus::core::GenericCounter<prometheus::core::AtomicF64>,
}

impl<S: Stream + Unpin> Busy<S> {
    fn timed(inner: S, metrics: &crate::metrics::Metrics, part: &str) -> Self {
        let busy = metrics.controller_busy.with_label_values(&[part]);
        Self { inner, busy }
    }
}

impl<S: Stream + Unpin> Stream for Busy<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        let started = std::time::Instant::now();
        let polled = self.inner.poll_next_unpin(cx);
        self.busy.inc_by(started.elapsed().as_secs_f64());
        polled
    }
}

/// A watch event of a workspace, slimmed (see crate::cache) and kept compact.
fn kept(event: watcher::Event<LustreWorkspace>) -> watcher::Event<Kept> {
    use watcher::Event;
    let keep = |mut ws: LustreWorkspace| {
        cache::slim(&mut ws);
        Kept::keep(ws)
    };
    match event {
        Event::Apply(ws) => Event::Apply(keep(ws)),
        Event::Delete(ws) => Event::Delete(keep(ws)),
        Event::Init => Event::Init,
        Event::InitApply(ws) => Event::InitApply(keep(ws)),
        Event::InitDone => Event::InitDone,
    }
}

/// [`reconcile`] of the workspace kept.
async fn reconcile_kept(
    kept: Arc<Kept>,
    ctx: Arc<Context>,
) -> Result<controller::Action, crate::error::Error> {
    let _running = crate::metrics::Running::start(&ctx.metrics);
    match crate::kept::decoded(&kept) {
        Some(ws) => reconcile(Arc::new(ws), ctx).await,
        // Logged; looked at again when it changes.
        None => Ok(controller::Action::await_change()),
    }
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

/// `wakes`, counted as woken by `source`.
fn counted<I: IntoIterator>(
    metrics: &crate::metrics::Metrics,
    source: &str,
    wakes: I,
) -> Vec<I::Item> {
    let wakes: Vec<_> = wakes.into_iter().collect();
    metrics.woke(source, wakes.len());
    wakes
}

/// The workspaces an object names as owners (kube-runtime's `owns` relation).
fn owner<K: Resource>(obj: &K) -> Vec<ObjectRef<Kept>> {
    let (api_version, kind) = (Kept::api_version(&()), Kept::kind(&()));
    let Some(ns) = obj.namespace() else {
        return Vec::new();
    };
    obj.owner_references()
        .iter()
        .filter(|o| o.kind == kind && o.api_version == api_version)
        .map(|o| ObjectRef::new(&o.name).within(&ns))
        .collect()
}

/// The workspace a volume was made for (its labels name it), if it is still known.
fn of_volume(workspaces: &Store<Kept>, pv: &crate::slim::Volume) -> Option<ObjectRef<Kept>> {
    let l = &pv.labels;
    let r =
        ObjectRef::new(l.get(labels::WORKSPACE_NAME)?).within(l.get(labels::WORKSPACE_NAMESPACE)?);
    workspaces.get(&r).map(|_| r)
}

/// The workspaces a class change concerns: those naming it, or using the default.
fn using_class(workspaces: &Store<Kept>, class: &LustreWorkspaceClass) -> Vec<ObjectRef<Kept>> {
    let name = class.name_any();
    let is_default = class
        .annotations()
        .get(DEFAULT_CLASS_ANNOTATION)
        .map(String::as_str)
        == Some("true");
    workspaces
        .state()
        .iter()
        .filter(|ws| match ws.facts.class_named.as_deref() {
            Some(n) => n == name,
            None => is_default || ws.facts.class_given.as_deref() == Some(name.as_str()),
        })
        .map(|ws| ObjectRef::from_obj(&**ws))
        .collect()
}

/// The workspaces in a namespace.
fn in_namespace(workspaces: &Store<Kept>, name: &str) -> Vec<ObjectRef<Kept>> {
    workspaces
        .state()
        .iter()
        .filter(|ws| ws.metadata.namespace.as_deref() == Some(name))
        .map(|ws| ObjectRef::from_obj(&**ws))
        .collect()
}

type Reconciled = Result<
    (ObjectRef<Kept>, controller::Action),
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
async fn sweep_memory(ctx: Arc<Context>, workspaces: Workspaces) {
    let mut tick = tokio::time::interval(ctx.config.intervals.drift);
    tick.tick().await;
    loop {
        tick.tick().await;
        if !workspaces.wait_until_ready().await {
            continue;
        }
        let live: HashSet<String> = workspaces.kept().iter().filter_map(|ws| ws.uid()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use std::time::Duration;
    use tokio::time::Instant;

    /// On a paused clock: how long a wake takes to reach the reconciler while another watch
    /// of the same controller fails five times in a row.
    async fn wake_beside_a_failing_watch(unpaused: bool) -> Duration {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                namespace: Some("ml".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(map.clone()));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let failing = futures::stream::iter(
            (0..5).map(|_| Err::<ConfigMap, _>(watcher::Error::NoResourceVersion)),
        )
        .chain(futures::stream::pending());
        let (wake, woken) = unbounded_channel();
        let mut controller = Controller::for_stream(futures::stream::pending(), store)
            .watches_stream(failing, |_| None::<ObjectRef<ConfigMap>>)
            .reconcile_on(crate::beside::received(woken));
        if unpaused {
            controller = controller.trigger_backoff(Unpaused);
        }
        let (done, mut reconciled) = unbounded_channel::<Instant>();
        let start = Instant::now();
        wake.send(ObjectRef::from_obj(&map)).expect("wake");
        let running = controller
            .run(
                |_, done: Arc<UnboundedSender<Instant>>| async move {
                    let _ = done.send(Instant::now());
                    Ok::<_, kube::Error>(controller::Action::await_change())
                },
                |_, _, _| controller::Action::await_change(),
                Arc::new(done),
            )
            .for_each(|_| async {});
        let task = tokio::spawn(running);
        let at = reconciled.recv().await.expect("reconciled");
        task.abort();
        at - start
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_watch_does_not_hold_the_other_wakes() {
        let paused = wake_beside_a_failing_watch(false).await;
        let unpaused = wake_beside_a_failing_watch(true).await;
        // kube-runtime's default pauses every wake after each error (0.8 s and more) ...
        assert!(paused >= Duration::from_millis(400), "{paused:?}");
        // ... the controller's own wiring does not.
        assert_eq!(unpaused, Duration::ZERO, "{unpaused:?}");
    }
}
