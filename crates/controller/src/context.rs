//! What every reconcile shares: the clients, the poller, metrics, Events, settings, and what
//! this process remembers of each workspace ([`WorkspaceMemory`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus};
use lustre_cloud::{Cloud, CloudError};

use crate::cache::{Caches, Writers};
use crate::error::Error;
use crate::events::EventRecorder;
use crate::follow::Following;
use crate::metrics::Metrics;
use crate::poller::{PollIntervals, Poller};

/// Gives the cloud of a region (`None`: the operator's own).
#[async_trait::async_trait]
pub trait CloudProvider: Send + Sync + std::fmt::Debug {
    async fn cloud(&self, region: Option<&str>) -> Arc<dyn Cloud>;
}

/// One cloud for every region (tests, the sandbox).
#[derive(Debug, Clone)]
pub struct SingleCloud(pub Arc<dyn Cloud>);

#[async_trait::async_trait]
impl CloudProvider for SingleCloud {
    async fn cloud(&self, _region: Option<&str>) -> Arc<dyn Cloud> {
        self.0.clone()
    }
}

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub intervals: PollIntervals,
    /// Delay before the first retry of a failed reconcile; doubles up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The safety net of the waits on Kubernetes (a claim binding; a deleted claim pods still
    /// use; a deleted volume its finalizer holds): the claims' and volumes' watches wake the
    /// workspace when they change, and it is looked at again after this (times the wait's
    /// factor) in any case.
    pub claim_recheck: Duration,
    pub concurrency: u16,
    /// Namespaces whose workspaces this operator reconciles; empty: all. With exactly one,
    /// the watches are namespaced too.
    pub namespaces: Vec<String>,
    /// This install's id (`--cluster-id`), tagged on what it creates: a kept file system of
    /// another install is not adopted again here.
    pub cluster_id: Option<String>,
    /// Watch pods for the idle clock of `expiry.afterIdle` (list and watch pods).
    pub watch_pods: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            intervals: PollIntervals::default(),
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            claim_recheck: Duration::from_secs(30),
            concurrency: 16,
            namespaces: Vec::new(),
            cluster_id: None,
            watch_pods: false,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub clouds: Arc<dyn CloudProvider>,
    pub poller: Poller,
    pub metrics: Arc<Metrics>,
    pub recorder: EventRecorder,
    pub config: ControllerConfig,
    /// VPC of each subnet a class names, once looked up (subnets do not move).
    pub(crate) subnets: Mutex<HashMap<String, lustre_cloud::Subnet>>,
    pub(crate) memory: WorkspaceMemory,
    /// The watch caches reconciles read (see [`crate::cache`]).
    pub(crate) caches: Caches,
    /// Their writers, taken when `run` starts watching.
    pub(crate) cache_writers: Mutex<Option<Writers>>,
    /// The data tasks' and the backups' pollers, and their wake-ups until their controllers
    /// take them.
    pub(crate) tasks: Following<lustre_api::LustreDataTask, lustre_cloud::DataTask>,
    pub(crate) backups: Following<lustre_api::LustreWorkspaceBackup, lustre_cloud::Backup>,
    /// The workspaces' own watch cache, once the controller runs (the budgets read their
    /// namespace's peers from it).
    pub(crate) workspaces:
        std::sync::OnceLock<kube::runtime::reflector::Store<lustre_api::LustreWorkspace>>,
    /// The grants' watch cache, once their controller runs (a workspace's status lists its
    /// shares from it).
    pub(crate) grants:
        std::sync::OnceLock<kube::runtime::reflector::Store<lustre_api::LustreWorkspaceGrant>>,
    /// Which claims pods use, when pods are watched.
    pub pods: Option<Arc<crate::pods::PodUse>>,
}

impl Context {
    pub fn new(
        client: Client,
        clouds: Arc<dyn CloudProvider>,
        poller: Poller,
        metrics: Arc<Metrics>,
        config: ControllerConfig,
    ) -> Self {
        let recorder = EventRecorder::new(
            client.clone(),
            "lustre-operator",
            std::env::var("POD_NAME").ok(),
        );
        let (caches, cache_writers) = Caches::new();
        let pods = config.watch_pods.then(Default::default);
        Self {
            client,
            clouds,
            poller,
            metrics,
            recorder,
            config,
            subnets: Mutex::default(),
            memory: WorkspaceMemory::default(),
            caches,
            cache_writers,
            tasks: Following::new(),
            backups: Following::new(),
            workspaces: std::sync::OnceLock::new(),
            grants: std::sync::OnceLock::new(),
            pods,
        }
    }

    /// The cloud of the class's region.
    pub(crate) async fn cloud_for(
        &self,
        class: Option<&lustre_api::LustreWorkspaceClass>,
    ) -> Arc<dyn Cloud> {
        self.clouds
            .cloud(class.and_then(|c| c.spec.region.as_deref()))
            .await
    }
}

impl Context {
    /// Records an Event about a workspace (or a data task). A failure to record is logged,
    /// never an error of the reconcile.
    pub(crate) async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        ws: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &ws.object_ref(&())).await {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "publishing an Event failed"
            );
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("clouds", &self.clouds)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, taking over one a panicked holder left poisoned.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A workspace's security group and file system ids, as far as this process knows them:
/// created by it, or described by it and carrying the workspace's UID tag (the file system id
/// may also be one from status that this process looked for and found gone; every describe of
/// a file system checks its tag anyway). Unlike the ids in status (which anyone allowed to
/// write `lustreworkspaces/status` can change), the group id is proof of ownership.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownIds {
    pub security_group: Option<String>,
    pub file_system: Option<String>,
    /// The security group had every Lustre rule the class asks for when last seen.
    pub rules_confirmed: bool,
}

/// A change this process just made to a workspace's claim or volume, which the watch caches
/// may not show yet (a controller's "expectations"): a reconcile woken by the workspace's own
/// status write can run before the claim's watch delivers the claim just created. The
/// observation trusts the expectation over the cache until the cache shows it met, for
/// [`EXPECTED_FOR`] at most (a change undone meanwhile, say a claim deleted at once, is then
/// seen as the cache has it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expected<V> {
    /// Created (or applied) as this view.
    Made(V),
    /// Deleted, held by a finalizer.
    Deleting,
    /// Deleted and gone.
    Gone,
}

/// How long an expectation outlives the write it follows.
pub(crate) const EXPECTED_FOR: Duration = Duration::from_secs(30);

/// An expectation and when it was set.
type Expectation<V> = Option<(Expected<V>, std::time::Instant)>;

/// The open expectation, dropped when `met` says the cache shows it or it is too old.
fn open<V: Clone>(
    slot: &mut Expectation<V>,
    met: impl FnOnce(&Expected<V>) -> bool,
) -> Option<Expected<V>> {
    match slot.take() {
        Some((e, at)) if at.elapsed() < EXPECTED_FOR && !met(&e) => {
            *slot = Some((e.clone(), at));
            Some(e)
        }
        _ => None,
    }
}

/// What this process remembers of one workspace.
#[derive(Debug, Default)]
struct Remembered {
    ids: KnownIds,
    /// The claim and the volume as this process last changed them.
    claim: Expectation<crate::plan::ClaimView>,
    volume: Expectation<crate::plan::VolumeView>,
    /// The status this process last wrote, with the resourceVersion the write was based on.
    written: Option<(Option<String>, LustreWorkspaceStatus)>,
    /// Failed reconciles in a row (the back-off grows with them).
    failures: u32,
    /// Cleanup finished here; only the finalizer's removal is left.
    cleaned: bool,
    /// The file system's data repository tasks as last described here (with those started
    /// here since), and when: a reconcile woken by its own status write reads them instead
    /// of describing them again.
    tasks: Option<(Vec<lustre_cloud::DataTask>, std::time::Instant)>,
}

/// What this process remembers of each workspace, by UID, in one place.
///
/// Invariant: nothing here is needed for correctness after a restart. Every entry is a
/// shortcut past a call (a describe, a second identical status write, a second look at AWS
/// after cleanup finished) or a back-off count; losing it costs calls, never a wrong step.
/// An entry lives from a workspace's first reconcile until [`WorkspaceMemory::forget`] (its
/// cleanup finished, or it was found gone).
#[derive(Debug, Default)]
pub struct WorkspaceMemory {
    by_uid: Mutex<HashMap<String, Remembered>>,
}

impl WorkspaceMemory {
    fn with<R>(&self, uid: &str, f: impl FnOnce(&mut Remembered) -> R) -> R {
        f(lock(&self.by_uid).entry(uid.to_owned()).or_default())
    }

    /// The ids this process knows for the workspace.
    pub(crate) fn ids(&self, uid: &str) -> KnownIds {
        lock(&self.by_uid)
            .get(uid)
            .map(|r| r.ids.clone())
            .unwrap_or_default()
    }

    /// Keeps ids this process just learnt.
    pub(crate) fn remember(&self, uid: &str, f: impl FnOnce(&mut KnownIds)) {
        self.with(uid, |r| f(&mut r.ids));
    }

    /// The tasks of file system `fs` as last described here, if that is younger than
    /// `fresh`.
    pub(crate) fn tasks_seen(
        &self,
        uid: &str,
        fs: &str,
        fresh: Duration,
    ) -> Option<Vec<lustre_cloud::DataTask>> {
        self.with(uid, |r| {
            r.tasks
                .as_ref()
                .filter(|(tasks, at)| {
                    at.elapsed() < fresh && tasks.iter().all(|t| t.file_system_id == fs)
                })
                .map(|(tasks, _)| tasks.clone())
        })
    }

    /// Keeps the tasks of a file system as just described.
    pub(crate) fn saw_tasks(&self, uid: &str, tasks: Vec<lustre_cloud::DataTask>) {
        self.with(uid, |r| r.tasks = Some((tasks, std::time::Instant::now())));
    }

    /// Keeps a task just started or changed here beside the last described ones.
    pub(crate) fn saw_task(&self, uid: &str, task: &lustre_cloud::DataTask) {
        self.with(uid, |r| {
            let (tasks, _) = r
                .tasks
                .get_or_insert_with(|| (Vec::new(), std::time::Instant::now()));
            tasks.retain(|t| t.id != task.id);
            tasks.push(task.clone());
        });
    }

    /// Keeps the status just written on top of `resource_version`.
    pub(crate) fn wrote(
        &self,
        uid: &str,
        resource_version: Option<String>,
        status: LustreWorkspaceStatus,
    ) {
        self.with(uid, |r| r.written = Some((resource_version, status)));
    }

    /// The workspace as this process last left it: the watch cache's copy, or, when that
    /// copy is the very version the last status write was based on (the cache has not seen
    /// the write yet), the same with the status written. No second identical write follows,
    /// no second Ready Event. The written status is dropped once the cache moves on.
    pub fn freshen(&self, ws: Arc<LustreWorkspace>) -> Arc<LustreWorkspace> {
        let uid = ws.uid().unwrap_or_default();
        let mut all = lock(&self.by_uid);
        let Some(r) = all.get_mut(&uid) else {
            return ws;
        };
        match &r.written {
            Some((rv, status)) if *rv == ws.resource_version() => {
                let mut fresh = (*ws).clone();
                fresh.status = Some(status.clone());
                Arc::new(fresh)
            }
            Some(_) => {
                r.written = None;
                ws
            }
            None => ws,
        }
    }

    /// Keeps what this process just did to the workspace's claim.
    pub(crate) fn expect_claim(&self, uid: &str, e: Expected<crate::plan::ClaimView>) {
        self.with(uid, |r| r.claim = Some((e, std::time::Instant::now())));
    }

    /// Keeps what this process just did to the workspace's volume.
    pub(crate) fn expect_volume(&self, uid: &str, e: Expected<crate::plan::VolumeView>) {
        self.with(uid, |r| r.volume = Some((e, std::time::Instant::now())));
    }

    /// The claim's open expectation (see [`Expected`]).
    pub(crate) fn claim_expected(
        &self,
        uid: &str,
        met: impl FnOnce(&Expected<crate::plan::ClaimView>) -> bool,
    ) -> Option<Expected<crate::plan::ClaimView>> {
        self.with(uid, |r| open(&mut r.claim, met))
    }

    /// The volume's open expectation (see [`Expected`]).
    pub(crate) fn volume_expected(
        &self,
        uid: &str,
        met: impl FnOnce(&Expected<crate::plan::VolumeView>) -> bool,
    ) -> Option<Expected<crate::plan::VolumeView>> {
        self.with(uid, |r| open(&mut r.volume, met))
    }

    /// Counts one more failed reconcile; returns how many in a row.
    pub(crate) fn failed(&self, uid: &str) -> u32 {
        self.with(uid, |r| {
            r.failures += 1;
            r.failures
        })
    }

    /// A reconcile succeeded: the back-off starts over.
    pub(crate) fn succeeded(&self, uid: &str) {
        if let Some(r) = lock(&self.by_uid).get_mut(uid) {
            r.failures = 0;
        }
    }

    /// Whether cleanup finished here (only the finalizer is left).
    pub(crate) fn cleaned(&self, uid: &str) -> bool {
        lock(&self.by_uid).get(uid).is_some_and(|r| r.cleaned)
    }

    /// Marks cleanup finished, or not (the finalizer's removal went through, or must be
    /// tried again from a fresh look).
    pub(crate) fn set_cleaned(&self, uid: &str, cleaned: bool) {
        self.with(uid, |r| r.cleaned = cleaned);
    }

    /// Drops everything about the workspace.
    pub(crate) fn forget(&self, uid: &str) {
        lock(&self.by_uid).remove(uid);
    }

    /// Keeps only the workspaces whose UIDs are in `live`.
    pub(crate) fn retain(&self, live: &std::collections::HashSet<String>) {
        lock(&self.by_uid).retain(|uid, _| live.contains(uid));
    }

    /// How many workspaces are remembered (for tests).
    pub fn len(&self) -> usize {
        lock(&self.by_uid).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Context {
    /// When to retry a workspace whose reconcile failed with `error`; `None`: not until
    /// something changes.
    pub fn retry_delay(&self, uid: &str, error: &Error) -> Option<Duration> {
        // ±20 % jitter from the clock's sub-second digits (no shared RNG needed).
        let jitter =
            0.8 + 0.4 * f64::from(jiff::Timestamp::now().subsec_nanosecond() % 1000) / 1000.0;
        if error.cloud().is_some_and(CloudError::waits_for_change) {
            return None;
        }
        // A 409 from the API server says the object moved on since the watch cache showed
        // it: the next reconcile reads the newer version, and waiting longer does not make
        // that likelier. Retry at the base delay without counting an attempt, so conflicts
        // (frequent when other writers are busy) do not push the AWS back-off towards its cap.
        if error.is_conflict() {
            return Some(self.config.base_backoff.mul_f64(jitter));
        }
        let attempts = self.memory.failed(uid);
        let base = self.config.base_backoff.as_secs_f64() * 2f64.powi(attempts.min(16) as i32 - 1);
        let capped = base.min(self.config.max_backoff.as_secs_f64());
        Some(Duration::from_secs_f64(capped * jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClaimView;

    const MADE: ClaimView = ClaimView {
        bound: false,
        deleting: false,
        storage_class: None,
        selected_node: None,
    };

    #[test]
    fn an_expectation_holds_until_the_cache_shows_it_or_it_is_too_old() {
        let memory = WorkspaceMemory::default();
        memory.expect_claim("u", Expected::Made(MADE));
        // Not in the cache yet: trusted, and kept.
        assert_eq!(
            memory.claim_expected("u", |_| false),
            Some(Expected::Made(MADE))
        );
        assert_eq!(
            memory.claim_expected("u", |_| false),
            Some(Expected::Made(MADE))
        );
        // The cache shows it: dropped for good.
        assert_eq!(memory.claim_expected("u", |_| true), None);
        assert_eq!(memory.claim_expected("u", |_| false), None);
        // Too old: dropped, whatever the cache shows.
        memory.with("u", |r| {
            r.claim = Some((Expected::Deleting, std::time::Instant::now() - EXPECTED_FOR))
        });
        assert_eq!(memory.claim_expected("u", |_| false), None);
    }
}
