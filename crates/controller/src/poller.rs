//! The batched AWS poller: one DescribeFileSystems (and one
//! DescribeDataRepositoryAssociations per 20 file systems) per interval for every workspace
//! waiting on an AWS lifecycle, and, on a long interval, for every Ready workspace (drift).
//! It keeps the observations in a cache the reconciler reads, and wakes exactly the
//! workspaces whose observation changed. No workspace polls AWS on its own timer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// A workspace following a file system: who to wake, and where and how to describe it.
#[derive(Clone, Debug)]
pub struct Follower {
    pub workspace: ObjectRef<LustreWorkspace>,
    /// The region of the workspace's class (`None`: the operator's own).
    pub region: Option<String>,
    /// The cloud of that region.
    pub cloud: Arc<dyn Cloud>,
    /// Whether the workspace links (or still has) data repositories: only then are the
    /// file system's associations described.
    pub links: bool,
}

/// How often a file system is described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// Every pending interval: AWS is changing it.
    Pending,
    /// Every drift interval: Ready, or failed for good.
    Drift,
}

#[derive(Debug)]
struct Entry {
    follower: Follower,
    pace: Pace,
}

/// Entries by (file system id, workspace UID): two workspaces naming one file system (an
/// adoption refused to one of them) are both followed, and both woken.
type Key = (String, String);

#[derive(Debug, Default)]
struct State {
    cache: HashMap<String, Observation>,
    entries: HashMap<Key, Entry>,
}

/// The file systems of one region due in a round, and which of them to describe the
/// associations of.
struct Due {
    cloud: Arc<dyn Cloud>,
    ids: BTreeSet<String>,
    linked: BTreeSet<String>,
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

fn key(file_system_id: &str, workspace: &ObjectRef<LustreWorkspace>) -> Key {
    let uid = workspace.extra.uid.clone().unwrap_or_default();
    (file_system_id.to_string(), uid)
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

    /// Wakes a workspace (the controller reconciles it soon).
    pub fn wake(&self, workspace: ObjectRef<LustreWorkspace>) {
        let _ = self.wake.send(workspace);
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

    /// Describes this file system every pending interval until [`Poller::settle`].
    pub fn watch(&self, file_system_id: &str, follower: Follower) {
        self.register(file_system_id, follower, Pace::Pending);
    }

    /// The workspace is Ready (or failed for good): only drift checks from now on.
    pub fn settle(&self, file_system_id: &str, follower: Follower) {
        self.register(file_system_id, follower, Pace::Drift);
    }

    fn register(&self, file_system_id: &str, follower: Follower, pace: Pace) {
        let key = key(file_system_id, &follower.workspace);
        self.lock().entries.insert(key, Entry { follower, pace });
    }

    /// Stops following the file system for this workspace, and drops its cached observation
    /// (stale: the next look describes it again).
    pub fn forget(&self, file_system_id: &str, workspace: &ObjectRef<LustreWorkspace>) {
        let mut s = self.lock();
        s.entries.remove(&key(file_system_id, workspace));
        s.cache.remove(file_system_id);
    }

    /// How many file systems are described every pending interval.
    pub fn pending(&self) -> usize {
        let s = self.lock();
        let ids: BTreeSet<&String> = s
            .entries
            .iter()
            .filter(|(_, e)| e.pace == Pace::Pending)
            .map(|((id, _), _)| id)
            .collect();
        ids.len()
    }

    /// One polling round: the due file systems grouped by region, each group described in
    /// batches, the cache updated, and the workspaces whose observation changed woken.
    /// Returns how many woke.
    pub async fn poll_once(&self, include_drift: bool) -> usize {
        let mut woken = 0;
        for due in self.due(include_drift) {
            let Some((file_systems, associations)) = describe(&due).await else {
                continue;
            };
            woken += self.apply(&due.ids, file_systems, associations);
        }
        woken
    }

    /// The file systems due this round, one group per region.
    fn due(&self, include_drift: bool) -> Vec<Due> {
        let s = self.lock();
        let mut groups: BTreeMap<Option<String>, Due> = BTreeMap::new();
        for ((id, _), e) in &s.entries {
            if e.pace == Pace::Drift && !include_drift {
                continue;
            }
            let f = &e.follower;
            let due = groups.entry(f.region.clone()).or_insert_with(|| Due {
                cloud: f.cloud.clone(),
                ids: BTreeSet::new(),
                linked: BTreeSet::new(),
            });
            due.ids.insert(id.clone());
            if f.links {
                due.linked.insert(id.clone());
            }
        }
        groups.into_values().collect()
    }

    /// Puts a group's answers into the cache and wakes every workspace following a file
    /// system whose observation changed. Associations that could not be described (`None`)
    /// stay as cached.
    fn apply(
        &self,
        ids: &BTreeSet<String>,
        file_systems: Vec<FileSystem>,
        associations: Option<Vec<DataRepositoryAssociation>>,
    ) -> usize {
        let mut s = self.lock();
        let mut changed = BTreeSet::new();
        // By id: a drift round answers for every file system at once.
        let mut by_id: std::collections::HashMap<String, FileSystem> = file_systems
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect();
        for id in ids {
            let associations = match &associations {
                Some(all) => all
                    .iter()
                    .filter(|a| a.file_system_id == *id)
                    .cloned()
                    .collect(),
                None => s
                    .cache
                    .get(id)
                    .map(|o| o.associations.clone())
                    .unwrap_or_default(),
            };
            let observation = Observation {
                file_system: by_id.remove(id),
                associations,
            };
            if s.cache.get(id) != Some(&observation) {
                changed.insert(id.clone());
            }
            s.cache.insert(id.clone(), observation);
        }
        let mut woken = 0;
        for ((id, _), e) in &s.entries {
            if changed.contains(id) {
                let _ = self.wake.send(e.follower.workspace.clone());
                woken += 1;
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

/// Describes a group: its file systems (`None` when that fails: the next round retries),
/// and the associations of those that exist, are not being created or deleted, and are
/// followed by a workspace that links some (`None` inside when that describe failed).
async fn describe(due: &Due) -> Option<(Vec<FileSystem>, Option<Vec<DataRepositoryAssociation>>)> {
    let ids: Vec<String> = due.ids.iter().cloned().collect();
    let file_systems = match due.cloud.describe_file_systems(&ids).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "batched DescribeFileSystems failed; next round retries"
            );
            return None;
        }
    };
    let present: Vec<String> = file_systems
        .iter()
        .filter(|f| !matches!(f.lifecycle, Lifecycle::Creating | Lifecycle::Deleting))
        .filter(|f| due.linked.contains(&f.id))
        .map(|f| f.id.clone())
        .collect();
    if present.is_empty() {
        return Some((file_systems, Some(Vec::new())));
    }
    match due
        .cloud
        .describe_data_repository_associations(&present)
        .await
    {
        Ok(a) => Some((file_systems, Some(a))),
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "batched DescribeDataRepositoryAssociations failed; file systems updated, associations next round"
            );
            Some((file_systems, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lustre_cloud::FileSystemRequest;
    use lustre_cloud::FileSystems;
    use lustre_cloud::memory::{MemoryCloud, aws_error};

    fn follower(cloud: &Arc<MemoryCloud>, name: &str, uid: &str, region: &str) -> Follower {
        let mut workspace = ObjectRef::new(name).within("ml");
        workspace.extra.uid = Some(uid.to_string());
        Follower {
            workspace,
            region: Some(region.to_string()),
            cloud: cloud.clone(),
            links: true,
        }
    }

    /// A file system (CREATING) in the in-memory account.
    async fn file_system(cloud: &MemoryCloud, token: &str) -> FileSystem {
        let request = FileSystemRequest::scratch(token, "subnet-1", Default::default());
        cloud.create_file_system(&request).await.expect("create")
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<ObjectRef<LustreWorkspace>>) -> Vec<String> {
        let mut woken = Vec::new();
        while let Ok(r) = rx.try_recv() {
            woken.push(r.name);
        }
        woken.sort();
        woken
    }

    /// A drift check is due every drift interval from the start of the previous one, however
    /// long a round takes and whatever the pending interval (once, rounds were measured from
    /// their end and a 60 s check slipped to the next 15 s tick: 75 s).
    #[tokio::test(start_paused = true)]
    async fn drift_checks_keep_their_own_deadline() {
        let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
        cloud.set_latency("DescribeFileSystems", Duration::from_millis(500));
        let (poller, _wake) = Poller::new();
        poller.settle("fs-1", follower(&cloud, "w", "uid-w", "us-east-1"));
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(poller.clone().run(PollIntervals {
            pending: Duration::from_secs(15),
            drift: Duration::from_secs(60),
        }));
        tokio::time::sleep(Duration::from_secs(185)).await;
        task.abort();
        let at: Vec<f64> = cloud
            .called_at("DescribeFileSystems")
            .iter()
            .map(|t| (*t - start).as_secs_f64())
            .collect();
        assert_eq!(at, vec![0.0, 60.0, 120.0, 180.0]);
    }

    /// Two workspaces naming one file system (one of them refused its adoption) are both
    /// followed: the second does not replace the first, and a change wakes both.
    #[tokio::test]
    async fn every_workspace_following_a_file_system_is_woken() {
        let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
        let fs = file_system(&cloud, "t-1").await;
        let (poller, mut wake) = Poller::new();
        poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
        poller.watch(&fs.id, follower(&cloud, "b", "uid-b", "us-east-1"));
        assert_eq!(poller.pending(), 1, "one file system, described once");
        assert_eq!(poller.poll_once(false).await, 2);
        assert_eq!(drain(&mut wake), ["a", "b"]);
        assert_eq!(poller.poll_once(false).await, 0, "nothing changed");
        cloud.advance();
        assert_eq!(poller.poll_once(false).await, 2);
        assert_eq!(cloud.calls()["DescribeFileSystems"], 3);
        // One stops following: the other still is.
        poller.forget(
            &fs.id,
            &follower(&cloud, "a", "uid-a", "us-east-1").workspace,
        );
        drain(&mut wake);
        cloud.set_lifecycle(&fs.id, Lifecycle::Failed, "broken");
        assert_eq!(poller.poll_once(false).await, 1);
        assert_eq!(drain(&mut wake), ["b"]);
    }

    /// Each region's file systems are described by that region's cloud, in one call.
    #[tokio::test]
    async fn rounds_are_grouped_by_region() {
        let east = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
        let west = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-2"));
        let (poller, _wake) = Poller::new();
        for (i, cloud, region) in [
            (1, &east, "us-east-1"),
            (2, &east, "us-east-1"),
            (3, &west, "us-west-2"),
        ] {
            let fs = file_system(cloud, &format!("t-{i}")).await;
            poller.watch(
                &fs.id,
                follower(cloud, &format!("w{i}"), &format!("u{i}"), region),
            );
        }
        poller.poll_once(false).await;
        assert_eq!(east.calls()["DescribeFileSystems"], 1);
        assert_eq!(west.calls()["DescribeFileSystems"], 1);
    }

    /// A failed association describe still lets the file systems' news through (once, a
    /// group's updates were all dropped with it); the associations follow next round.
    #[tokio::test]
    async fn file_systems_are_updated_when_their_associations_cannot_be_described() {
        let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
        let fs = file_system(&cloud, "t-1").await;
        cloud.advance();
        let (poller, mut wake) = Poller::new();
        poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
        poller.poll_once(false).await;
        drain(&mut wake);
        cloud.set_lifecycle(&fs.id, Lifecycle::Failed, "broken");
        let throttled = aws_error(
            "DescribeDataRepositoryAssociations",
            "ThrottlingException",
            "slow down",
        );
        cloud.fail_next("DescribeDataRepositoryAssociations", throttled);
        assert_eq!(poller.poll_once(false).await, 1);
        assert_eq!(drain(&mut wake), ["a"]);
        let seen = poller
            .cached(&fs.id)
            .and_then(|o| o.file_system)
            .expect("cached");
        assert_eq!(seen.lifecycle, Lifecycle::Failed);
    }
}
