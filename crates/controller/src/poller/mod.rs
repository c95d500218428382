//! The batched AWS poller: one DescribeFileSystems (and one
//! DescribeDataRepositoryAssociations per 20 file systems) per interval for every workspace
//! waiting on an AWS lifecycle, and, on a long interval, for every Ready workspace (drift).
//! It keeps the observations in a cache the reconciler reads, and wakes exactly the
//! workspaces whose observation changed; their file systems are then left to the reconciles
//! it woke, which watch them again while AWS moves them (a reconcile failing and backing off
//! is not polled for meanwhile). No workspace polls AWS on its own timer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreWorkspace;
use lustre_cloud::{Cloud, DataRepositoryAssociation, FileSystem, Lifecycle};
use tokio::sync::mpsc;

use crate::packed::{Packed, Packer};

/// What the cache knows of one file system.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    pub file_system: Option<FileSystem>,
    pub associations: Vec<DataRepositoryAssociation>,
}

/// An observation as the cache keeps it, its JSON compressed ([`crate::packed`]): a described
/// file system took about 2 KB of structs and strings (its tags a `BTreeMap`), its JSON about
/// 1.2 KB, and the cache holds one per workspace (docs/benchmarks.md). Every read already
/// cloned the observation; it now decodes it. Two observations are equal when their JSON is
/// (fields in declaration order, tags sorted).
#[derive(Debug, PartialEq)]
struct Kept(Packed);

/// The reference the observations are compressed with ([`crate::packed`]).
static OBSERVATIONS: LazyLock<Packer> = LazyLock::new(Packer::new);

impl Kept {
    /// An observation that cannot be encoded is kept empty, and read as not cached (the
    /// reconcile describes the file system).
    fn of(observation: &Observation) -> Self {
        Self::from_json(&Self::json(observation))
    }

    fn json(observation: &Observation) -> Vec<u8> {
        serde_json::to_vec(observation).unwrap_or_default()
    }

    fn from_json(json: &[u8]) -> Self {
        Self(OBSERVATIONS.pack(json))
    }

    fn observation(&self) -> Option<Observation> {
        serde_json::from_slice(&self.0.unpack().ok()?).ok()
    }
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
    cache: HashMap<String, Kept>,
    /// Ordered: a file system's followers are one range.
    entries: BTreeMap<Key, Entry>,
    /// When a round woke each workspace (by UID) whose reconcile has not started since.
    woken: HashMap<String, Instant>,
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
        self.lock()
            .cache
            .get(file_system_id)
            .and_then(Kept::observation)
    }

    /// Records what the reconciler just observed or caused.
    pub fn store(&self, file_system_id: &str, observation: Observation) {
        self.lock()
            .cache
            .insert(file_system_id.to_string(), Kept::of(&observation));
    }

    /// Describes this file system every pending interval until a round sees it change (and
    /// wakes the workspace, whose reconcile calls this again while AWS moves it) or
    /// [`Poller::settle`].
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

    /// How long ago a round woke this workspace, if it did since its last reconcile began
    /// (call it as a reconcile begins: the wait in the controller's queue).
    pub fn wake_taken(&self, uid: &str) -> Option<Duration> {
        self.lock().woken.remove(uid).map(|at| at.elapsed())
    }

    /// How long ago a round woke this workspace, if it did since its last reconcile began
    /// (the wake stays for [`Self::wake_taken`]).
    pub fn wake_age(&self, uid: &str) -> Option<Duration> {
        self.lock().woken.get(uid).map(|at| at.elapsed())
    }

    /// Stops following the file system for this workspace, and drops its cached observation
    /// (stale: the next look describes it again).
    pub fn forget(&self, file_system_id: &str, workspace: &ObjectRef<LustreWorkspace>) {
        let mut s = self.lock();
        let key = key(file_system_id, workspace);
        s.woken.remove(&key.1);
        s.entries.remove(&key);
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
    /// A file system not linked to S3 is taken in as its page of the answer arrives
    /// ([`Self::take_early`]): a round over thousands takes seconds, and its first pages'
    /// workspaces need not wait for its last. Returns how many woke.
    pub async fn poll_once(&self, include_drift: bool) -> usize {
        let mut woken = 0;
        for due in self.due(include_drift) {
            let mut taken = BTreeSet::new();
            let mut early = |fs: FileSystem| {
                taken.insert(fs.id.clone());
                woken += self.take_early(fs);
            };
            let Some(described) = describe(&due, &mut early).await else {
                continue;
            };
            let rest: BTreeSet<String> = due.ids.difference(&taken).cloned().collect();
            woken += self.apply(&rest, described);
        }
        woken
    }

    /// Takes in one file system of a round as it arrives, one whose observation needs
    /// nothing else of the round (no associations): caches it and, when it changed, wakes
    /// the workspaces following it as [`Self::apply`] does. Returns how many woke.
    fn take_early(&self, fs: FileSystem) -> usize {
        let id = fs.id.clone();
        let json = Kept::json(&Observation {
            file_system: Some(fs),
            associations: Vec::new(),
        });
        // Packed outside the lock, as in `apply`.
        if self.lock().cache.get(&id).is_some_and(|k| k.0.holds(&json)) {
            return 0;
        }
        let observation = Kept::from_json(&json);
        let mut s = self.lock();
        if s.cache.get(&id) == Some(&observation) {
            return 0;
        }
        s.cache.insert(id.clone(), observation);
        self.wake_followers(&mut s, &id, Instant::now())
    }

    /// Wakes every workspace following file system `id` (its observation changed) and stamps
    /// the wake. Returns how many woke.
    fn wake_followers(&self, s: &mut State, id: &str, now: Instant) -> usize {
        let mut wake = Vec::new();
        let followers = s
            .entries
            .range_mut((id.to_string(), String::new())..)
            .take_while(|((of, _), _)| of == id);
        for ((_, uid), e) in followers {
            let _ = self.wake.send(e.follower.workspace.clone());
            // The wake hands the file system to the reconcile: it watches it again if AWS
            // still moves it. Until then (its queue, its back-off after a failure) the news
            // is in the cache and drift checks are enough.
            e.pace = Pace::Drift;
            wake.push(uid.clone());
        }
        for uid in &wake {
            s.woken.entry(uid.clone()).or_insert(now);
        }
        wake.len()
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
    /// system whose observation changed, which then is described at drift pace until the
    /// reconcile watches it again. Associations that could not be described (`None`)
    /// stay as cached.
    fn apply(&self, ids: &BTreeSet<String>, (mut by_id, associations): Described) -> usize {
        let mut associations_of: Option<HashMap<String, Vec<DataRepositoryAssociation>>> =
            associations.map(|all| {
                let mut of: HashMap<String, Vec<_>> = HashMap::new();
                for a in all {
                    of.entry(a.file_system_id.clone()).or_default().push(a);
                }
                of
            });
        // Encoded, and packed when changed, outside the cache's lock but for a look at the
        // cached one: reconciles read the cache meanwhile.
        let mut observed = Vec::with_capacity(ids.len());
        for id in ids {
            let associations = match &mut associations_of {
                Some(of) => of.remove(id).unwrap_or_default(),
                None => self.cached(id).map(|o| o.associations).unwrap_or_default(),
            };
            // Absent from the answer is gone; an answer that cannot be read back (none can:
            // it was encoded here) leaves the cache as it was.
            let file_system = match by_id.remove(id).map(|json| serde_json::from_slice(&json)) {
                Some(Ok(fs)) => Some(fs),
                Some(Err(_)) => continue,
                None => None,
            };
            let json = Kept::json(&Observation {
                file_system,
                associations,
            });
            // Packed only when it changed: most answers of a round repeat the cached one.
            if !self.lock().cache.get(id).is_some_and(|k| k.0.holds(&json)) {
                observed.push((id, Kept::from_json(&json)));
            }
        }
        let mut s = self.lock();
        let mut changed = BTreeSet::new();
        for (id, observation) in observed {
            if s.cache.get(id) != Some(&observation) {
                changed.insert(id.clone());
            }
            s.cache.insert(id.clone(), observation);
        }
        let now = Instant::now();
        changed
            .iter()
            .map(|id| self.wake_followers(&mut s, id, now))
            .sum()
    }

    /// Polls forever (run it as a task): the file systems waiting on AWS every `pending`
    /// interval, every file system (the drift check) every `drift` interval. Each has its own
    /// deadline, so a drift check is never late by up to a pending interval. `took` hears
    /// each round's duration.
    pub async fn run(self, intervals: PollIntervals, took: impl Fn(Duration) + Send) {
        let start = tokio::time::Instant::now();
        let (mut next_poll, mut next_drift) = (start, start);
        loop {
            tokio::time::sleep_until(next_poll.min(next_drift)).await;
            let began = tokio::time::Instant::now();
            let drift_due = began >= next_drift;
            let woken = self.poll_once(drift_due).await;
            took(began.elapsed());
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

/// A round's answers for one region: each file system as its JSON (held compact while the
/// pages arrive, thousands in a drift round), and the associations of the linked ones.
type Described = (
    HashMap<String, Box<[u8]>>,
    Option<Vec<DataRepositoryAssociation>>,
);

/// Describes a group: its file systems (`None` when that fails: the next round retries),
/// and the associations of those that exist, are not being created or deleted, and are
/// followed by a workspace that links some (`None` inside when that describe failed). Each
/// file system no workspace links goes to `early` as it arrives instead, not into the answer.
async fn describe(due: &Due, early: &mut (dyn FnMut(FileSystem) + Send)) -> Option<Described> {
    let ids: Vec<String> = due.ids.iter().cloned().collect();
    let mut file_systems = HashMap::new();
    let mut present = Vec::new();
    let described = due
        .cloud
        .describe_file_systems_each(&ids, &mut |fs| {
            if !due.linked.contains(&fs.id) {
                return early(fs);
            }
            if !matches!(fs.lifecycle, Lifecycle::Creating | Lifecycle::Deleting) {
                present.push(fs.id.clone());
            }
            let json = serde_json::to_vec(&fs).unwrap_or_default();
            file_systems.insert(fs.id, json.into_boxed_slice());
        })
        .await;
    if let Err(e) = described {
        tracing::warn!(
            error = &e as &dyn std::error::Error,
            "batched DescribeFileSystems failed; next round retries"
        );
        return None;
    }
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
mod tests;
