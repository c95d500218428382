//! Kubernetes Events about workspaces (`events.k8s.io/v1`), with an event repeated within a
//! few minutes folded into a series (one PATCH of `series.count`, no new object).
//!
//! kube-runtime's `Recorder` does the same but keeps a full copy of every event it sent for
//! six minutes and scans all of them on every publish; with 10,000 workspaces created at once
//! that cache was most of the operator's memory and CPU (docs/benchmarks.md). This recorder
//! keeps a 64-bit fingerprint, the object's name and a count per recent event, and forgets old
//! ones at most once a minute. A repeat is an event with the same object, type, reason and
//! note (kube-runtime's key leaves the note out, so a new message was recorded as a repeat of
//! the old one).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

/// How long a sent event can be continued as a series.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often the memory of sent events is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What is kept of one sent event.
#[derive(Debug)]
struct Sent {
    name: String,
    count: i32,
    at: Instant,
}

#[derive(Debug)]
struct Recent {
    by_key: HashMap<u64, Sent>,
    swept: Instant,
}

/// Publishes Events as one controller instance.
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::new(Recent {
                by_key: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// How many sent events are remembered (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.lock().by_key.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `ev` about `regarding`: a new Event, or the next count of the same one sent
    /// within the last minutes.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = fingerprint(ev, regarding);
        let now = Instant::now();
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let stamp = jiff::Timestamp::now();
        if let Some((name, count)) = self.repeat(key, now) {
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(stamp) }
            });
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone from the API server (event TTL): start a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(ev, regarding, namespace, stamp);
        let name = event.metadata.name.clone().unwrap_or_default();
        events.create(&PostParams::default(), &event).await?;
        self.lock().by_key.insert(
            key,
            Sent {
                name,
                count: 1,
                at: now,
            },
        );
        Ok(())
    }

    /// The name and next count of the event with this key sent within the series window
    /// (counted now); forgets old events at most once a minute.
    fn repeat(&self, key: u64, now: Instant) -> Option<(String, i32)> {
        let mut recent = self.lock();
        if recent.swept.elapsed() >= SWEEP_EVERY {
            recent
                .by_key
                .retain(|_, s| now.duration_since(s.at) < SERIES_WINDOW);
            recent.swept = now;
        }
        recent
            .by_key
            .get_mut(&key)
            .filter(|s| now.duration_since(s.at) < SERIES_WINDOW)
            .map(|s| {
                s.count += 1;
                s.at = now;
                (s.name.clone(), s.count)
            })
    }

    /// A new Event object for `ev`.
    fn event(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
        namespace: &str,
        stamp: jiff::Timestamp,
    ) -> K8sEvent {
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            stamp.as_nanosecond()
        );
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            event_time: Some(MicroTime(stamp)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..K8sEvent::default()
        }
    }
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .field("remembered", &self.remembered())
            .finish_non_exhaustive()
    }
}

/// Object, type, reason and note: what makes two events the same event.
fn fingerprint(ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &regarding.uid,
        &regarding.namespace,
        &regarding.name,
        &regarding.kind,
    )
        .hash(&mut h);
    (
        matches!(ev.type_, EventType::Warning),
        &ev.reason,
        &ev.action,
        &ev.note,
    )
        .hash(&mut h);
    h.finish()
}
