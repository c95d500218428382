//! The data tasks' poller: one batched DescribeDataRepositoryTasks per poll interval per
//! region for every task that is running, like the file systems' poller. It keeps the last
//! observation of each task for the reconciler and wakes exactly the objects whose task
//! changed; a task that finished is described no more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreDataTask;
use lustre_cloud::{Cloud, DataTask};
use tokio::sync::mpsc;

/// A running task and who follows it.
#[derive(Clone, Debug)]
struct Entry {
    object: ObjectRef<LustreDataTask>,
    region: Option<String>,
    cloud: Arc<dyn Cloud>,
}

#[derive(Debug, Default)]
struct State {
    /// Running tasks by task id.
    entries: HashMap<String, Entry>,
    /// The last observation of each followed (or just finished) task.
    seen: HashMap<String, DataTask>,
    /// The task started for each object (by UID): a reconcile woken before its status
    /// write shows the task id follows this one instead of asking FSx again.
    started: HashMap<String, String>,
    /// Objects (by UID) whose end this process announced (Event, metrics): once each.
    announced: std::collections::HashSet<String>,
}

/// The tasks of one region to describe, and its cloud.
type Batch = (Arc<dyn Cloud>, Vec<String>);

/// Shared between the data tasks' reconciler (follow, read, forget) and the polling task.
#[derive(Clone, Debug)]
pub struct TaskPoller {
    state: Arc<Mutex<State>>,
    wake: mpsc::UnboundedSender<ObjectRef<LustreDataTask>>,
}

impl TaskPoller {
    /// A poller and the stream of objects to wake.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<LustreDataTask>>) {
        let (wake, rx) = mpsc::unbounded_channel();
        let poller = Self {
            state: Arc::new(Mutex::new(State::default())),
            wake,
        };
        (poller, rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows a task until it finishes; `seen` is what its create (or a describe) returned.
    pub fn follow(
        &self,
        object: ObjectRef<LustreDataTask>,
        region: Option<String>,
        cloud: Arc<dyn Cloud>,
        seen: DataTask,
    ) {
        let mut s = self.lock();
        if let Some(uid) = object.extra.uid.clone() {
            s.started.insert(uid, seen.id.clone());
        }
        s.entries.insert(
            seen.id.clone(),
            Entry {
                object,
                region,
                cloud,
            },
        );
        s.seen.insert(seen.id.clone(), seen);
    }

    /// The last observation of a task.
    pub fn seen(&self, task_id: &str) -> Option<DataTask> {
        self.lock().seen.get(task_id).cloned()
    }

    /// The task this process started for the object with this UID.
    pub fn started_for(&self, uid: &str) -> Option<String> {
        self.lock().started.get(uid).cloned()
    }

    /// Whether the task is followed.
    pub fn follows(&self, task_id: &str) -> bool {
        self.lock().entries.contains_key(task_id)
    }

    /// Stops following a task and forgets its observation (the object keeps its started id
    /// until it is deleted).
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

    /// Describes every followed task every `interval`, until the process ends.
    pub async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    /// One round: one batched describe per region; wakes the objects whose task changed.
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
            match cloud.describe_data_repository_tasks(&ids).await {
                Ok(found) => self.store(&ids, found),
                Err(e) => tracing::warn!(
                    region = region.as_deref().unwrap_or("default"),
                    error = %e,
                    "describing data repository tasks failed; retrying next round"
                ),
            }
        }
    }

    /// Keeps what a describe found and wakes the objects whose task changed, or is gone (a
    /// task of a file system deleted meanwhile).
    fn store(&self, asked: &[String], found: Vec<DataTask>) {
        let mut wake = Vec::new();
        {
            let mut s = self.lock();
            let mut missing: Vec<&String> = asked.iter().collect();
            for task in found {
                missing.retain(|id| **id != task.id);
                let Some(entry) = s.entries.get(&task.id).cloned() else {
                    continue;
                };
                if task.lifecycle.is_finished() {
                    s.entries.remove(&task.id);
                }
                if s.seen.get(&task.id) != Some(&task) {
                    wake.push(entry.object);
                    s.seen.insert(task.id.clone(), task);
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
