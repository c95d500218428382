//! Pollers of the AWS work objects ask for (data repository tasks, backups): one batched
//! describe per poll interval per region for everything still under way, like the file
//! systems' poller. Each keeps the last observation for its reconciler and wakes exactly the
//! objects whose work changed; what finished is described no more.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::reflector::{Lookup, ObjectRef};
use lustre_cloud::{Backup, Cloud, CloudResult, DataTask};
use tokio::sync::mpsc;

/// What a poller follows: an AWS resource with an id that ends.
#[async_trait]
pub trait Followed: Clone + PartialEq + Debug + Send + Sync + 'static {
    /// Its id.
    fn id(&self) -> &str;
    /// Whether it will not change on its own again.
    fn finished(&self) -> bool;
    /// The ones with these ids (missing ones left out), in as few calls as the API allows.
    async fn describe(cloud: &dyn Cloud, ids: &[String]) -> CloudResult<Vec<Self>>;
}

#[async_trait]
impl Followed for DataTask {
    fn id(&self) -> &str {
        &self.id
    }
    fn finished(&self) -> bool {
        self.lifecycle.is_finished()
    }
    async fn describe(cloud: &dyn Cloud, ids: &[String]) -> CloudResult<Vec<Self>> {
        cloud.describe_data_repository_tasks(ids).await
    }
}

#[async_trait]
impl Followed for Backup {
    fn id(&self) -> &str {
        &self.id
    }
    fn finished(&self) -> bool {
        self.lifecycle.is_finished()
    }
    async fn describe(cloud: &dyn Cloud, ids: &[String]) -> CloudResult<Vec<Self>> {
        cloud.describe_backups(ids).await
    }
}

/// Something under way and who follows it.
struct Entry<K: Lookup> {
    object: ObjectRef<K>,
    region: Option<String>,
    cloud: Arc<dyn Cloud>,
}

struct State<K: Lookup, T> {
    /// What is under way, by id.
    entries: HashMap<String, Entry<K>>,
    /// The last observation of each followed (or just finished) one.
    seen: HashMap<String, T>,
    /// What was started for each object (by UID): a reconcile woken before its status
    /// write shows the id follows this one instead of asking AWS again.
    started: HashMap<String, String>,
    /// Objects (by UID) whose end this process announced (Event, metrics): once each.
    announced: std::collections::HashSet<String>,
}

/// What one region has to describe, and its cloud.
type Batch = (Arc<dyn Cloud>, Vec<String>);

/// Shared between a reconciler (follow, read, forget) and its polling task.
pub struct Poller<K: Lookup, T> {
    state: Arc<Mutex<State<K, T>>>,
    wake: mpsc::UnboundedSender<ObjectRef<K>>,
}

impl<K: Lookup, T> Clone for Poller<K, T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<K: Lookup, T> Debug for Poller<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").finish_non_exhaustive()
    }
}

/// The data tasks' poller.
pub type TaskPoller = Poller<lustre_api::LustreDataTask, DataTask>;
/// The backups' poller.
pub type BackupPoller = Poller<lustre_api::LustreWorkspaceBackup, Backup>;

impl<K, T> Poller<K, T>
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash + Send + Sync,
    T: Followed,
{
    /// A poller and the stream of objects to wake.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<K>>) {
        let (wake, rx) = mpsc::unbounded_channel();
        let poller = Self {
            state: Arc::new(Mutex::new(State {
                entries: HashMap::new(),
                seen: HashMap::new(),
                started: HashMap::new(),
                announced: Default::default(),
            })),
            wake,
        };
        (poller, rx)
    }

    fn lock(&self) -> MutexGuard<'_, State<K, T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows until it finishes; `seen` is what its create (or a describe) returned.
    pub fn follow(
        &self,
        object: ObjectRef<K>,
        region: Option<String>,
        cloud: Arc<dyn Cloud>,
        seen: T,
    ) {
        let mut s = self.lock();
        let id = seen.id().to_string();
        if let Some(uid) = object.extra.uid.clone() {
            s.started.insert(uid, id.clone());
        }
        s.entries.insert(
            id.clone(),
            Entry {
                object,
                region,
                cloud,
            },
        );
        s.seen.insert(id, seen);
    }

    /// The last observation.
    pub fn seen(&self, task_id: &str) -> Option<T> {
        self.lock().seen.get(task_id).cloned()
    }

    /// What this process started for the object with this UID.
    pub fn started_for(&self, uid: &str) -> Option<String> {
        self.lock().started.get(uid).cloned()
    }

    /// Whether it is followed.
    pub fn follows(&self, task_id: &str) -> bool {
        self.lock().entries.contains_key(task_id)
    }

    /// Stops following and forgets the observation (the object keeps its started id until
    /// it is deleted).
    pub fn forget(&self, task_id: &str) {
        let mut s = self.lock();
        s.entries.remove(task_id);
        s.seen.remove(task_id);
    }

    /// Whether the end of the object with this UID is still to be announced (true once).
    pub fn announce(&self, uid: &str) -> bool {
        self.lock().announced.insert(uid.to_string())
    }

    /// Drops what is kept of a deleted object.
    pub fn deleted(&self, uid: &str) {
        let mut s = self.lock();
        s.started.remove(uid);
        s.announced.remove(uid);
    }

    /// Describes everything followed every `interval`, until the process ends.
    pub async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    /// One round: one batched describe per region; wakes the objects whose work changed.
    pub async fn round(&self) {
        let mut by_region: HashMap<Option<String>, Batch> = HashMap::new();
        for (id, e) in &self.lock().entries {
            by_region
                .entry(e.region.clone())
                .or_insert_with(|| (e.cloud.clone(), Vec::new()))
                .1
                .push(id.clone());
        }
        for (region, (cloud, ids)) in by_region {
            match T::describe(&*cloud, &ids).await {
                Ok(found) => self.store(&ids, found),
                Err(e) => tracing::warn!(
                    region = region.as_deref().unwrap_or("default"),
                    error = %e,
                    operation = e.operation,
                    "polling failed; retrying next round"
                ),
            }
        }
    }

    /// Keeps what a describe found and wakes the objects whose work changed, or is gone (a
    /// task of a file system deleted meanwhile, a backup deleted outside the operator).
    fn store(&self, asked: &[String], found: Vec<T>) {
        let mut wake = Vec::new();
        {
            let mut s = self.lock();
            let mut missing: Vec<&String> = asked.iter().collect();
            for item in found {
                let id = item.id().to_string();
                missing.retain(|m| **m != id);
                let Some(object) = s.entries.get(&id).map(|e| e.object.clone()) else {
                    continue;
                };
                if item.finished() {
                    s.entries.remove(&id);
                }
                if s.seen.get(&id) != Some(&item) {
                    wake.push(object);
                    s.seen.insert(id, item);
                }
            }
            for id in missing {
                if let Some(entry) = s.entries.remove(id) {
                    s.seen.remove(id);
                    wake.push(entry.object);
                }
            }
        }
        for object in wake {
            let _ = self.wake.send(object);
        }
    }
}

/// A poller and its wake-ups, kept in the context until its controller takes them.
pub(crate) struct Following<K: Lookup, T> {
    pub poller: Poller<K, T>,
    wakes: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<K>>>>,
}

impl<K, T> Following<K, T>
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash + Send + Sync,
    T: Followed,
{
    pub fn new() -> Self {
        let (poller, wakes) = Poller::new();
        Self {
            poller,
            wakes: Mutex::new(Some(wakes)),
        }
    }

    /// The poller's wake-ups (once per process).
    pub fn take_wakes(&self) -> Option<mpsc::UnboundedReceiver<ObjectRef<K>>> {
        self.wakes.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
