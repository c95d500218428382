//! Watch history: resource versions, the change log subscribers and watches replay,
//! compaction, and the core/v1 mirror of events.k8s.io Events.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::kube::registry::ResourceType;

impl Store {
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Changes after `rv` still in history; `None` when `rv` is older than the history.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        let oldest = self.history.front().map(|c| c.rv).unwrap_or(self.rv + 1);
        if rv < self.compacted || (rv + 1 < oldest && rv < self.rv) {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Compacts at the current resourceVersion: history is dropped and watches resuming
    /// from an older version get `410 Gone` (tests use it).
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub(super) fn record(&mut self, rt: &ResourceType, kind: &'static str, object: Value) {
        self.record_change(rt, kind, object, None);
    }

    /// A MODIFIED change, with the object as it was.
    pub(super) fn record_modified(
        &mut self,
        rt: &ResourceType,
        previous: Option<Value>,
        object: Value,
    ) {
        self.record_change(rt, "MODIFIED", object, previous);
    }

    fn record_change(
        &mut self,
        rt: &ResourceType,
        kind: &'static str,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: rt.qualified(),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kind,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        let _ = self.tx.send(change);
    }

    /// kube-apiserver stores events.k8s.io/v1 and core/v1 Events as one resource, so
    /// `kubectl describe` and `kubectl get events` (core) show what controllers record through
    /// the newer API. Writes the core view of an events.k8s.io Event.
    pub(super) fn mirror_event(&mut self, ev: &Value) {
        let core = self.core("events");
        let ns = ev["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = ev["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let when = ev["eventTime"]
            .as_str()
            .map(whole_seconds)
            .unwrap_or_else(now_rfc3339);
        let key = Self::key(&core, &ns, &name);
        let first = self
            .objects
            .get(&key)
            .and_then(|o| o["firstTimestamp"].as_str().map(str::to_string))
            .unwrap_or_else(|| when.clone());
        let last = ev["series"]["lastObservedTime"]
            .as_str()
            .map(whole_seconds)
            .unwrap_or(when);
        let mut obj = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "uid": ev["metadata"]["uid"], "creationTimestamp": ev["metadata"]["creationTimestamp"]},
            "involvedObject": ev["regarding"], "reason": ev["reason"], "message": ev["note"], "type": ev["type"],
            "action": ev["action"], "reportingComponent": ev["reportingController"], "reportingInstance": ev["reportingInstance"],
            "source": {"component": ev["reportingController"]},
            "firstTimestamp": first, "lastTimestamp": last,
            "count": ev["series"]["count"].as_i64().unwrap_or(1),
        });
        let previous = self.objects.get(&key).cloned();
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.put(key, obj.clone());
        match previous {
            Some(p) => self.record_modified(&core, Some(p), obj),
            None => self.record(&core, "ADDED", obj),
        }
    }
}

/// A MicroTime (`2026-12-03T10:00:00.123456Z`) as a core/v1 Event's Time: whole seconds.
fn whole_seconds(t: &str) -> String {
    t.split('.')
        .next()
        .unwrap_or(t)
        .trim_end_matches('Z')
        .to_string()
        + "Z"
}
