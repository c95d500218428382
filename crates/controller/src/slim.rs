//! Volumes and claims as the watch caches keep them: the fields the operator reads,
//! deserialized straight from the API server's answers. A `PersistentVolume` takes about
//! 3 KB before a field is set (most of it volume sources a Lustre volume never has), and a
//! reconcile reads five of its fields; at 10,000 workspaces the full objects were a fifth of
//! the operator's heap (docs/benchmarks.md). Reads turn one back into the full type with
//! [`Volume::full`] / [`Claim::full`]. Their labels are kept apart from the metadata, as
//! [`Labels`]: read them with `labels.get`, never `ResourceExt::labels` (empty here).

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimCondition, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    PersistentVolumeSpec, PersistentVolumeStatus, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A `PersistentVolume`: its metadata (its labels apart), the spec fields the operator reads
/// and its phase.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(from = "Wire<VolumeSpec, VolumeStatus>")]
pub struct Volume {
    pub metadata: ObjectMeta,
    pub labels: Labels,
    pub spec: VolumeSpec,
    pub status: VolumeStatus,
}

/// An object as the API server sends it; its labels are taken out of its metadata.
#[derive(Deserialize)]
struct Wire<S, T> {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: S,
    #[serde(default)]
    status: T,
}

/// The kept type from what the API server sent, its labels taken out of its metadata.
macro_rules! from_wire {
    ($kept:ty, $spec:ty, $status:ty) => {
        impl From<Wire<$spec, $status>> for $kept {
            fn from(mut w: Wire<$spec, $status>) -> Self {
                Self {
                    labels: Labels::take(&mut w.metadata),
                    metadata: w.metadata,
                    spec: w.spec,
                    status: w.status,
                }
            }
        }
    };
}

from_wire!(Volume, VolumeSpec, VolumeStatus);
from_wire!(Claim, ClaimSpec, ClaimStatus);

/// Label keys kept without a copy of their own (the operator's).
const KNOWN_KEYS: [&str; 6] = [
    lustre_api::constants::labels::MANAGED_BY_KEY,
    lustre_api::constants::labels::WORKSPACE_NAME,
    lustre_api::constants::labels::WORKSPACE_NAMESPACE,
    lustre_api::constants::labels::WORKSPACE_UID,
    lustre_api::constants::labels::CLASS,
    crate::shares::GRANT_UID_LABEL,
];

/// A label's key: one of the operator's ([`KNOWN_KEYS`]), or any other.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    Known(&'static str),
    Other(Box<str>),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            Key::Known(k) => k,
            Key::Other(k) => k,
        }
    }
}

/// An object's labels as pairs, the operator's keys not copied: the operator's five labels
/// took about 0.8 KB per cached volume and claim as a `BTreeMap` (a node of 536 B and ten
/// strings; jemalloc heap profile at 10,000 workspaces, docs/benchmarks.md); as pairs about
/// 0.3 KB (estimated from the sizes, not measured apart).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels(Box<[(Key, Box<str>)]>);

impl Labels {
    /// Takes the labels out of `metadata`, all of them.
    fn take(metadata: &mut ObjectMeta) -> Self {
        let pairs = metadata.labels.take().unwrap_or_default().into_iter();
        Self(
            pairs
                .map(|(k, v)| {
                    let key = match KNOWN_KEYS.iter().find(|known| **known == k) {
                        Some(known) => Key::Known(known),
                        None => Key::Other(k.into()),
                    };
                    (key, v.into())
                })
                .collect(),
        )
    }

    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| &**v)
    }

    /// The labels as metadata has them.
    fn map(&self) -> Option<std::collections::BTreeMap<String, String>> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_string()))
                .collect()
        })
    }
}

/// A volume's phase: kube-controller-manager's binder moves it from `Pending` once it has
/// seen the volume. The volumes' cache keeps an update that moves it only among the phases
/// past `Pending` (Available, Bound, Released) from waking anything (see
/// [`Volume::reads_alike`]): read it for "past `Pending`" only.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct VolumeStatus {
    #[serde(default)]
    pub phase: Option<String>,
}

/// What of a volume's spec the operator reads: its size, its CSI source (the file system),
/// its access modes, the claim it is for and the zone its pods are kept in, and what a share's
/// volume copies from it (its StorageClass and mount options). Maps are kept as pairs: a
/// `BTreeMap` takes half a kilobyte however few entries it holds.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// `capacity.storage`, the one capacity a volume has.
    #[serde(default, deserialize_with = "storage::deserialize")]
    pub capacity: Option<Quantity>,
    #[serde(default)]
    pub csi: Option<Box<Csi>>,
    #[serde(default)]
    pub access_modes: Option<Vec<String>>,
    #[serde(default)]
    pub claim_ref: Option<Box<ObjectReference>>,
    #[serde(default)]
    pub node_affinity: Option<Box<VolumeNodeAffinity>>,
    #[serde(default)]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub mount_options: Option<Vec<String>>,
}

/// The CSI source of a Lustre volume: the driver, the file system, read-only or not, and the
/// attributes the driver mounts (DNS name, mount name).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Csi {
    pub driver: String,
    pub volume_handle: String,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default, deserialize_with = "pairs::deserialize")]
    pub volume_attributes: Option<Vec<(String, String)>>,
}

/// Whether kube-controller-manager's binder has seen a volume of this phase: it moves a new
/// volume's phase from `Pending` (set by the API server) once it has stored the volume, and
/// binds a claim naming the volume only after that.
pub fn seen_by_binder(phase: Option<&str>) -> bool {
    phase.is_some_and(|p| p != "Pending")
}

impl Volume {
    /// Whether the binder has seen this volume ([`seen_by_binder`]).
    pub fn seen_by_binder(&self) -> bool {
        seen_by_binder(self.status.phase.as_deref())
    }

    /// Whether the two differ in nothing the operator reads: metadata, spec, and whether the
    /// binder has seen the volume.
    pub fn reads_alike(a: &Self, b: &Self) -> bool {
        a.metadata == b.metadata
            && a.labels == b.labels
            && a.spec == b.spec
            && a.seen_by_binder() == b.seen_by_binder()
    }

    /// The volume as a `PersistentVolume` with the fields kept.
    pub fn full(&self) -> PersistentVolume {
        let s = &self.spec;
        PersistentVolume {
            metadata: ObjectMeta {
                labels: self.labels.map(),
                ..self.metadata.clone()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: s
                    .capacity
                    .clone()
                    .map(|q| [("storage".to_string(), q)].into()),
                csi: s.csi.as_deref().map(|c| CSIPersistentVolumeSource {
                    driver: c.driver.clone(),
                    volume_handle: c.volume_handle.clone(),
                    read_only: c.read_only,
                    volume_attributes: c
                        .volume_attributes
                        .as_ref()
                        .map(|a| a.iter().cloned().collect()),
                    ..Default::default()
                }),
                access_modes: s.access_modes.clone(),
                claim_ref: s.claim_ref.as_deref().cloned(),
                node_affinity: s.node_affinity.as_deref().cloned(),
                storage_class_name: s.storage_class_name.clone(),
                mount_options: s.mount_options.clone(),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: self.status.phase.clone(),
                ..Default::default()
            }),
        }
    }
}

/// A volume's `capacity` map read for its `storage` entry.
mod storage {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Quantity>, D::Error> {
        let map = Option::<BTreeMap<String, Quantity>>::deserialize(d)?;
        Ok(map.and_then(|mut m| m.remove("storage")))
    }
}

/// A string map kept as pairs in its order (a map of two entries in 100 bytes, not 600).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};

    type Pairs = Option<Vec<(String, String)>>;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        let map = Option::<BTreeMap<String, String>>::deserialize(d)?;
        Ok(map.map(|m| {
            let mut pairs: Vec<_> = m.into_iter().collect();
            pairs.shrink_to_fit();
            pairs
        }))
    }
}

/// A `PersistentVolumeClaim`: its metadata (its labels apart), its StorageClass, its phase
/// and its conditions (`Unused`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(from = "Wire<ClaimSpec, ClaimStatus>")]
pub struct Claim {
    pub metadata: ObjectMeta,
    pub labels: Labels,
    pub spec: ClaimSpec,
    pub status: ClaimStatus,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    #[serde(default)]
    pub storage_class_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ClaimStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Option<Vec<PersistentVolumeClaimCondition>>,
}

impl Claim {
    /// The claim as a `PersistentVolumeClaim` with the fields kept.
    pub fn full(&self) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                labels: self.labels.map(),
                ..self.metadata.clone()
            },
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: self.spec.storage_class_name.clone(),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: self.status.phase.clone(),
                conditions: self.status.conditions.clone(),
                ..Default::default()
            }),
        }
    }
}

resource_as!(Volume, PersistentVolume, k8s_openapi::ClusterResourceScope);
resource_as!(
    Claim,
    PersistentVolumeClaim,
    k8s_openapi::NamespaceResourceScope
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn the_slim_types_read_what_the_full_ones_hold_and_address_the_same_api() {
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "lustre-x", "labels": {"a": "b", "workspaces.lustre.dev/uid": "u-1",
                                                        "app.kubernetes.io/managed-by": "lustre-operator"}},
            "spec": {
                "capacity": {"storage": "1200Gi"}, "accessModes": ["ReadWriteMany"],
                "mountOptions": ["flock"], "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "lustre-standard",
                "claimRef": {"namespace": "ml", "name": "train"},
                "csi": {"driver": "fsx.csi.aws.com", "volumeHandle": "fs-1",
                        "volumeAttributes": {"dnsname": "d", "mountname": "m"}},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}]}]}}
            },
            "status": {"phase": "Bound"}
        }))
        .expect("pv");
        let slim: Volume =
            serde_json::from_value(serde_json::to_value(&pv).expect("json")).expect("slim pv");
        // Labels are kept apart from the metadata, read by key, and given back whole.
        assert_eq!(slim.metadata.labels, None);
        assert_eq!(slim.labels.get("workspaces.lustre.dev/uid"), Some("u-1"));
        assert_eq!(slim.labels.get("a"), Some("b"));
        assert_eq!(slim.labels.get("workspaces.lustre.dev/class"), None);
        assert!(
            matches!(slim.labels.0[1].0, Key::Known(_)),
            "{:?}",
            slim.labels
        );
        let full = slim.full();
        let (want, got) = (pv.spec.clone().expect("spec"), full.spec.expect("spec"));
        assert_eq!(got.capacity, want.capacity);
        assert_eq!(got.csi, want.csi);
        assert_eq!(got.access_modes, want.access_modes);
        assert_eq!(got.claim_ref, want.claim_ref);
        assert_eq!(got.node_affinity, want.node_affinity);
        // What a share's volume copies from the workspace's.
        assert_eq!(got.storage_class_name, want.storage_class_name);
        assert_eq!(got.mount_options, want.mount_options);
        assert_eq!(full.metadata, pv.metadata);
        assert_eq!(
            Volume::url_path(&(), None),
            PersistentVolume::url_path(&(), None)
        );

        let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "train", "namespace": "ml",
                         "annotations": {"volume.kubernetes.io/selected-node": "n1"}},
            "spec": {"storageClassName": "lustre-standard", "volumeName": "lustre-x",
                     "accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1200Gi"}}},
            "status": {"phase": "Bound", "conditions": [{"type": "Unused", "status": "True"}]}
        }))
        .expect("pvc");
        let slim: Claim =
            serde_json::from_value(serde_json::to_value(&pvc).expect("json")).expect("slim pvc");
        let full = slim.full();
        assert_eq!(full.metadata, pvc.metadata);
        assert_eq!(
            full.spec.and_then(|s| s.storage_class_name).as_deref(),
            Some("lustre-standard")
        );
        let status = full.status.expect("status");
        assert_eq!(status.phase.as_deref(), Some("Bound"));
        assert_eq!(status.conditions, pvc.status.and_then(|s| s.conditions));
        assert_eq!(
            Claim::url_path(&(), Some("ml")),
            PersistentVolumeClaim::url_path(&(), Some("ml"))
        );
    }
}
