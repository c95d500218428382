//! The batched AWS poller: one DescribeFileSystems (and one
//! DescribeDataRepositoryAssociations per 20 file systems) per interval for every workspace
//! waiting on an AWS lifecycle, and, on a long interval, for every Ready workspace (drift).
//! It keeps the observations in a cache the reconciler reads, and wakes exactly the
//! workspaces whose observation changed. No workspace polls AWS on its own timer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreWorkspace;
use lustre_cloud::{Cloud, DataRepositoryAssociation, FileSystem, Lifecycle};
use tokio::sync::mpsc;

/// What the cache knows of one file system.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub file_system: Option<FileSystem>,
    pub associations: Vec<DataRepositoryAssociation>,
}

#[derive(Debug)]
struct Entry {
    workspace: ObjectRef<LustreWorkspace>,
    cloud: Arc<dyn Cloud>,
    /// Waiting on a lifecycle (polled every interval) or Ready (drift-checked).
    pending: bool,
    /// Whether the workspace links (or still has) data repositories: only then are its
    /// associations described.
    links: bool,
}

#[derive(Debug, Default)]
struct State {
    cache: HashMap<String, Observation>,
    entries: HashMap<String, Entry>,
    last_drift: Option<Instant>,
}

/// Shared between the reconciler (register, read, store) and the polling task.
#[derive(Clone, Debug)]
pub struct Poller {
    state: Arc<Mutex<State>>,
    wake: mpsc::UnboundedSender<ObjectRef<LustreWorkspace>>,
}

/// Intervals of the poller.
#[derive(Clone, Copy, Debug)]
pub struct PollIntervals {
    /// Workspaces waiting on AWS.
    pub pending: Duration,
    /// Ready workspaces (drift detection).
    pub drift: Duration,
}

impl Default for PollIntervals {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(15),
            drift: Duration::from_secs(600),
        }
    }
}

impl Poller {
    /// A poller and the stream of workspaces to wake (feed it to the controller).
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<LustreWorkspace>>) {
        let (wake, rx) = mpsc::unbounded_channel();
        (
            Self {
                state: Arc::new(Mutex::new(State::default())),
                wake,
            },
            rx,
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached observation of a file system.
    pub fn cached(&self, file_system_id: &str) -> Option<Observation> {
        self.lock().cache.get(file_system_id).cloned()
    }

    /// Records what the reconciler just observed or caused.
    pub fn store(&self, file_system_id: &str, observation: Observation) {
        self.lock()
            .cache
            .insert(file_system_id.to_string(), observation);
    }

    /// Polls this file system every interval until [`Poller::settle`].
    pub fn watch(
        &self,
        file_system_id: &str,
        workspace: ObjectRef<LustreWorkspace>,
        cloud: Arc<dyn Cloud>,
        links: bool,
    ) {
        self.register(file_system_id, workspace, cloud, true, links);
    }

    /// The workspace is Ready (or failed for good): only drift checks from now on.
    pub fn settle(
        &self,
        file_system_id: &str,
        workspace: ObjectRef<LustreWorkspace>,
        cloud: Arc<dyn Cloud>,
        links: bool,
    ) {
        self.register(file_system_id, workspace, cloud, false, links);
    }

    fn register(
        &self,
        file_system_id: &str,
        workspace: ObjectRef<LustreWorkspace>,
        cloud: Arc<dyn Cloud>,
        pending: bool,
        links: bool,
    ) {
        self.lock().entries.insert(
            file_system_id.to_string(),
            Entry {
                workspace,
                cloud,
                pending,
                links,
            },
        );
    }

    /// Stops polling and drops the cache entry (the workspace is gone).
    pub fn forget(&self, file_system_id: &str) {
        let mut s = self.lock();
        s.entries.remove(file_system_id);
        s.cache.remove(file_system_id);
    }

    /// How many file systems are polled every interval.
    pub fn pending(&self) -> usize {
        self.lock().entries.values().filter(|e| e.pending).count()
    }

    /// One polling round: describe the due file systems in batches (per cloud), update the
    /// cache, and wake the workspaces whose observation changed. Returns how many woke.
    pub async fn poll_once(&self, include_drift: bool) -> usize {
        // Group the due ids by cloud (one cloud per region).
        let mut groups: Vec<(Arc<dyn Cloud>, Vec<String>)> = Vec::new();
        {
            let s = self.lock();
            for (id, e) in &s.entries {
                if !(e.pending || include_drift) {
                    continue;
                }
                match groups.iter_mut().find(|(c, _)| Arc::ptr_eq(c, &e.cloud)) {
                    Some((_, ids)) => ids.push(id.clone()),
                    None => groups.push((e.cloud.clone(), vec![id.clone()])),
                }
            }
        }
        let mut woken = 0;
        for (cloud, ids) in groups {
            let file_systems = match cloud.describe_file_systems(&ids).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "batched DescribeFileSystems failed; next round retries"
                    );
                    continue;
                }
            };
            // Associations only exist on a file system that exists and is not being created
            // or deleted, and only matter where the workspace links (or had) some.
            let present: Vec<String> = {
                let s = self.lock();
                file_systems
                    .iter()
                    .filter(|f| {
                        !matches!(f.lifecycle, Lifecycle::Creating | Lifecycle::Deleting)
                            && s.entries.get(&f.id).is_some_and(|e| e.links)
                    })
                    .map(|f| f.id.clone())
                    .collect()
            };
            let associations = if present.is_empty() {
                Vec::new()
            } else {
                match cloud.describe_data_repository_associations(&present).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "batched DescribeDataRepositoryAssociations failed; next round retries"
                        );
                        continue;
                    }
                }
            };
            let mut s = self.lock();
            for id in &ids {
                let observation = Observation {
                    file_system: file_systems.iter().find(|f| f.id == *id).cloned(),
                    associations: associations
                        .iter()
                        .filter(|a| a.file_system_id == *id)
                        .cloned()
                        .collect(),
                };
                let changed = s.cache.get(id) != Some(&observation);
                s.cache.insert(id.clone(), observation);
                if changed && let Some(e) = s.entries.get(id) {
                    let _ = self.wake.send(e.workspace.clone());
                    woken += 1;
                }
            }
        }
        if include_drift {
            self.lock().last_drift = Some(Instant::now());
        }
        woken
    }

    /// Polls forever on the intervals (run it as a task).
    pub async fn run(self, intervals: PollIntervals) {
        let mut tick = tokio::time::interval(intervals.pending);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let drift_due = self
                .lock()
                .last_drift
                .is_none_or(|t| t.elapsed() >= intervals.drift);
            let woken = self.poll_once(drift_due).await;
            tracing::debug!(
                woken,
                pending = self.pending(),
                drift = drift_due,
                "poll round"
            );
        }
    }
}
