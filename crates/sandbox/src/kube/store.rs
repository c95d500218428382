//! The sandbox API server's objects and the API machinery around them: resource versions,
//! generations, finalizers and deletion, admission of custom resources (schema + CEL), the
//! status subresource, watch events with history, and the few controllers a cluster runs that
//! this operator relies on (PVC protection, pre-bound PV/PVC binding, owner garbage
//! collection, pods starting once their claims are bound).

use std::collections::{BTreeMap, VecDeque};
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
    /// Something was removed, or created naming an owner, since the last garbage collection.
    gc_due: bool,
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
            gc_due: false,
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
        let q = rt.qualified();
        self.objects
            .iter()
            .filter(|((r, n, _), _)| *r == q && (ns.is_empty() || !rt.namespaced || n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn admit(&self, rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<Value, ApiErr> {
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
        if rt.kind == "Pod" {
            obj["status"] = json!({"phase": "Pending"});
        } else if rt.kind == "Namespace" && obj["status"].is_null() {
            obj["status"] = json!({"phase": "Active"});
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.objects.insert(key, obj.clone());
        self.record(rt, "ADDED", obj.clone());
        if rt.group == "apiextensions.k8s.io" {
            self.register_crd(&obj);
        }
        if rt.group == "events.k8s.io" {
            self.mirror_event(&obj);
        }
        if obj["metadata"]["ownerReferences"].is_array() {
            self.gc_due = true;
        }
        if Self::drives_controllers(rt) || self.gc_due {
            self.settle();
        }
        self.get(rt, ns, &name)
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
        self.objects.insert(key, obj.clone());
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
        self.objects.insert(key, new.clone());
        self.record(rt, "MODIFIED", new.clone());
        if rt.group == "events.k8s.io" {
            self.mirror_event(&new);
        }
        // Status writes of custom resources (most writes) concern no built-in controller.
        if Self::drives_controllers(rt) || !new["metadata"]["deletionTimestamp"].is_null() {
            self.settle();
        }
        Ok(self
            .objects
            .get(&Self::key(rt, ns, name))
            .cloned()
            .unwrap_or(new))
    }

    fn remove(&mut self, rt: &ResourceType, key: &Key) {
        if let Some(mut obj) = self.objects.remove(key) {
            self.gc_due = true;
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
                if !self.dependents(&uid).is_empty()
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
            self.objects.insert(key, obj.clone());
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
        self.objects.insert(key.clone(), obj.clone());
        self.record(rt, "MODIFIED", obj);
    }

    /// Whether a write of this kind can give the built-in controllers something to do
    /// (removals and deletions always can).
    fn drives_controllers(rt: &ResourceType) -> bool {
        rt.group.is_empty()
            && matches!(
                rt.plural.as_str(),
                "persistentvolumes" | "persistentvolumeclaims" | "pods"
            )
    }

    /// Runs the cluster's built-in controllers until nothing changes: binding, PVC
    /// protection, pod phases, owner garbage collection.
    fn settle(&mut self) {
        for _ in 0..16 {
            if !(self.bind_volumes()
                | self.release_protected_claims()
                | self.start_pods()
                | self.collect_garbage()
                | self.finish_foreground_deletions())
            {
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

    fn of_type(&self, rt: &ResourceType) -> Vec<(Key, Value)> {
        let q = rt.qualified();
        self.objects
            .iter()
            .filter(|((r, _, _), _)| *r == q)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn bind_volumes(&mut self) -> bool {
        let (pvc_t, pv_t) = (
            self.core("persistentvolumeclaims"),
            self.core("persistentvolumes"),
        );
        let (pvc_q, pv_q) = (pvc_t.qualified(), pv_t.qualified());
        // Decide on borrowed objects (indexes, no clones), then write what changed.
        let mut volume_updates: Vec<(Key, Value)> = Vec::new();
        let mut claim_updates: Vec<(Key, Value)> = Vec::new();
        {
            let claims: Vec<(&Key, &Value)> =
                self.objects.iter().filter(|(k, _)| k.0 == pvc_q).collect();
            let volumes: Vec<(&Key, &Value)> =
                self.objects.iter().filter(|(k, _)| k.0 == pv_q).collect();
            let claim_index: std::collections::HashMap<(&str, &str), &Value> = claims
                .iter()
                .map(|(k, c)| ((k.1.as_str(), k.2.as_str()), *c))
                .collect();
            let volume_index: std::collections::HashMap<&str, &Value> =
                volumes.iter().map(|(k, v)| (k.2.as_str(), *v)).collect();
            for (pv_key, pv) in &volumes {
                let claim_ref = &pv["spec"]["claimRef"];
                let claim = claim_index
                    .get(&(
                        claim_ref["namespace"].as_str().unwrap_or_default(),
                        claim_ref["name"].as_str().unwrap_or_default(),
                    ))
                    .filter(|c| {
                        c["spec"]["volumeName"].as_str() == pv["metadata"]["name"].as_str()
                    });
                let phase = match claim {
                    Some(_) => "Bound",
                    None if pv["status"]["phase"].as_str() == Some("Bound")
                        || pv["status"]["phase"].as_str() == Some("Released") =>
                    {
                        "Released"
                    }
                    None => "Available",
                };
                if pv["status"]["phase"].as_str() != Some(phase) {
                    let mut pv = (*pv).clone();
                    pv["status"] = json!({"phase": phase});
                    if let Some(c) = claim {
                        pv["spec"]["claimRef"]["uid"] = c["metadata"]["uid"].clone();
                    }
                    volume_updates.push(((*pv_key).clone(), pv));
                }
            }
            for (key, claim) in &claims {
                let vol = claim["spec"]["volumeName"].as_str().unwrap_or_default();
                let bound = volume_index.get(vol).filter(|pv| {
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
                    let mut c = (*claim).clone();
                    c["status"] = status;
                    claim_updates.push(((*key).clone(), c));
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

    fn pods_using(&self, ns: &str, claim: &str) -> Vec<String> {
        let pod_t = self.core("pods");
        self.of_type(&pod_t)
            .into_iter()
            .filter(|(k, p)| {
                k.1 == ns
                    && !matches!(
                        p["status"]["phase"].as_str(),
                        Some("Succeeded") | Some("Failed")
                    )
                    && p["spec"]["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim))
            })
            .map(|(k, _)| k.2)
            .collect()
    }

    fn release_protected_claims(&mut self) -> bool {
        let pvc_t = self.core("persistentvolumeclaims");
        let mut changed = false;
        let q = pvc_t.qualified();
        let deleting: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(k, c)| {
                k.0 == q
                    && !c["metadata"]["deletionTimestamp"].is_null()
                    && finalizers(c).iter().any(|f| f == PVC_PROTECTION)
            })
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        for (key, claim) in deleting {
            if self.pods_using(&key.1, &key.2).is_empty() {
                let mut c = claim.clone();
                let rest: Vec<String> = finalizers(&claim)
                    .into_iter()
                    .filter(|f| f != PVC_PROTECTION)
                    .collect();
                c["metadata"]["finalizers"] = json!(rest);
                if rest.is_empty() {
                    self.remove(&pvc_t, &key);
                } else {
                    self.set(&pvc_t, &key, c);
                }
                changed = true;
            }
        }
        changed
    }

    fn start_pods(&mut self) -> bool {
        let (pod_t, pvc_t) = (self.core("pods"), self.core("persistentvolumeclaims"));
        let mut changed = false;
        for (key, pod) in self.of_type(&pod_t) {
            if !pod["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let claims_bound = pod["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
                .all(|c| {
                    self.objects
                        .get(&Self::key(&pvc_t, &key.1, c))
                        .is_some_and(|pvc| pvc["status"]["phase"].as_str() == Some("Bound"))
                });
            let phase = if claims_bound { "Running" } else { "Pending" };
            if pod["status"]["phase"].as_str() == Some("Pending") && phase == "Running" {
                let mut p = pod.clone();
                p["status"] = json!({"phase": "Running", "startTime": now_rfc3339()});
                self.set(&pod_t, &key, p);
                changed = true;
            }
        }
        changed
    }

    /// Objects whose owner references name `uid`.
    fn dependents(&self, uid: &str) -> Vec<Key> {
        self.objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|os| os.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect()
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
        let marked: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                !o["metadata"]["deletionTimestamp"].is_null()
                    && finalizers(o).iter().any(|f| f == FOREGROUND)
            })
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        let mut changed = false;
        for (key, obj) in marked {
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

    fn collect_garbage(&mut self) -> bool {
        // Only a removal, or a new object naming an owner, can leave an orphan.
        if !std::mem::take(&mut self.gc_due) {
            return false;
        }
        let uids: std::collections::HashSet<&str> = self
            .objects
            .values()
            .filter_map(|o| o["metadata"]["uid"].as_str())
            .collect();
        let orphans: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                let owners = o["metadata"]["ownerReferences"].as_array();
                owners.is_some_and(|os| {
                    !os.is_empty()
                        && os
                            .iter()
                            .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut changed = false;
        for (res, ns, name) in orphans {
            if let Some(rt) = self.types.iter().find(|t| t.qualified() == res).cloned()
                && self
                    .objects
                    .get(&(res.clone(), ns.clone(), name.clone()))
                    .is_some_and(|o| o["metadata"]["deletionTimestamp"].is_null())
            {
                let _ = self.delete(&rt, &ns, &name);
                changed = true;
            }
        }
        changed
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
