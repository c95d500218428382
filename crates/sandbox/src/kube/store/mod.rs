//! The sandbox API server's objects and the API machinery around them: resource versions,
//! generations, finalizers and deletion, admission of custom resources (schema + CEL), the
//! status subresource, watch events with history, and the few controllers a cluster runs that
//! this operator relies on (PVC protection, pre-bound PV/PVC binding, owner garbage
//! collection, pods starting once their claims are bound).

mod admission;
mod cluster_controllers;
mod watch;
mod writes;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::registry::{self, ResourceType};

/// An API error, answered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiErr {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub causes: Vec<(String, String)>,
    /// (name, group, kind) for `details`.
    pub details: Option<Box<(String, String, String)>>,
}

impl ApiErr {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            causes: vec![],
            details: None,
        }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        );
        e.details = Some(Box::new((name.into(), rt.group.clone(), rt.plural.clone())));
        e
    }

    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some((name, group, kind)) = self.details.as_deref() {
            s["details"] = json!({"name": name, "group": group, "kind": kind});
        }
        if !self.causes.is_empty() {
            s["details"]["causes"] = Value::Array(
                self.causes
                    .iter()
                    .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
                    .collect(),
            );
        }
        s
    }
}

/// One change, as a watch stream sends it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub resource: String,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
    /// For MODIFIED, the object before: a watch with a selector sends DELETED when the object
    /// stops matching it and ADDED when it starts to, as kube-apiserver does.
    pub previous: Option<Value>,
}

/// Key of a stored object: (qualified resource, namespace or "", name).
type Key = (String, String, String);

/// How many changes are kept for watches that resume from a resourceVersion.
const HISTORY: usize = 50_000;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// The node the sandbox schedules a pod on once its claims are bound.
pub const SANDBOX_NODE: &str = "sandbox-node";

/// One request of the audit log.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub user_agent: String,
    pub code: u16,
}

impl AuditEntry {
    /// The request as `verb resource[/subresource]` (`patch lustreworkspaces.workspaces.lustre.dev/status`).
    pub fn request(&self) -> String {
        if self.subresource.is_empty() {
            format!("{} {}", self.verb, self.resource)
        } else {
            format!("{} {}/{}", self.verb, self.resource, self.subresource)
        }
    }

    /// The same record from one event of kube-apiserver's audit log (`audit.k8s.io/v1`, level
    /// Metadata or more), so that the sandbox's audit and a real control plane's are read
    /// alike; `None` for a request on no object (discovery, `/version`).
    pub fn from_apiserver(event: &Value) -> Option<Self> {
        let r = event["objectRef"].as_object()?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let resource = match text(r.get("apiGroup")) {
            g if g.is_empty() => text(r.get("resource")),
            g => format!("{}.{g}", text(r.get("resource"))),
        };
        Some(Self {
            verb: text(event.get("verb")),
            resource,
            subresource: text(r.get("subresource")),
            namespace: text(r.get("namespace")),
            name: text(r.get("name")),
            user_agent: text(event.get("userAgent")),
            code: event["responseStatus"]["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
        })
    }
}

#[derive(Debug)]
pub struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    tx: broadcast::Sender<Arc<Change>>,
    pub audit: Vec<AuditEntry>,
    /// Injected API-server misbehaviour (fault suite).
    pub faults: KubeFaults,
    /// Volumes, claims and pods written (or related to one written) since the built-in
    /// controllers last ran: the only objects those controllers look at.
    dirty: BTreeSet<Key>,
    /// uid → key of every stored object.
    by_uid: HashMap<String, Key>,
    /// Owner uid → keys of the objects naming it in `ownerReferences`.
    owned: HashMap<String, BTreeSet<Key>>,
    /// Objects the garbage collector must look at: dependents of removed owners and objects
    /// written naming owners.
    gc_queue: BTreeSet<Key>,
    /// Objects being deleted in the foreground (finalizer `foregroundDeletion`).
    foreground: BTreeSet<Key>,
    uid_seq: u64,
    /// Watches may not resume from before this resourceVersion (like etcd compaction).
    compacted: u64,
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Everything but metadata and status: what bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(65_536);
        let mut s = Self {
            types: registry::builtins(),
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            tx,
            audit: Vec::new(),
            faults: KubeFaults::default(),
            dirty: BTreeSet::new(),
            by_uid: HashMap::new(),
            owned: HashMap::new(),
            gc_queue: BTreeSet::new(),
            foreground: BTreeSet::new(),
            uid_seq: 0,
            compacted: 0,
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}});
            let rt = s.find_type("", "namespaces").cloned().expect("namespaces");
            let _ = s.create(&rt, "", obj);
        }
        s
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn find_type(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
    }

    fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
        (
            rt.qualified(),
            if rt.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    fn next_uid(&mut self) -> String {
        self.uid_seq += 1;
        uuid::Uuid::new_v4().to_string()
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiErr> {
        self.objects
            .get(&Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiErr::not_found(rt, name))
    }

    /// Objects of a type, in a namespace or (empty `ns`) all.
    pub fn list(&self, rt: &ResourceType, ns: &str) -> Vec<Value> {
        let ns = if rt.namespaced { ns } else { "" };
        self.scan(&rt.qualified(), ns)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Objects of a kind found by group and plural (tests and the benchmark read the store
    /// this way); empty when the kind is not served.
    pub fn list_kind(&self, group: &str, plural: &str, ns: &str) -> Vec<Value> {
        match self.find_type(group, plural) {
            Some(rt) => self.list(rt, ns),
            None => Vec::new(),
        }
    }

    /// How many objects of a kind (by group and plural) satisfy `pred`, without copying any
    /// (cheap enough to poll while the server is busy).
    pub fn count_kind(
        &self,
        group: &str,
        plural: &str,
        ns: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        let Some(rt) = self.find_type(group, plural) else {
            return 0;
        };
        let ns = if rt.namespaced { ns } else { "" };
        self.scan(&rt.qualified(), ns)
            .filter(|(_, v)| pred(v))
            .count()
    }

    /// The stored objects of resource `q` (qualified), in namespace `ns` or (empty) all: a
    /// range of the ordered map, not a scan of every object.
    fn scan<'a>(
        &'a self,
        q: &'a str,
        ns: &'a str,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let start = (q.to_string(), ns.to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(move |((r, n, _), _)| r == q && (ns.is_empty() || n == ns))
    }

    fn set(&mut self, rt: &ResourceType, key: &Key, obj: Value) {
        let mut obj = obj;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let previous = self.objects.get(key).cloned();
        self.put(key.clone(), obj.clone());
        self.record_modified(rt, previous, obj);
    }

    /// Stores an object and keeps the indexes (uid, owners, foreground deletions, what the
    /// built-in controllers must look at) in step.
    fn put(&mut self, key: Key, obj: Value) {
        if let Some(old) = self.objects.remove(&key) {
            self.unindex(&key, &old);
        }
        let facts = Facts::of(&key, &obj);
        self.objects.insert(key.clone(), obj);
        if !facts.uid.is_empty() {
            self.by_uid.insert(facts.uid, key.clone());
        }
        if !facts.owners.is_empty() {
            // An object naming owners that do not exist is collected.
            self.gc_queue.insert(key.clone());
        }
        for owner in facts.owners {
            self.owned.entry(owner).or_default().insert(key.clone());
        }
        if facts.foreground {
            self.foreground.insert(key);
        }
        self.dirty.extend(facts.related);
    }

    /// Drops a stored object's entries from the indexes (it was replaced or removed).
    fn unindex(&mut self, key: &Key, obj: &Value) {
        let facts = Facts::of(key, obj);
        if self.by_uid.get(&facts.uid) == Some(key) {
            self.by_uid.remove(&facts.uid);
        }
        for owner in facts.owners {
            if let Some(set) = self.owned.get_mut(&owner) {
                set.remove(key);
                if set.is_empty() {
                    self.owned.remove(&owner);
                }
            }
        }
        self.foreground.remove(key);
        self.dirty.extend(facts.related);
    }
}

/// Stored keys of the kinds the built-in controllers act on.
const PVS: &str = "persistentvolumes";
const PVCS: &str = "persistentvolumeclaims";
const PODS: &str = "pods";

/// The claim names a pod's volumes use.
fn pod_claims(pod: &Value) -> impl Iterator<Item = &str> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
}

/// What the store's indexes record of one object.
struct Facts {
    uid: String,
    owners: Vec<String>,
    foreground: bool,
    /// Volumes, claims and pods whose binding or phase may follow from this object: itself
    /// and the volume or claims it names.
    related: Vec<Key>,
}

impl Facts {
    pub(super) fn of(key: &Key, obj: &Value) -> Self {
        let m = &obj["metadata"];
        let mut related = Vec::new();
        match key.0.as_str() {
            PVS => {
                related.push(key.clone());
                let r = &obj["spec"]["claimRef"];
                if let (Some(ns), Some(name)) = (r["namespace"].as_str(), r["name"].as_str()) {
                    related.push((PVCS.to_string(), ns.to_string(), name.to_string()));
                }
            }
            PVCS => {
                related.push(key.clone());
                if let Some(vol) = obj["spec"]["volumeName"].as_str() {
                    related.push((PVS.to_string(), String::new(), vol.to_string()));
                }
            }
            PODS => {
                related.push(key.clone());
                related.extend(
                    pod_claims(obj).map(|c| (PVCS.to_string(), key.1.clone(), c.to_string())),
                );
            }
            _ => {}
        }
        Self {
            uid: m["uid"].as_str().unwrap_or_default().to_string(),
            owners: m["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect(),
            foreground: !m["deletionTimestamp"].is_null()
                && finalizers(obj).iter().any(|f| f == FOREGROUND),
            related,
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// API-server faults for the fault suite: conflicts on writes and watches that end early.
#[derive(Clone, Debug, Default)]
pub struct KubeFaults {
    /// Every n-th write (update or patch) by a client other than kubectl answers `409
    /// Conflict`; 0: never.
    pub conflict_one_in: u64,
    /// Watches end after this long (the client must re-watch from its last version).
    pub watch_lifetime: Option<std::time::Duration>,
    /// Writes seen by the conflict counter.
    pub writes: u64,
    /// Conflicts injected so far.
    pub conflicts: u64,
}

impl KubeFaults {
    /// Whether this write should fail with a conflict (counts it).
    pub fn conflict(&mut self) -> bool {
        if self.conflict_one_in == 0 {
            return false;
        }
        self.writes += 1;
        let hit = self.writes.is_multiple_of(self.conflict_one_in);
        if hit {
            self.conflicts += 1;
        }
        hit
    }
}

/// The finalizer that holds an owner during foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";

/// A delete's `propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    /// From a DeleteOptions body or the `propagationPolicy` query parameter.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Foreground") => Self::Foreground,
            Some("Orphan") => Self::Orphan,
            _ => Self::Background,
        }
    }
}

/// Metadata of `obj` as a map (empty when absent).
pub fn labels_of(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}
