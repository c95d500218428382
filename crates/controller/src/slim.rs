//! Volumes and claims as the watch caches keep them: the fields the operator reads,
//! deserialized straight from the API server's answers. A `PersistentVolume` takes about
//! 3 KB before a field is set (most of it volume sources a Lustre volume never has), and a
//! reconcile reads five of its fields; at 10,000 workspaces the full objects were a fifth of
//! the operator's heap (docs/benchmarks.md). Reads turn one back into the full type with
//! [`Volume::full`] / [`Claim::full`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimCondition, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A `PersistentVolume`: its metadata and the spec fields the operator reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Volume {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VolumeSpec,
}

/// What of a volume's spec the operator reads: its size, its CSI source (the file system),
/// its access modes, the claim it is for and the zone its pods are kept in.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    #[serde(default)]
    pub capacity: Option<BTreeMap<String, Quantity>>,
    #[serde(default)]
    pub csi: Option<Box<CSIPersistentVolumeSource>>,
    #[serde(default)]
    pub access_modes: Option<Vec<String>>,
    #[serde(default)]
    pub claim_ref: Option<Box<ObjectReference>>,
    #[serde(default)]
    pub node_affinity: Option<Box<VolumeNodeAffinity>>,
}

impl Volume {
    /// The volume as a `PersistentVolume` with the fields kept.
    pub fn full(&self) -> PersistentVolume {
        let s = &self.spec;
        PersistentVolume {
            metadata: self.metadata.clone(),
            spec: Some(PersistentVolumeSpec {
                capacity: s.capacity.clone(),
                csi: s.csi.as_deref().cloned(),
                access_modes: s.access_modes.clone(),
                claim_ref: s.claim_ref.as_deref().cloned(),
                node_affinity: s.node_affinity.as_deref().cloned(),
                ..Default::default()
            }),
            status: None,
        }
    }
}

/// A `PersistentVolumeClaim`: its metadata, its StorageClass, its phase and its conditions
/// (`Unused`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Claim {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClaimSpec,
    #[serde(default)]
    pub status: ClaimStatus,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    #[serde(default)]
    pub storage_class_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
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
            metadata: self.metadata.clone(),
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

/// `kube::Resource` for a slim type, with the API coordinates of the full one.
macro_rules! resource_as {
    ($slim:ty, $full:ty, $scope:ty) => {
        impl kube::Resource for $slim {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> Cow<'_, str> {
                <$full as k8s_openapi::Resource>::KIND.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                <$full as k8s_openapi::Resource>::GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                <$full as k8s_openapi::Resource>::VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                <$full as k8s_openapi::Resource>::URL_PATH_SEGMENT.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
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
            "metadata": {"name": "lustre-x", "labels": {"a": "b"}},
            "spec": {
                "capacity": {"storage": "1200Gi"}, "accessModes": ["ReadWriteMany"],
                "mountOptions": ["flock"], "persistentVolumeReclaimPolicy": "Retain",
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
        let full = slim.full();
        let (want, got) = (pv.spec.clone().expect("spec"), full.spec.expect("spec"));
        assert_eq!(got.capacity, want.capacity);
        assert_eq!(got.csi, want.csi);
        assert_eq!(got.access_modes, want.access_modes);
        assert_eq!(got.claim_ref, want.claim_ref);
        assert_eq!(got.node_affinity, want.node_affinity);
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
