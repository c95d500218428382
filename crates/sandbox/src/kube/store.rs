//! The sandbox API server's objects and the API machinery around them: resource versions,
//! generations, finalizers and deletion, admission of custom resources (schema + CEL), the
//! status subresource, watch events with history, and the few controllers a cluster runs that
//! this operator relies on (PVC protection, pre-bound PV/PVC binding, owner garbage
//! collection, pods starting once their claims are bound).

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
}

/// Key of a stored object: (qualified resource, namespace or "", name).
type Key = (String, String, String);

/// How many changes are kept for watches that resume from a resourceVersion.
const HISTORY: usize = 50_000;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
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

    fn record(&mut self, rt: &ResourceType, kind: &'static str, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: rt.qualified(),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kind,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        let _ = self.tx.send(change);
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

    fn admit(&self, rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<Value, ApiErr> {
        if rt.group == "apiextensions.k8s.io" {
            Self::admit_crd(obj)?;
        }
        let Some(schema) = rt.schema.as_ref().filter(|_| rt.custom) else {
            return Ok(obj.clone());
        };
        let defaulted = lustre_api::admission::apply_defaults(schema, obj);
        let violations = lustre_api::admission::admit(schema, &defaulted, old);
        if violations.is_empty() {
            return Ok(defaulted);
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let causes: Vec<(String, String)> = violations
            .iter()
            .map(|v| {
                // A rule on the object itself: no value printed, as kube-apiserver does.
                if v.field == lustre_api::messages::ROOT_FIELD {
                    return (v.field.clone(), format!("Invalid value: {}", v.message));
                }
                let value = super::value_at(&defaulted, &v.field);
                (
                    v.field.clone(),
                    format!("Invalid value: {value}: {}", v.message),
                )
            })
            .collect();
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut e = ApiErr::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {}",
                rt.qualified_kind(),
                if listed.len() == 1 {
                    listed[0].clone()
                } else {
                    format!("[{}]", listed.join(", "))
                }
            ),
        );
        e.causes = causes;
        e.details = Some(Box::new((name.into(), rt.group.clone(), rt.kind.clone())));
        Err(e)
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiErr> {
        if !rt.namespaced {
            return Ok(());
        }
        let nsrt = self
            .find_type("", "namespaces")
            .cloned()
            .ok_or_else(|| ApiErr::new(500, "InternalError", "no namespaces"))?;
        match self.objects.get(&Self::key(&nsrt, "", ns)) {
            None => Err(ApiErr::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            )),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => Err(ApiErr::new(
                403,
                "Forbidden",
                format!(
                    "{} in namespace {ns} is forbidden: namespace {ns} is being terminated",
                    rt.plural
                ),
            )),
            _ => Ok(()),
        }
    }

    pub fn create(&mut self, rt: &ResourceType, ns: &str, mut obj: Value) -> Result<Value, ApiErr> {
        self.check_namespace(rt, ns)?;
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            if let Some(prefix) = obj["metadata"]["generateName"].as_str() {
                name = format!("{prefix}{:05x}", self.uid_seq + 1);
            } else {
                return Err(ApiErr::new(
                    422,
                    "Invalid",
                    format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        rt.qualified_kind()
                    ),
                ));
            }
        }
        let key = Self::key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            let mut e = ApiErr::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.qualified()),
            );
            e.details = Some(Box::new((name, rt.group.clone(), rt.plural.clone())));
            return Err(e);
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let mut obj = self.admit(rt, &obj, None)?;
        let m = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiErr::new(400, "BadRequest", "metadata must be an object"))?;
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(self.next_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        m.remove("resourceVersion");
        if rt.plural == "persistentvolumeclaims" && rt.group.is_empty() {
            let f = m.entry("finalizers").or_insert(json!([]));
            if let Some(a) = f.as_array_mut()
                && !a.iter().any(|x| x == PVC_PROTECTION)
            {
                a.push(json!(PVC_PROTECTION));
            }
        }
        if rt.kind == "Secret" && obj["type"].as_str().is_none_or(str::is_empty) {
            // kube-apiserver's defaulting.
            obj["type"] = json!("Opaque");
        }
        if rt.kind == "Pod" {
            obj["status"] = json!({"phase": "Pending"});
        } else if rt.kind == "Namespace" && obj["status"].is_null() {
            obj["status"] = json!({"phase": "Active"});
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.put(key, obj.clone());
        self.record(rt, "ADDED", obj.clone());
        if rt.group == "apiextensions.k8s.io" {
            self.register_crd(&obj);
        }
        if rt.group == "events.k8s.io" {
            self.mirror_event(&obj);
        }
        self.settle();
        self.get(rt, ns, &name)
    }

    /// kube-apiserver refuses a CRD whose CEL rules could cost more than its budget; the
    /// sandbox has no cost estimator, so it refuses the unbounded shapes that cause it
    /// (`lustre_api::cel_bounds`): stricter than the real server, never laxer on those.
    fn admit_crd(crd: &Value) -> Result<(), ApiErr> {
        let versions = crd["spec"]["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut causes = Vec::new();
        for (i, version) in versions.iter().enumerate() {
            let schema = &version["schema"]["openAPIV3Schema"];
            // Where kube-apiserver reports it: one version's schema as the CRD's validation.
            let at = if versions.len() == 1 {
                "spec.validation".to_string()
            } else {
                format!("spec.versions[{i}].schema")
            };
            for u in lustre_api::cel_bounds::unbounded_rules(schema) {
                causes.push((
                    format!("{at}.{}", u.field),
                    format!(
                        "Forbidden: estimated rule cost exceeds budget ({}; the sandbox does not estimate by how much) (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)",
                        u.reason
                    ),
                ));
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut e = ApiErr::new(
            422,
            "Invalid",
            format!(
                "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: [{}]",
                listed.join(", ")
            ),
        );
        e.causes = causes;
        e.details = Some(Box::new((
            name.into(),
            "apiextensions.k8s.io".into(),
            "CustomResourceDefinition".into(),
        )));
        Err(e)
    }

    /// kube-apiserver stores events.k8s.io/v1 and core/v1 Events as one resource, so
    /// `kubectl describe` and `kubectl get events` (core) show what controllers record through
    /// the newer API. Writes the core view of an events.k8s.io Event.
    fn mirror_event(&mut self, ev: &Value) {
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
            .map(|t| {
                t.split('.')
                    .next()
                    .unwrap_or(t)
                    .trim_end_matches('Z')
                    .to_string()
                    + "Z"
            })
            .unwrap_or_else(now_rfc3339);
        let key = Self::key(&core, &ns, &name);
        let first = self
            .objects
            .get(&key)
            .and_then(|o| o["firstTimestamp"].as_str().map(str::to_string))
            .unwrap_or_else(|| when.clone());
        let last = ev["series"]["lastObservedTime"]
            .as_str()
            .map(|t| {
                t.split('.')
                    .next()
                    .unwrap_or(t)
                    .trim_end_matches('Z')
                    .to_string()
                    + "Z"
            })
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
        let existed = self.objects.contains_key(&key);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.put(key, obj.clone());
        self.record(&core, if existed { "MODIFIED" } else { "ADDED" }, obj);
    }

    /// Replaces an object (PUT, or the result of a patch). With `status_only`, only
    /// `.status` changes; otherwise `.status` is kept when the kind has a status subresource.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        status_only: bool,
    ) -> Result<Value, ApiErr> {
        let key = Self::key(rt, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiErr::not_found(rt, name))?;
        if let Some(rv) = obj["metadata"]["resourceVersion"]
            .as_str()
            .filter(|r| !r.is_empty())
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            let mut e = ApiErr::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    rt.qualified()
                ),
            );
            e.details = Some(Box::new((name.into(), rt.group.clone(), rt.plural.clone())));
            return Err(e);
        }
        let mut new = if status_only {
            let mut n = old.clone();
            n["status"] = obj["status"].take();
            if let Some(owners) = obj["metadata"].get("managedFields") {
                n["metadata"]["managedFields"] = owners.clone();
            }
            n
        } else {
            if rt.status_subresource {
                obj["status"] = old["status"].clone();
            }
            obj["apiVersion"] = json!(rt.api_version());
            obj["kind"] = json!(rt.kind);
            let mut n = if status_only {
                obj
            } else {
                self.admit(rt, &obj, Some(&old))?
            };
            // Immutable metadata stays as stored.
            for k in [
                "uid",
                "creationTimestamp",
                "name",
                "namespace",
                "deletionTimestamp",
                "generation",
            ] {
                match old["metadata"].get(k) {
                    Some(v) => n["metadata"][k] = v.clone(),
                    None => {
                        if let Some(m) = n["metadata"].as_object_mut() {
                            m.remove(k);
                        }
                    }
                }
            }
            n
        };
        if !status_only && rt.tracks_generation() && spec_part(&new) != spec_part(&old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        if new == old {
            return Ok(old);
        }
        // A deleting object whose last finalizer is removed is gone.
        if !new["metadata"]["deletionTimestamp"].is_null() && finalizers(&new).is_empty() {
            self.remove(rt, &key);
            self.settle();
            return Ok(new);
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.put(key, new.clone());
        self.record(rt, "MODIFIED", new.clone());
        if rt.group == "events.k8s.io" {
            self.mirror_event(&new);
        }
        self.settle();
        Ok(self
            .objects
            .get(&Self::key(rt, ns, name))
            .cloned()
            .unwrap_or(new))
    }

    fn remove(&mut self, rt: &ResourceType, key: &Key) {
        if let Some(mut obj) = self.objects.remove(key) {
            self.unindex(key, &obj);
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            if let Some(dependents) = self.owned.get(uid) {
                self.gc_queue.extend(dependents.iter().cloned());
            }
            self.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.record(rt, "DELETED", obj.clone());
            if rt.group == "apiextensions.k8s.io" {
                let crd_types = registry::from_crd(&obj);
                self.types
                    .retain(|t| !crd_types.iter().any(|c| c.qualified() == t.qualified()));
            }
        }
    }

    /// Deletes: with finalizers, marks `deletionTimestamp`; without, removes (and collects
    /// dependents in the background).
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiErr> {
        self.delete_with(rt, ns, name, Propagation::Background)
    }

    /// Deletes with a `propagationPolicy`: `Background` removes the object and lets the
    /// garbage collector delete its dependents; `Foreground` keeps it (finalizer
    /// `foregroundDeletion`) until its dependents are gone; `Orphan` removes the owner
    /// reference from its dependents and leaves them.
    pub fn delete_with(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        propagation: Propagation,
    ) -> Result<Value, ApiErr> {
        let key = Self::key(rt, ns, name);
        let mut obj = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiErr::not_found(rt, name))?;
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match propagation {
            Propagation::Background => {}
            Propagation::Orphan => self.orphan_dependents(&uid),
            Propagation::Foreground => {
                if self.owned.get(&uid).is_some_and(|d| !d.is_empty())
                    && !finalizers(&obj).iter().any(|f| f == FOREGROUND)
                {
                    let mut list = finalizers(&obj);
                    list.push(FOREGROUND.to_string());
                    obj["metadata"]["finalizers"] = json!(list);
                }
            }
        }
        if rt.kind == "Namespace" {
            // Delete everything in the namespace, then the namespace once it is empty.
            let contained: Vec<(ResourceType, String)> = self
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .filter_map(|(r, _, o)| {
                    self.types
                        .iter()
                        .find(|t| t.qualified() == *r)
                        .map(|t| (t.clone(), o.clone()))
                })
                .collect();
            for (t, o) in contained {
                let _ = self.delete(&t, name, &o);
            }
        }
        if finalizers(&obj).is_empty()
            && !(rt.kind == "Namespace" && self.objects.keys().any(|(_, n, _)| n == name))
        {
            self.remove(rt, &key);
            self.settle();
            return Ok(obj);
        }
        if obj["metadata"]["deletionTimestamp"].is_null() {
            obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            if rt.kind == "Namespace" {
                obj["status"]["phase"] = json!("Terminating");
            }
            self.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.put(key, obj.clone());
            self.record(rt, "MODIFIED", obj.clone());
            self.settle();
        }
        Ok(obj)
    }

    fn register_crd(&mut self, crd: &Value) {
        for t in registry::from_crd(crd) {
            self.types.retain(|x| {
                !(x.group == t.group && x.version == t.version && x.plural == t.plural)
            });
            self.types.push(t);
        }
        // Kubernetes reports the CRD as established.
        let rt = self
            .find_type("apiextensions.k8s.io", "customresourcedefinitions")
            .cloned();
        if let Some(rt) = rt {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = Self::key(&rt, "", &name);
            if let Some(obj) = self.objects.get_mut(&key) {
                obj["status"] = json!({
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_rfc3339()}
                    ],
                    "acceptedNames": crd["spec"]["names"].clone(),
                    "storedVersions": crd["spec"]["versions"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect::<Vec<_>>(),
                });
            }
        }
    }

    fn set(&mut self, rt: &ResourceType, key: &Key, obj: Value) {
        let mut obj = obj;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.put(key.clone(), obj.clone());
        self.record(rt, "MODIFIED", obj);
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

    /// Runs the cluster's built-in controllers until nothing changes: binding, PVC
    /// protection, pod phases, owner garbage collection, foreground deletion. Each looks only
    /// at the objects written since it last ran (and their volumes, claims and pods), so a
    /// write costs the same with 10 or 10,000 objects stored.
    fn settle(&mut self) {
        for _ in 0..16 {
            let dirty = std::mem::take(&mut self.dirty);
            let mut changed = false;
            if !dirty.is_empty() {
                changed |= self.bind_volumes(&dirty);
                changed |= self.release_protected_claims(&dirty);
                changed |= self.start_pods(&dirty);
            }
            changed |= self.collect_garbage();
            changed |= self.finish_foreground_deletions();
            if !changed && self.dirty.is_empty() {
                return;
            }
        }
    }

    fn core(&self, plural: &str) -> ResourceType {
        self.find_type("", plural).cloned().unwrap_or_else(|| {
            registry::builtins()
                .into_iter()
                .find(|t| t.plural == plural)
                .expect("builtin")
        })
    }

    /// Binds pre-bound volumes and claims among `dirty`: a volume is Bound when the claim
    /// its `claimRef` names asks for it by `volumeName`, Released when that claim is gone.
    fn bind_volumes(&mut self, dirty: &BTreeSet<Key>) -> bool {
        let (pvc_t, pv_t) = (
            self.core("persistentvolumeclaims"),
            self.core("persistentvolumes"),
        );
        let mut volume_updates: Vec<(Key, Value)> = Vec::new();
        let mut claim_updates: Vec<(Key, Value)> = Vec::new();
        for key in dirty {
            let Some(obj) = self.objects.get(key) else {
                continue;
            };
            if key.0 == PVS {
                let pv = obj;
                let claim_ref = &pv["spec"]["claimRef"];
                let claim = self
                    .objects
                    .get(&(
                        PVCS.to_string(),
                        claim_ref["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        claim_ref["name"].as_str().unwrap_or_default().to_string(),
                    ))
                    .filter(|c| {
                        c["spec"]["volumeName"].as_str() == pv["metadata"]["name"].as_str()
                    });
                let phase = match claim {
                    Some(_) => "Bound",
                    None if matches!(
                        pv["status"]["phase"].as_str(),
                        Some("Bound") | Some("Released")
                    ) =>
                    {
                        "Released"
                    }
                    None => "Available",
                };
                if pv["status"]["phase"].as_str() != Some(phase) {
                    let mut pv = pv.clone();
                    pv["status"] = json!({"phase": phase});
                    if let Some(c) = claim {
                        pv["spec"]["claimRef"]["uid"] = c["metadata"]["uid"].clone();
                    }
                    volume_updates.push((key.clone(), pv));
                }
            } else if key.0 == PVCS {
                let claim = obj;
                let vol = claim["spec"]["volumeName"].as_str().unwrap_or_default();
                let bound = self
                    .objects
                    .get(&(PVS.to_string(), String::new(), vol.to_string()))
                    .filter(|pv| {
                        pv["spec"]["claimRef"]["namespace"].as_str() == Some(key.1.as_str())
                            && pv["spec"]["claimRef"]["name"].as_str() == Some(key.2.as_str())
                    });
                let status = match bound {
                    Some(pv) => {
                        json!({"phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": pv["spec"]["capacity"]})
                    }
                    None => json!({"phase": "Pending"}),
                };
                if claim["status"] != status {
                    let mut c = claim.clone();
                    c["status"] = status;
                    claim_updates.push((key.clone(), c));
                }
            }
        }
        let changed = !volume_updates.is_empty() || !claim_updates.is_empty();
        for (key, pv) in volume_updates {
            self.set(&pv_t, &key, pv);
        }
        for (key, c) in claim_updates {
            self.set(&pvc_t, &key, c);
        }
        changed
    }

    /// The pods using `claim` as pvc-protection judges it: scheduled (a node name) and not
    /// finished. An unscheduled pod holds no claim.
    fn pods_using(&self, ns: &str, claim: &str) -> Vec<String> {
        self.scan(PODS, ns)
            .filter(|(_, p)| {
                p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
                    && !matches!(
                        p["status"]["phase"].as_str(),
                        Some("Succeeded") | Some("Failed")
                    )
                    && pod_claims(p).any(|c| c == claim)
            })
            .map(|(k, _)| k.2.clone())
            .collect()
    }

    /// PVC protection: a deleting claim among `dirty` goes once no pod uses it.
    fn release_protected_claims(&mut self, dirty: &BTreeSet<Key>) -> bool {
        let pvc_t = self.core("persistentvolumeclaims");
        let mut changed = false;
        for key in dirty.iter().filter(|k| k.0 == PVCS) {
            let Some(claim) = self.objects.get(key).filter(|c| {
                !c["metadata"]["deletionTimestamp"].is_null()
                    && finalizers(c).iter().any(|f| f == PVC_PROTECTION)
            }) else {
                continue;
            };
            if self.pods_using(&key.1, &key.2).is_empty() {
                let mut c = claim.clone();
                let rest: Vec<String> = finalizers(claim)
                    .into_iter()
                    .filter(|f| f != PVC_PROTECTION)
                    .collect();
                c["metadata"]["finalizers"] = json!(rest);
                if rest.is_empty() {
                    self.remove(&pvc_t, key);
                } else {
                    self.set(&pvc_t, key, c);
                }
                changed = true;
            }
        }
        changed
    }

    /// Pending pods among `dirty`, or using a claim among it, run once all their claims are
    /// bound.
    fn start_pods(&mut self, dirty: &BTreeSet<Key>) -> bool {
        let pod_t = self.core("pods");
        let mut pods: BTreeSet<Key> = dirty.iter().filter(|k| k.0 == PODS).cloned().collect();
        for claim in dirty.iter().filter(|k| k.0 == PVCS) {
            pods.extend(
                self.scan(PODS, &claim.1)
                    .filter(|(_, p)| pod_claims(p).any(|c| c == claim.2))
                    .map(|(k, _)| k.clone()),
            );
        }
        let mut changed = false;
        for key in pods {
            let Some(pod) = self.objects.get(&key) else {
                continue;
            };
            if !pod["metadata"]["deletionTimestamp"].is_null()
                || pod["status"]["phase"].as_str() != Some("Pending")
            {
                continue;
            }
            let claims_bound = pod_claims(pod).all(|c| {
                self.objects
                    .get(&(PVCS.to_string(), key.1.clone(), c.to_string()))
                    .is_some_and(|pvc| pvc["status"]["phase"].as_str() == Some("Bound"))
            });
            if claims_bound {
                let mut p = pod.clone();
                // Scheduled (as a scheduler's binding would) and started (as a kubelet would).
                if p["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
                    p["spec"]["nodeName"] = json!(SANDBOX_NODE);
                }
                p["status"] = json!({"phase": "Running", "startTime": now_rfc3339()});
                self.set(&pod_t, &key, p);
                changed = true;
            }
        }
        changed
    }

    /// Objects whose owner references name `uid`.
    fn dependents(&self, uid: &str) -> Vec<Key> {
        self.owned
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for key in self.dependents(uid) {
            let Some(rt) = self.types.iter().find(|t| t.qualified() == key.0).cloned() else {
                continue;
            };
            if let Some(mut o) = self.objects.get(&key).cloned() {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                o["metadata"]["resourceVersion"] = Value::Null;
                let _ = self.update(&rt, &key.1, &key.2, o, false);
            }
        }
    }

    /// The garbage collector's half of foreground deletion: delete the dependents of an
    /// object marked `foregroundDeletion`, and release it once none is left.
    fn finish_foreground_deletions(&mut self) -> bool {
        let marked: Vec<Key> = self.foreground.iter().cloned().collect();
        let mut changed = false;
        for key in marked {
            let Some(obj) = self.objects.get(&key).cloned() else {
                continue;
            };
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            let dependents = self.dependents(uid);
            for dep in &dependents {
                if let Some(rt) = self.types.iter().find(|t| t.qualified() == dep.0).cloned()
                    && self
                        .objects
                        .get(dep)
                        .is_some_and(|o| o["metadata"]["deletionTimestamp"].is_null())
                {
                    let _ = self.delete_with(&rt, &dep.1, &dep.2, Propagation::Foreground);
                    changed = true;
                }
            }
            if dependents.is_empty()
                && let Some(rt) = self.types.iter().find(|t| t.qualified() == key.0).cloned()
            {
                let mut released = obj.clone();
                let rest: Vec<String> = finalizers(&obj)
                    .into_iter()
                    .filter(|f| f != FOREGROUND)
                    .collect();
                released["metadata"]["finalizers"] = json!(rest);
                released["metadata"]["resourceVersion"] = Value::Null;
                let _ = self.update(&rt, &key.1, &key.2, released, false);
                changed = true;
            }
        }
        changed
    }

    /// Deletes queued objects whose every owner is gone (background propagation).
    fn collect_garbage(&mut self) -> bool {
        let queue = std::mem::take(&mut self.gc_queue);
        let mut changed = false;
        for key in queue {
            let orphaned = self.objects.get(&key).is_some_and(|o| {
                let owners = o["metadata"]["ownerReferences"].as_array();
                o["metadata"]["deletionTimestamp"].is_null()
                    && owners.is_some_and(|os| {
                        !os.is_empty()
                            && os.iter().all(|r| {
                                !self
                                    .by_uid
                                    .contains_key(r["uid"].as_str().unwrap_or_default())
                            })
                    })
            });
            if orphaned
                && let Some(rt) = self.types.iter().find(|t| t.qualified() == key.0).cloned()
            {
                let _ = self.delete(&rt, &key.1, &key.2);
                changed = true;
            }
        }
        changed
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
    fn of(key: &Key, obj: &Value) -> Self {
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
