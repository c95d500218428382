//! The batched AWS poller: one DescribeFileSystems (and one
//! DescribeDataRepositoryAssociations per 20 file systems) per interval for every workspace
//! waiting on an AWS lifecycle, and, on a long interval, for every Ready workspace (drift).
//! It keeps the observations in a cache the reconciler reads, and wakes exactly the
//! workspaces whose observation changed. No workspace polls AWS on its own timer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
        woken
    }

    /// Polls forever (run it as a task): the file systems waiting on AWS every `pending`
    /// interval, every file system (the drift check) every `drift` interval. Each has its own
    /// deadline, so a drift check is never late by up to a pending interval.
    pub async fn run(self, intervals: PollIntervals) {
        let start = tokio::time::Instant::now();
        let (mut next_poll, mut next_drift) = (start, start);
        loop {
            tokio::time::sleep_until(next_poll.min(next_drift)).await;
            let began = tokio::time::Instant::now();
            let drift_due = began >= next_drift;
            let woken = self.poll_once(drift_due).await;
            // A drift round polls the pending file systems too; the next pending round is
            // an interval after this one ended (no burst after a slow round).
            next_poll = tokio::time::Instant::now() + intervals.pending;
            if drift_due {
                next_drift = began + intervals.drift;
            }
            tracing::debug!(
                woken,
                pending = self.pending(),
                drift = drift_due,
                "poll round"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use lustre_cloud::{
        CloudResult, DataRepositoryRequest, FileSystemDeletion, FileSystemRequest,
        FileSystemUpdate, IngressRule, SecurityGroup, SecurityGroupRequest, Tags,
    };

    /// A cloud whose DescribeFileSystems takes half a second and records when it was called;
    /// the poller calls nothing else.
    #[derive(Debug, Default)]
    struct SlowDescribe {
        calls: Mutex<Vec<tokio::time::Instant>>,
    }

    #[async_trait]
    impl Cloud for SlowDescribe {
        async fn describe_file_systems(&self, _: &[String]) -> CloudResult<Vec<FileSystem>> {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(tokio::time::Instant::now());
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(vec![])
        }
        async fn subnet_vpc(&self, _: &str) -> CloudResult<String> {
            unreachable!("the poller only describes")
        }
        async fn create_security_group(&self, _: &SecurityGroupRequest) -> CloudResult<String> {
            unreachable!("the poller only describes")
        }
        async fn describe_security_groups(&self, _: &[String]) -> CloudResult<Vec<SecurityGroup>> {
            unreachable!("the poller only describes")
        }
        async fn find_security_groups_by_owner(&self, _: &str) -> CloudResult<Vec<SecurityGroup>> {
            unreachable!("the poller only describes")
        }
        async fn authorize_ingress(&self, _: &str, _: &[IngressRule]) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
        async fn delete_security_group(&self, _: &str) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
        async fn create_file_system(&self, _: &FileSystemRequest) -> CloudResult<FileSystem> {
            unreachable!("the poller only describes")
        }
        async fn find_file_systems_by_owner(&self, _: &str) -> CloudResult<Vec<FileSystem>> {
            unreachable!("the poller only describes")
        }
        async fn update_file_system(
            &self,
            _: &str,
            _: &FileSystemUpdate,
        ) -> CloudResult<FileSystem> {
            unreachable!("the poller only describes")
        }
        async fn delete_file_system(&self, _: &str, _: &FileSystemDeletion) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
        async fn tag_resource(&self, _: &str, _: &Tags) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
        async fn untag_resource(&self, _: &str, _: &[String]) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
        async fn create_data_repository_association(
            &self,
            _: &DataRepositoryRequest,
        ) -> CloudResult<DataRepositoryAssociation> {
            unreachable!("the poller only describes")
        }
        async fn describe_data_repository_associations(
            &self,
            _: &[String],
        ) -> CloudResult<Vec<DataRepositoryAssociation>> {
            unreachable!("the poller only describes")
        }
        async fn delete_data_repository_association(&self, _: &str) -> CloudResult<()> {
            unreachable!("the poller only describes")
        }
    }

    /// A drift check is due every drift interval from the start of the previous one, however
    /// long a round takes and whatever the pending interval (once, rounds were measured from
    /// their end and a 60 s check slipped to the next 15 s tick: 75 s).
    #[tokio::test(start_paused = true)]
    async fn drift_checks_keep_their_own_deadline() {
        let cloud = Arc::new(SlowDescribe::default());
        let (poller, _wake) = Poller::new();
        poller.settle(
            "fs-1",
            ObjectRef::new("w").within("ml"),
            cloud.clone(),
            false,
        );
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(poller.clone().run(PollIntervals {
            pending: Duration::from_secs(15),
            drift: Duration::from_secs(60),
        }));
        tokio::time::sleep(Duration::from_secs(185)).await;
        task.abort();
        let at: Vec<f64> = cloud
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|t| (*t - start).as_secs_f64())
            .collect();
        assert_eq!(at, vec![0.0, 60.0, 120.0, 180.0]);
    }
}
