//! The watch caches every reconcile reads from: no reconcile lists or gets what a watch
//! already holds (controller-runtime's cached client, the kube-runtime way). Each cache's
//! watch is also what wakes the workspaces its changes concern ([`crate::controller`]): the
//! store is updated before the wake is delivered, so a woken reconcile reads the change.
//!
//! | cache | watched | kept of each object |
//! |---|---|---|
//! | classes | every `LustreWorkspaceClass` | the object |
//! | namespaces | the operator's namespaces | metadata (labels decide `allowedNamespaces`) |
//! | claims | the other claims in the operator's namespaces (a claim is in one of the two) | metadata (owner, labels, deletion), no annotations |
//! | managed claims | claims labelled managed-by the operator | metadata with the selected-node annotation, StorageClass, phase, conditions ([`crate::slim::Claim`]) |
//! | volumes | PersistentVolumes labelled managed-by the operator | metadata without annotations, size, CSI source, access modes, claim, zone, phase ([`crate::slim::Volume`]) |
//! | storage classes | StorageClasses labelled managed-by the operator | metadata |
//!
//! Managed fields and `last-applied-configuration` are dropped before an object is kept: the
//! operator never reads them, and they are most of a small object's size. Volumes and claims
//! keep only the annotations read (the caches hold one of each per workspace).

use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use lustre_api::LustreWorkspaceClass;
use lustre_api::constants::labels;
use tokio::sync::watch;

use crate::context::Context;
use crate::relist;
use crate::slim::{Claim, Volume};

type Meta<K> = PartialObjectMeta<K>;

/// The stores reconciles read.
#[derive(Clone)]
pub(crate) struct Caches {
    pub classes: Store<LustreWorkspaceClass>,
    pub namespaces: Store<Meta<Namespace>>,
    pub claims: Store<Meta<PersistentVolumeClaim>>,
    pub managed_claims: Store<Claim>,
    pub volumes: Store<Volume>,
    pub storage_classes: Store<Meta<StorageClass>>,
    /// `None` until every store has had its first full list; then `Some(true)`, or
    /// `Some(false)` when a watch stopped first. One task waits on the stores
    /// ([`Caches::mark_ready`]) and reconciles wait on this: kube-runtime's
    /// `Store::wait_until_ready` wakes only the last of several concurrent waiters (its
    /// one-shot channel keeps one waker), which left all but one early reconcile waiting for
    /// good on the real control plane.
    ready: Arc<watch::Sender<Option<bool>>>,
}

/// The writers behind [`Caches`], taken once by [`streams`].
pub(crate) struct Writers {
    classes: Writer<LustreWorkspaceClass>,
    namespaces: Writer<Meta<Namespace>>,
    claims: Writer<Meta<PersistentVolumeClaim>>,
    managed_claims: Writer<Claim>,
    volumes: Writer<Volume>,
    storage_classes: Writer<Meta<StorageClass>>,
}

impl Caches {
    /// Empty stores, and their writers (held until the controller starts watching).
    pub(crate) fn new() -> (Self, Mutex<Option<Writers>>) {
        let (classes, classes_w) = reflector::store();
        let (namespaces, namespaces_w) = reflector::store();
        let (claims, claims_w) = reflector::store();
        let (managed_claims, managed_claims_w) = reflector::store();
        let (volumes, volumes_w) = reflector::store();
        let (storage_classes, storage_classes_w) = reflector::store();
        let caches = Self {
            classes,
            namespaces,
            claims,
            managed_claims,
            volumes,
            storage_classes,
            ready: Arc::new(watch::channel(None).0),
        };
        let writers = Writers {
            classes: classes_w,
            namespaces: namespaces_w,
            claims: claims_w,
            managed_claims: managed_claims_w,
            volumes: volumes_w,
            storage_classes: storage_classes_w,
        };
        (caches, Mutex::new(Some(writers)))
    }

    /// Whether every cache has had its first full list (a reconcile before that would read
    /// an empty cache as "no class", "no claim"). `false` once the watches have stopped.
    pub(crate) async fn ready(&self) -> bool {
        let mut rx = self.ready.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(state) => *state == Some(true),
            Err(_) => false,
        }
    }

    /// Waits (alone) for every store's first full list, then lets the reconciles in (run it
    /// beside the controller, which drives the watches).
    pub(crate) async fn mark_ready(self) {
        let listed = async {
            self.classes.wait_until_ready().await?;
            self.namespaces.wait_until_ready().await?;
            self.claims.wait_until_ready().await?;
            self.managed_claims.wait_until_ready().await?;
            self.volumes.wait_until_ready().await?;
            self.storage_classes.wait_until_ready().await
        };
        let ok = listed.await.is_ok();
        if ok {
            tracing::debug!("watch caches listed: reconciling");
        }
        self.ready.send_replace(Some(ok));
    }

    /// Reads a claim's metadata from whichever of the two claim caches holds it, and whether
    /// that is the cache of claims labelled managed-by the operator (its operator label
    /// decides which; while the label changes it may be in both for a moment, the watches
    /// being separate streams, and the unlabelled one's copy is read). The managed claims'
    /// labels are not in their metadata ([`crate::slim::Labels`]).
    pub(crate) fn claim_meta<R>(
        &self,
        namespace: &str,
        name: &str,
        read: impl FnOnce(&ObjectMeta, bool) -> R,
    ) -> Option<R> {
        if let Some(m) = self.claims.get(&ObjectRef::new(name).within(namespace)) {
            return Some(read(&m.metadata, false));
        }
        self.managed_claims
            .get(&ObjectRef::new(name).within(namespace))
            .map(|c| read(&c.metadata, true))
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("classes", &self.classes.state().len())
            .field("namespaces", &self.namespaces.state().len())
            .field("claims", &self.claims.state().len())
            .field("managed_claims", &self.managed_claims.state().len())
            .field("volumes", &self.volumes.state().len())
            .field("storage_classes", &self.storage_classes.state().len())
            .finish()
    }
}

/// What the operator never reads of a cached object. The managed fields go with their
/// vector (cleared, it would keep its buffer).
pub(crate) fn slim<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// [`slim`], and of the annotations only those named in `keep` (a map takes half a kilobyte
/// however few entries it holds; kube-controller-manager's binding annotations would be all
/// of a volume's or claim's).
fn slim_keeping<K: Resource>(keep: &'static [&'static str]) -> impl Fn(&mut K) {
    move |obj| {
        slim(obj);
        let meta = obj.meta_mut();
        meta.annotations = meta
            .annotations
            .take()
            .map(|a| {
                a.into_iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .filter(|a| !a.is_empty());
    }
}

/// Drops a watch's update that, once slimmed, differs from the cached copy in its
/// `resourceVersion` alone (or in what `same` ignores): kube-controller-manager's binding
/// annotations, which the caches do not keep, and a volume's phase once past `Pending` would
/// each wake the workspace for nothing (four wakes per workspace when its claim binds). The
/// cached copy keeps its older `resourceVersion` (nothing reads it: writes are applies and
/// guarded patches, and the watch resumes from its own). Only updates are dropped: a relist's
/// objects build the new store, and a deletion always goes through.
fn news<K>(
    store: Store<K>,
    same: fn(&K, &K) -> bool,
) -> impl FnMut(watcher::Event<K>) -> std::future::Ready<Result<Option<watcher::Event<K>>, watcher::Error>>
where
    K: Resource + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    move |mut event| {
        let unchanged = match &mut event {
            watcher::Event::Apply(new) => store
                .get(&ObjectRef::from_obj(new))
                .is_some_and(|old| same_but_version(old.as_ref(), new, same)),
            _ => false,
        };
        std::future::ready(Ok((!unchanged).then_some(event)))
    }
}

/// Whether `new` is `old` but for its `resourceVersion` (compared with `old`'s put in its
/// place for a moment, and put back).
fn same_but_version<K: Resource>(old: &K, new: &mut K, same: fn(&K, &K) -> bool) -> bool {
    let version = old.meta().resource_version.clone();
    let own = std::mem::replace(&mut new.meta_mut().resource_version, version);
    let alike = same(old, new);
    new.meta_mut().resource_version = own;
    alike
}

type Changes<K> = std::pin::Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

/// Each cache's watch as the stream of objects it touched (applied or deleted, a deletion
/// its relist found too: [`crate::relist`]), the store updated first.
pub(crate) struct Streams {
    pub classes: Changes<LustreWorkspaceClass>,
    pub namespaces: Changes<Meta<Namespace>>,
    pub claims: Changes<Meta<PersistentVolumeClaim>>,
    pub managed_claims: Changes<Claim>,
    pub volumes: Changes<Volume>,
    pub storage_classes: Changes<Meta<StorageClass>>,
}

/// A watch's events kept in a cache (`writer` and its `store`), as the objects they touched:
/// applied or deleted, and deleted while the watch was away ([`crate::relist`]).
fn into_cache<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    writer: Writer<K>,
    store: &Store<K>,
) -> Changes<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    Box::pin(
        events
            .reflect(writer)
            .flat_map(relist::deletions(store.clone()))
            .touched_objects(),
    )
}

/// The watches behind the caches; `None` when they were started before.
pub(crate) fn streams(ctx: &Context) -> Option<Streams> {
    let w = ctx
        .cache_writers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()?;
    let client = &ctx.client;
    let managed = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY_KEY,
        labels::MANAGED_BY_VALUE
    ));
    // The claims the operator did not label are watched apart (metadata only): a claim is in
    // one of the two caches, not both.
    let unmanaged = watcher::Config::default().labels(&format!(
        "{}!={}",
        labels::MANAGED_BY_KEY,
        labels::MANAGED_BY_VALUE
    ));
    let namespaces = match ctx.config.namespaces.as_slice() {
        [only] => watcher::Config::default().fields(&format!("metadata.name={only}")),
        _ => watcher::Config::default(),
    };
    Some(Streams {
        classes: into_cache(
            watcher(Api::all(client.clone()), watcher::Config::default())
                .default_backoff()
                .modify(slim),
            w.classes,
            &ctx.caches.classes,
        ),
        namespaces: into_cache(
            watcher(Api::<Meta<Namespace>>::all(client.clone()), namespaces)
                .default_backoff()
                .modify(slim),
            w.namespaces,
            &ctx.caches.namespaces,
        ),
        claims: into_cache(
            watcher(
                crate::controller::scoped::<Meta<PersistentVolumeClaim>>(ctx),
                unmanaged,
            )
            .default_backoff()
            .modify(slim_keeping(&[]))
            .try_filter_map(news(ctx.caches.claims.clone(), |a, b| {
                a.metadata == b.metadata
            })),
            w.claims,
            &ctx.caches.claims,
        ),
        managed_claims: into_cache(
            watcher(crate::controller::scoped::<Claim>(ctx), managed.clone())
                .default_backoff()
                .modify(slim_keeping(&[crate::builders::SELECTED_NODE_ANNOTATION]))
                .try_filter_map(news(ctx.caches.managed_claims.clone(), PartialEq::eq)),
            w.managed_claims,
            &ctx.caches.managed_claims,
        ),
        volumes: into_cache(
            watcher(Api::<Volume>::all(client.clone()), managed.clone())
                .default_backoff()
                .modify(slim_keeping(&[]))
                .try_filter_map(news(ctx.caches.volumes.clone(), Volume::reads_alike)),
            w.volumes,
            &ctx.caches.volumes,
        ),
        storage_classes: into_cache(
            watcher(Api::<Meta<StorageClass>>::all(client.clone()), managed)
                .default_backoff()
                .modify(slim),
            w.storage_classes,
            &ctx.caches.storage_classes,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reconcile waiting before the first lists is let in once they are done (with
    /// `Store::wait_until_ready` only the last waiter would be).
    #[tokio::test]
    async fn every_waiting_reconcile_is_let_in_after_the_first_lists() {
        let (caches, writers) = Caches::new();
        let mut w = writers
            .into_inner()
            .expect("writers lock")
            .expect("writers");
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let c = caches.clone();
                tokio::spawn(async move { c.ready().await })
            })
            .collect();
        let marker = tokio::spawn(caches.clone().mark_ready());
        tokio::task::yield_now().await;
        assert!(
            waiters.iter().all(|t| !t.is_finished()),
            "let in before the lists"
        );
        w.classes.apply_watcher_event(&watcher::Event::InitDone);
        w.namespaces.apply_watcher_event(&watcher::Event::InitDone);
        w.claims.apply_watcher_event(&watcher::Event::InitDone);
        w.managed_claims
            .apply_watcher_event(&watcher::Event::InitDone);
        w.volumes.apply_watcher_event(&watcher::Event::InitDone);
        w.storage_classes
            .apply_watcher_event(&watcher::Event::InitDone);
        marker.await.expect("marker");
        for t in waiters {
            let ready = tokio::time::timeout(std::time::Duration::from_secs(5), t)
                .await
                .expect("a waiter was not woken")
                .expect("waiter");
            assert!(ready);
        }
    }

    /// A cached volume keeps no annotation and no managed fields; a cached claim keeps the
    /// selected node, which the first-pod placement reads, and nothing else of them.
    #[test]
    fn volumes_and_claims_keep_only_the_annotations_read() {
        let meta = serde_json::json!({
            "name": "x", "namespace": "ml", "labels": {"app.kubernetes.io/managed-by": "lustre-operator"},
            "annotations": {"pv.kubernetes.io/bound-by-controller": "yes",
                            "volume.kubernetes.io/selected-node": "n1",
                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]
        });
        let mut pv: Volume =
            serde_json::from_value(serde_json::json!({"metadata": meta})).expect("pv");
        slim_keeping(&[])(&mut pv);
        assert_eq!(pv.metadata.annotations, None);
        assert_eq!(pv.metadata.managed_fields, None);
        // The labels are kept apart, as pairs.
        assert_eq!(pv.metadata.labels, None);
        assert_eq!(
            pv.labels.get(labels::MANAGED_BY_KEY),
            Some(labels::MANAGED_BY_VALUE)
        );
        let mut pvc: Claim =
            serde_json::from_value(serde_json::json!({"metadata": meta})).expect("pvc");
        slim_keeping(&[crate::builders::SELECTED_NODE_ANNOTATION])(&mut pvc);
        assert_eq!(
            pvc.metadata.annotations,
            Some(
                [(
                    crate::builders::SELECTED_NODE_ANNOTATION.to_string(),
                    "n1".to_string()
                )]
                .into()
            )
        );
        assert_eq!(pvc.metadata.managed_fields, None);
    }

    /// A volume update that changes only what the operator does not read (an annotation: the
    /// `resourceVersion` alone once slimmed; its phase among those past `Pending`) is dropped;
    /// one that changes a kept field or leaves `Pending`, a deletion and a relist's objects go
    /// through.
    #[tokio::test]
    async fn only_updates_that_change_what_is_kept_go_through() {
        let (store, mut writer) = reflector::store::<Volume>();
        let volume = |rv: &str, claim: Option<&str>, phase: &str| {
            let mut pv: Volume = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "pv", "resourceVersion": rv,
                             "annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {"claimRef": claim.map(|c| serde_json::json!({"name": c, "namespace": "ml"}))},
                "status": {"phase": phase}
            }))
            .expect("pv");
            slim_keeping::<Volume>(&[])(&mut pv);
            pv
        };
        writer.apply_watcher_event(&watcher::Event::Apply(volume("1", None, "Pending")));
        let mut news = news(store.clone(), Volume::reads_alike);
        let passes = |e: watcher::Event<Volume>, news: &mut dyn FnMut(_) -> _| {
            let r: std::future::Ready<Result<Option<watcher::Event<Volume>>, watcher::Error>> =
                news(e);
            r.into_inner().expect("never fails").is_some()
        };
        assert!(!passes(
            watcher::Event::Apply(volume("2", None, "Pending")),
            &mut news
        ));
        // The binder has seen it: the claim can be made.
        let available = volume("3", None, "Available");
        assert!(passes(watcher::Event::Apply(available.clone()), &mut news));
        writer.apply_watcher_event(&watcher::Event::Apply(available));
        assert!(!passes(
            watcher::Event::Apply(volume("4", None, "Bound")),
            &mut news
        ));
        assert!(passes(
            watcher::Event::Apply(volume("4", Some("c"), "Bound")),
            &mut news
        ));
        assert!(passes(
            watcher::Event::Delete(volume("5", None, "Bound")),
            &mut news
        ));
        assert!(passes(
            watcher::Event::InitApply(volume("6", None, "Bound")),
            &mut news
        ));
        // A volume the cache does not hold yet goes through.
        let mut other = volume("7", None, "Pending");
        other.metadata.name = Some("other".into());
        assert!(passes(watcher::Event::Apply(other), &mut news));
        // The cached copy is left as it was by a dropped update.
        let cached = store.get(&ObjectRef::new("pv")).expect("cached");
        assert_eq!(cached.metadata.resource_version.as_deref(), Some("3"));
    }

    /// A watch that stops before its first list lets the waiters go, not ready.
    #[tokio::test]
    async fn a_watch_gone_before_its_first_list_is_not_ready() {
        let (caches, writers) = Caches::new();
        drop(writers);
        caches.clone().mark_ready().await;
        assert!(!caches.ready().await);
    }
}
