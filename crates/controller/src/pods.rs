//! Which claims pods use, for the idle clock of `expiry.afterIdle`. Where the cluster writes a
//! claim's `Unused` condition (Kubernetes 1.37 on) that is read instead. Else one watch of pods whose
//! events are folded into counts and dropped. Nothing of a pod is kept but a hash of its UID
//! while it counts; per namespace and claim, how many pods that have not finished use it and
//! when the last one stopped. A workspace whose claim goes from used to idle (or back) is
//! woken through the poller's channel.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use lustre_api::LustreWorkspace;

use crate::context::{Context, lock};

/// How a claim is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimUse {
    /// Pods that use it and have not finished (Pending, Running, Unknown).
    pub active: u32,
    /// When the last pod that used it stopped (finished or went away), when known.
    pub last_active: Option<Timestamp>,
}

/// Namespace and claim name.
type ClaimKey = (String, String);

#[derive(Debug, Default)]
struct Counts {
    /// The counted pods, by a hash of their UID.
    active: HashSet<u64>,
    claims: HashMap<ClaimKey, ClaimUse>,
}

/// The counts, shared by the watch and the reconciles.
#[derive(Debug, Default)]
pub struct PodUse {
    counts: Mutex<Counts>,
    /// The first full list has been folded in: a claim missing from the counts is idle.
    synced: AtomicBool,
}

impl PodUse {
    /// How `claim` of `namespace` is used; `None` until the first list is in.
    pub fn of(&self, namespace: &str, claim: &str) -> Option<ClaimUse> {
        if !self.synced.load(Ordering::Acquire) {
            return None;
        }
        let key = (namespace.to_string(), claim.to_string());
        Some(
            lock(&self.counts)
                .claims
                .get(&key)
                .copied()
                .unwrap_or_default(),
        )
    }

    /// Counted pods and claims (for the benchmark's report).
    pub fn size(&self) -> (usize, usize) {
        let c = lock(&self.counts);
        (c.active.len(), c.claims.len())
    }

    /// Forgets claims idle since before `cutoff` (their workspaces have long recorded it in
    /// `status.idleSince`, or are gone).
    pub fn prune(&self, cutoff: Timestamp) {
        lock(&self.counts)
            .claims
            .retain(|_, u| u.active > 0 || u.last_active.is_some_and(|t| t >= cutoff));
    }
}

/// A claim's use as its `Unused` condition tells it (kube-controller-manager's pvc-protection
/// controller keeps it from Kubernetes 1.37 on: True since no pod that has not finished uses
/// the claim); `None` where the cluster does not write it.
pub fn unused_condition(
    conditions: &[k8s_openapi::api::core::v1::PersistentVolumeClaimCondition],
) -> Option<ClaimUse> {
    let c = conditions.iter().find(|c| c.type_ == "Unused")?;
    Some(match c.status.as_str() {
        "True" => ClaimUse {
            active: 0,
            last_active: c.last_transition_time.as_ref().map(|t| t.0),
        },
        _ => ClaimUse {
            active: 1,
            last_active: None,
        },
    })
}

/// Folds one pod event into `counts`; returns the claims that went from used to idle or back.
fn fold(counts: &mut Counts, pod: &Pod, gone: bool, now: Timestamp) -> Vec<ClaimKey> {
    let claims = claims_of(pod);
    if claims.is_empty() {
        return Vec::new();
    }
    let uid = hash(pod.uid().as_deref().unwrap_or_default());
    let running = !gone && !finished(pod);
    let mut flipped = Vec::new();
    if running && counts.active.insert(uid) {
        for key in claims {
            let u = counts.claims.entry(key.clone()).or_default();
            u.active += 1;
            if u.active == 1 {
                flipped.push(key);
            }
        }
    } else if !running {
        let was_counted = counts.active.remove(&uid);
        // A pod that stopped while watched stopped now; one listed finished stopped when its
        // containers say (or at a time not known).
        let stopped = if was_counted {
            Some(now)
        } else {
            finish_time(pod)
        };
        for key in claims {
            let u = counts.claims.entry(key.clone()).or_default();
            if was_counted {
                u.active = u.active.saturating_sub(1);
                if u.active == 0 {
                    flipped.push(key);
                }
            }
            u.last_active = u.last_active.max(stopped);
        }
    }
    flipped
}

/// The claims a pod names in its volumes.
fn claims_of(pod: &Pod) -> Vec<ClaimKey> {
    let ns = pod.namespace().unwrap_or_default();
    let mut out: Vec<ClaimKey> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| (ns.clone(), c.claim_name.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Succeeded or Failed: it will not run again.
fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// When a finished pod's last container ended, when its status says.
fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
}

fn hash(uid: &str) -> u64 {
    let mut h = DefaultHasher::new();
    uid.hash(&mut h);
    h.finish()
}

/// Watches pods until the stream ends, keeping `ctx`'s counts and waking the workspaces whose
/// claim flips between used and idle.
pub(crate) async fn run(ctx: std::sync::Arc<Context>, pods: std::sync::Arc<PodUse>) {
    let api = crate::controller::scoped::<Pod>(&ctx);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    // A new list (the first, or after the watch lost its place) is folded apart and swapped in
    // whole when done.
    let mut relisting: Option<Counts> = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = &e as &dyn std::error::Error, "pod watch");
                continue;
            }
        };
        let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default();
        let flipped = match event {
            watcher::Event::Init => {
                relisting = Some(Counts::default());
                Vec::new()
            }
            watcher::Event::InitApply(pod) => {
                if let Some(c) = relisting.as_mut() {
                    fold(c, &pod, false, now);
                }
                Vec::new()
            }
            watcher::Event::InitDone => {
                let Some(mut fresh) = relisting.take() else {
                    continue;
                };
                let mut counts = lock(&pods.counts);
                // What a pod that went away unseen leaves: its claim idle from now.
                for (key, old) in &counts.claims {
                    let new = fresh.claims.entry(key.clone()).or_default();
                    if old.active > 0 && new.active == 0 {
                        new.last_active = new.last_active.max(Some(now));
                    }
                    new.last_active = new.last_active.max(old.last_active);
                }
                let flipped = fresh
                    .claims
                    .iter()
                    .filter(|(k, new)| {
                        let was = counts.claims.get(*k).map_or(0, |u| u.active);
                        (was > 0) != (new.active > 0)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                *counts = fresh;
                drop(counts);
                pods.synced.store(true, Ordering::Release);
                flipped
            }
            watcher::Event::Apply(pod) => fold(&mut lock(&pods.counts), &pod, false, now),
            watcher::Event::Delete(pod) => fold(&mut lock(&pods.counts), &pod, true, now),
        };
        let counted = lock(&pods.counts).active.len();
        ctx.metrics
            .usage
            .pods_counted
            .set(i64::try_from(counted).unwrap_or(i64::MAX));
        wake(&ctx, &flipped);
    }
}

/// Wakes the workspaces whose claims these are: each claim's owner, found in the claims'
/// caches (one look per claim, however many workspaces there are).
fn wake(ctx: &Context, claims: &[ClaimKey]) {
    for (ns, name) in claims {
        ctx.caches.claim_meta(ns, name, |m, _| {
            let owners = m.owner_references.iter().flatten();
            for owner in owners.filter(|o| o.kind == "LustreWorkspace") {
                ctx.poller
                    .wake(ObjectRef::<LustreWorkspace>::new(&owner.name).within(ns));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, claims: &[&str], phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": uid, "namespace": "ml", "uid": uid},
            "spec": {"containers": [], "volumes": claims.iter().map(|c| serde_json::json!(
                {"name": c, "persistentVolumeClaim": {"claimName": c}})).collect::<Vec<_>>()},
            "status": {"phase": phase},
        }))
        .expect("pod")
    }

    fn key(c: &str) -> ClaimKey {
        ("ml".into(), c.into())
    }

    #[test]
    fn a_claim_is_idle_when_its_last_unfinished_pod_stops_and_only_then() {
        let (t1, t2) = (
            Timestamp::from_second(100).expect("time"),
            Timestamp::from_second(200).expect("time"),
        );
        let mut c = Counts::default();
        assert_eq!(
            fold(&mut c, &pod("a", &["data"], "Running"), false, t1),
            [key("data")]
        );
        // The same pod again (a status update) counts once.
        assert!(fold(&mut c, &pod("a", &["data"], "Running"), false, t1).is_empty());
        assert!(fold(&mut c, &pod("b", &["data", "data"], "Pending"), false, t1).is_empty());
        assert_eq!(c.claims[&key("data")].active, 2);
        assert!(fold(&mut c, &pod("a", &["data"], "Succeeded"), false, t2).is_empty());
        assert_eq!(
            fold(&mut c, &pod("b", &["data"], "Pending"), true, t2),
            [key("data")]
        );
        assert_eq!(
            c.claims[&key("data")],
            ClaimUse {
                active: 0,
                last_active: Some(t2)
            }
        );
        assert!(c.active.is_empty(), "no pod is kept once it stopped");
        // A pod without claims, and a finished one seen first, count nothing.
        assert!(fold(&mut c, &pod("c", &[], "Running"), false, t2).is_empty());
        assert!(fold(&mut c, &pod("d", &["data"], "Failed"), false, t2).is_empty());
        assert!(c.active.is_empty());
        // A pod of another namespace naming a claim of the same name keeps only its own
        // namespace's claim in use: no tenant holds (or frees) another's workspace.
        let mut other = pod("e", &["data"], "Running");
        other.metadata.namespace = Some("team-b".into());
        assert_eq!(
            fold(&mut c, &other, false, t2),
            [("team-b".to_string(), "data".to_string())]
        );
        assert_eq!(c.claims[&key("data")].active, 0);
    }
}
