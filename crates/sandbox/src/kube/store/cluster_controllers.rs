//! The controllers a cluster runs that this operator relies on: PV/PVC binding,
//! pvc-protection, pv-protection, pods starting once their claims are bound, owner garbage
//! collection and foreground deletion. They run after every write (`settle`) until nothing
//! changes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::kube::registry::{self, ResourceType};

impl Store {
    /// Runs the cluster's built-in controllers until nothing changes: binding, PVC
    /// protection, pod phases, owner garbage collection, foreground deletion. Each looks only
    /// at the objects written since it last ran (and their volumes, claims and pods), so a
    /// write costs the same with 10 or 10,000 objects stored.
    pub(super) fn settle(&mut self) {
        for _ in 0..16 {
            let dirty = std::mem::take(&mut self.dirty);
            let mut changed = false;
            if !dirty.is_empty() {
                changed |= self.bind_claims_to_prebound_volumes(&dirty);
                changed |= self.bind_volumes(&dirty);
                changed |= self.release_protected_claims(&dirty);
                changed |= self.release_protected_volumes(&dirty);
                changed |= self.start_pods(&dirty);
            }
            changed |= self.collect_garbage();
            changed |= self.finish_foreground_deletions();
            if !changed && self.dirty.is_empty() {
                return;
            }
        }
    }

    pub(super) fn core(&self, plural: &str) -> ResourceType {
        self.find_type("", plural).cloned().unwrap_or_else(|| {
            registry::builtins()
                .into_iter()
                .find(|t| t.plural == plural)
                .expect("builtin")
        })
    }

    /// A volume among `dirty` whose `claimRef` names a claim that asks for no volume yet (of
    /// its StorageClass, not being deleted): the claim gets the volume's name, as
    /// kube-controller-manager's binder does (a claim made before its volume, such as a
    /// WaitForFirstConsumer one).
    pub(super) fn bind_claims_to_prebound_volumes(&mut self, dirty: &BTreeSet<Key>) -> bool {
        let pvc_t = self.core("persistentvolumeclaims");
        let mut updates = Vec::new();
        for key in dirty.iter().filter(|k| k.0 == PVS) {
            let Some(pv) = self.objects.get(key) else {
                continue;
            };
            let r = &pv["spec"]["claimRef"];
            let claim_key = (
                PVCS.to_string(),
                r["namespace"].as_str().unwrap_or_default().to_string(),
                r["name"].as_str().unwrap_or_default().to_string(),
            );
            let Some(claim) = self.objects.get(&claim_key) else {
                continue;
            };
            if claim["spec"]["volumeName"]
                .as_str()
                .is_none_or(str::is_empty)
                && claim["metadata"]["deletionTimestamp"].is_null()
                && claim["spec"]["storageClassName"] == pv["spec"]["storageClassName"]
            {
                let mut c = claim.clone();
                c["spec"]["volumeName"] = pv["metadata"]["name"].clone();
                updates.push((claim_key, c));
            }
        }
        let changed = !updates.is_empty();
        for (key, c) in updates {
            self.set(&pvc_t, &key, c);
        }
        changed
    }

    /// Binds pre-bound volumes and claims among `dirty`: a volume is Bound when the claim
    /// its `claimRef` names asks for it by `volumeName`, Released when that claim is gone.
    pub(super) fn bind_volumes(&mut self, dirty: &BTreeSet<Key>) -> bool {
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

    /// The pods using `claim` as pvc-protection judges it for a deletion: scheduled (a node
    /// name), finished or not (kube-controller-manager 1.32 and 1.37 keep a claim while any
    /// scheduled pod names it in a volume). An unscheduled pod holds no claim.
    pub(super) fn pods_using(&self, ns: &str, claim: &str) -> Vec<String> {
        self.scan(PODS, ns)
            .filter(|(_, p)| {
                p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
                    && pod_claims(p).any(|c| c == claim)
            })
            .map(|(k, _)| k.2.clone())
            .collect()
    }

    /// PVC protection: a deleting claim among `dirty` goes once no pod uses it.
    pub(super) fn release_protected_claims(&mut self, dirty: &BTreeSet<Key>) -> bool {
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
                let claim = claim.clone();
                self.drop_finalizer(&pvc_t, key, claim, PVC_PROTECTION);
                changed = true;
            }
        }
        changed
    }

    /// PV protection: a deleting volume among `dirty` goes once it is not Bound (its claim
    /// gone, the binder marked it Released), as kube-controller-manager's pv-protection
    /// judges it.
    pub(super) fn release_protected_volumes(&mut self, dirty: &BTreeSet<Key>) -> bool {
        let pv_t = self.core("persistentvolumes");
        let mut changed = false;
        for key in dirty.iter().filter(|k| k.0 == PVS) {
            let Some(pv) = self.objects.get(key).filter(|v| {
                !v["metadata"]["deletionTimestamp"].is_null()
                    && v["status"]["phase"].as_str() != Some("Bound")
                    && finalizers(v).iter().any(|f| f == PV_PROTECTION)
            }) else {
                continue;
            };
            let pv = pv.clone();
            self.drop_finalizer(&pv_t, key, pv, PV_PROTECTION);
            changed = true;
        }
        changed
    }

    /// Takes `finalizer` off a stored object, as its controller does; the object goes when it
    /// was the last one.
    fn drop_finalizer(&mut self, rt: &ResourceType, key: &Key, mut obj: Value, finalizer: &str) {
        let rest: Vec<String> = finalizers(&obj)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        if rest.is_empty() {
            self.remove(rt, key);
        } else {
            obj["metadata"]["finalizers"] = json!(rest);
            self.set(rt, key, obj);
        }
    }

    /// Pending pods among `dirty`, or using a claim among it, run once all their claims are
    /// bound.
    pub(super) fn start_pods(&mut self, dirty: &BTreeSet<Key>) -> bool {
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
    pub(super) fn dependents(&self, uid: &str) -> Vec<Key> {
        self.owned
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn orphan_dependents(&mut self, uid: &str) {
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
    pub(super) fn finish_foreground_deletions(&mut self) -> bool {
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
    pub(super) fn collect_garbage(&mut self) -> bool {
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
