//! What every reconcile shares: the clients, the poller, metrics, Events, settings, and what
//! this process remembers of each workspace ([`crate::memory::WorkspaceMemory`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource};
use lustre_cloud::{Cloud, CloudError};

use crate::cache::{Caches, Writers};
use crate::error::Error;
use crate::events::EventRecorder;
use crate::follow::Following;
pub(crate) use crate::memory::{Expected, WorkspaceMemory};
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
            concurrency: 64,
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
    pub(crate) workspaces: std::sync::OnceLock<crate::kept::Workspaces>,
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
