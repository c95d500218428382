//! Writes: create, update (PUT, patches, status), delete with finalizers and propagation.

use serde_json::{Value, json};

use super::*;
use crate::kube::registry::{self, ResourceType};

impl Store {
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
        // kube-apiserver's StorageObjectInUseProtection admission.
        let protection = match rt.plural.as_str() {
            "persistentvolumeclaims" if rt.group.is_empty() => Some(PVC_PROTECTION),
            "persistentvolumes" if rt.group.is_empty() => Some(PV_PROTECTION),
            _ => None,
        };
        if let Some(p) = protection {
            let f = m.entry("finalizers").or_insert(json!([]));
            if let Some(a) = f.as_array_mut()
                && !a.iter().any(|x| x == p)
            {
                a.push(json!(p));
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
            let mut n = self.admit(rt, &obj, Some(&old))?;
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
        self.record_modified(rt, Some(old), new.clone());
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

    pub(super) fn remove(&mut self, rt: &ResourceType, key: &Key) {
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
            let previous = self.objects.get(&key).cloned();
            self.put(key, obj.clone());
            self.record_modified(rt, previous, obj.clone());
            self.settle();
        }
        Ok(obj)
    }
}
