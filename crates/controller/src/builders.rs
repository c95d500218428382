//! The Kubernetes objects a workspace owns, built from the spec and the file system: the
//! class's StorageClass, a static PersistentVolume the aws-fsx-csi-driver mounts, and the
//! PersistentVolumeClaim pods name. Pure functions; the reconciler applies them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, VolumeNodeAffinity, VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use lustre_api::constants::{csi, labels};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::FileSystem;

use crate::plan::claim_name;

/// Mount options when the class gives none: `flock` so applications can lock files.
pub const DEFAULT_MOUNT_OPTIONS: [&str; 1] = ["flock"];

/// The StorageClass of a class: `lustre-<class>`.
pub fn storage_class_name(class_name: &str) -> String {
    format!("lustre-{class_name}")
}

/// The StorageClass of a `placement: MatchPods` class's claims made before their file
/// system: `lustre-<class>-first-pod`, WaitForFirstConsumer, so that the scheduler picks a
/// node for the first pod and says which on the claim.
pub fn first_pod_storage_class_name(class_name: &str) -> String {
    format!("lustre-{class_name}-first-pod")
}

/// The provisioner of the first-pod StorageClass: a name nothing serves (the CSI driver's
/// would have its external-provisioner create a file system of its own); the operator binds
/// the claim with a volume of its own.
pub const FIRST_POD_PROVISIONER: &str = "workspaces.lustre.dev/first-pod";

/// The annotation the scheduler writes on a WaitForFirstConsumer claim: the node it picked.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";

/// The PersistentVolume of a workspace: named by UID, unique in the cluster.
pub fn volume_name(ws: &LustreWorkspace) -> String {
    format!("lws-{}", ws.metadata.uid.as_deref().unwrap_or_default())
}

fn mount_options(class: &LustreWorkspaceClass) -> Vec<String> {
    class.spec.mount_options.clone().unwrap_or_else(|| {
        DEFAULT_MOUNT_OPTIONS
            .iter()
            .map(|s| s.to_string())
            .collect()
    })
}

fn managed_labels() -> BTreeMap<String, String> {
    [(
        labels::MANAGED_BY_KEY.to_string(),
        labels::MANAGED_BY_VALUE.to_string(),
    )]
    .into()
}

/// Labels on everything a workspace owns, so orphans can be found.
pub fn workspace_labels(ws: &LustreWorkspace, class_name: &str) -> BTreeMap<String, String> {
    let mut l = managed_labels();
    l.insert(
        labels::WORKSPACE_NAME.into(),
        ws.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        labels::WORKSPACE_NAMESPACE.into(),
        ws.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(
        labels::WORKSPACE_UID.into(),
        ws.metadata.uid.clone().unwrap_or_default(),
    );
    l.insert(labels::CLASS.into(), class_name.to_string());
    l
}

/// GiB as a Kubernetes quantity.
pub fn gib(capacity: i64) -> Quantity {
    Quantity(format!("{capacity}Gi"))
}

/// Parses a `NGi` / `NTi` quantity back to GiB (what the builders write).
pub fn parse_gib(q: &Quantity) -> Option<i64> {
    let s = q.0.trim();
    if let Some(n) = s.strip_suffix("Gi") {
        n.parse().ok()
    } else if let Some(n) = s.strip_suffix("Ti") {
        n.parse::<i64>().ok().map(|t| t * 1024)
    } else {
        None
    }
}

/// StorageClass `lustre-<class>`: provisioner fsx.csi.aws.com, reclaim Retain. The operator
/// binds volumes statically, so it carries no provisioning parameters.
pub fn storage_class(class: &LustreWorkspaceClass) -> StorageClass {
    let name = class.metadata.name.clone().unwrap_or_default();
    let mut l = managed_labels();
    l.insert(labels::CLASS.into(), name.clone());
    StorageClass {
        metadata: ObjectMeta {
            name: Some(storage_class_name(&name)),
            labels: Some(l),
            ..ObjectMeta::default()
        },
        provisioner: csi::DRIVER.into(),
        reclaim_policy: Some("Retain".into()),
        volume_binding_mode: Some("Immediate".into()),
        mount_options: Some(mount_options(class)),
        allow_volume_expansion: Some(false),
        ..StorageClass::default()
    }
}

/// The first-pod StorageClass of a `placement: MatchPods` class.
pub fn first_pod_storage_class(class: &LustreWorkspaceClass) -> StorageClass {
    let mut sc = storage_class(class);
    let name = class.metadata.name.clone().unwrap_or_default();
    sc.metadata.name = Some(first_pod_storage_class_name(&name));
    sc.provisioner = FIRST_POD_PROVISIONER.into();
    sc.volume_binding_mode = Some("WaitForFirstConsumer".into());
    sc
}

/// The static PersistentVolume for the file system, pre-bound to the workspace's claim, in
/// the claim's StorageClass when the claim came first (`claim_class`), else the class's.
pub fn persistent_volume(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: &FileSystem,
    zone: Option<&str>,
    claim_class: Option<&str>,
) -> PersistentVolume {
    let class_name = class.metadata.name.clone().unwrap_or_default();
    let storage_class = claim_class.map_or_else(|| storage_class_name(&class_name), str::to_string);
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(ws)),
            labels: Some(workspace_labels(ws, &class_name)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some([("storage".to_string(), gib(volume_gib(fs)))].into()),
            access_modes: Some(vec!["ReadWriteMany".into()]),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            storage_class_name: Some(storage_class),
            mount_options: Some(mount_options(class)),
            volume_mode: Some("Filesystem".into()),
            csi: Some(CSIPersistentVolumeSource {
                driver: csi::DRIVER.into(),
                volume_handle: fs.id.clone(),
                volume_attributes: Some(
                    [
                        (
                            csi::ATTR_DNS_NAME.to_string(),
                            fs.dns_name.clone().unwrap_or_default(),
                        ),
                        (
                            csi::ATTR_MOUNT_NAME.to_string(),
                            fs.mount_name.clone().unwrap_or_default(),
                        ),
                    ]
                    .into(),
                ),
                ..CSIPersistentVolumeSource::default()
            }),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: ws.metadata.namespace.clone(),
                name: Some(claim_name(ws)),
                ..ObjectReference::default()
            }),
            node_affinity: zone.map(zone_affinity),
            ..PersistentVolumeSpec::default()
        }),
        ..PersistentVolume::default()
    }
}

/// The capacity the volume and claim show: the file system's, or 1 GiB for an
/// Intelligent-Tiering one (its storage is elastic, FSx reports no capacity, and the CSI
/// driver reads none from a volume it did not provision).
pub fn volume_gib(fs: &FileSystem) -> i64 {
    i64::from(fs.storage_capacity_gib.max(1))
}

/// Pods that mount the volume run in the file system's zone (the label every node carries).
fn zone_affinity(zone: &str) -> VolumeNodeAffinity {
    VolumeNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: ZONE_LABEL.into(),
                    operator: "In".into(),
                    values: Some(vec![zone.to_string()]),
                }]),
                ..NodeSelectorTerm::default()
            }],
        }),
    }
}

/// The zone a volume's node affinity names, if it has one of ours.
pub fn affinity_zone(affinity: Option<&VolumeNodeAffinity>) -> Option<String> {
    let terms = &affinity?.required.as_ref()?.node_selector_terms;
    let expressions = terms.first()?.match_expressions.as_ref()?;
    let e = expressions.iter().find(|e| e.key == ZONE_LABEL)?;
    e.values.as_ref()?.first().cloned()
}

/// The well-known node label of the Availability Zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The claim pods mount, bound to the workspace's volume and owned by the workspace (deleting
/// the workspace object in Kubernetes collects it). `first_pod`: made before the file system
/// (`placement: MatchPods`), unbound, in the first-pod StorageClass; the volume made later
/// binds it.
pub fn persistent_volume_claim(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    capacity_gib: i64,
    first_pod: bool,
) -> PersistentVolumeClaim {
    let class_name = class.metadata.name.clone().unwrap_or_default();
    let owner: Option<OwnerReference> = ws.controller_owner_ref(&());
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim_name(ws)),
            namespace: ws.metadata.namespace.clone(),
            labels: Some(workspace_labels(ws, &class_name)),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            storage_class_name: Some(if first_pod {
                first_pod_storage_class_name(&class_name)
            } else {
                storage_class_name(&class_name)
            }),
            volume_name: (!first_pod).then(|| volume_name(ws)),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), gib(capacity_gib))].into()),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lustre_cloud::{DeploymentType, Lifecycle};

    fn ws() -> LustreWorkspace {
        let mut ws: LustreWorkspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
            "metadata": {"name": "train", "namespace": "ml", "uid": "u-1"},
            "spec": {"storageCapacityGiB": 1200}
        }))
        .expect("ws");
        ws.metadata.uid = Some("u-1".into());
        ws
    }

    fn class() -> LustreWorkspaceClass {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspaceClass",
            "metadata": {"name": "standard"},
            "spec": {"subnetId": "subnet-0123456789abcdef0", "securityGroup": {"clientCidrs": ["10.0.0.0/16"]}}
        }))
        .expect("class")
    }

    fn fs() -> FileSystem {
        FileSystem {
            id: "fs-0123456789abcdef0".into(),
            arn: String::new(),
            lifecycle: Lifecycle::Available,
            failure_message: None,
            dns_name: Some("fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com".into()),
            mount_name: Some("abcdef12".into()),
            storage_capacity_gib: 2400,
            deployment_type: DeploymentType::Scratch2,
            per_unit_storage_throughput: None,
            subnet_id: None,
            vpc_id: None,
            network_interface_ids: vec![],
            file_system_type_version: None,
            tags: Default::default(),
            update_in_progress: false,
            settings: Default::default(),
        }
    }

    #[test]
    fn volume_is_what_the_csi_driver_mounts() {
        let pv = persistent_volume(&ws(), &class(), &fs(), Some("us-east-1b"), None);
        let spec = pv.spec.expect("spec");
        assert_eq!(
            affinity_zone(spec.node_affinity.as_ref()).as_deref(),
            Some("us-east-1b")
        );
        let csi = spec.csi.expect("csi");
        assert_eq!(csi.driver, "fsx.csi.aws.com");
        assert_eq!(csi.volume_handle, "fs-0123456789abcdef0");
        let attrs = csi.volume_attributes.expect("attributes");
        assert_eq!(
            attrs["dnsname"],
            "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"
        );
        assert_eq!(attrs["mountname"], "abcdef12");
        assert_eq!(spec.capacity.expect("capacity")["storage"].0, "2400Gi");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.mount_options, Some(vec!["flock".to_string()]));
        let claim = spec.claim_ref.expect("pre-bound");
        assert_eq!(
            (claim.namespace.as_deref(), claim.name.as_deref()),
            (Some("ml"), Some("train"))
        );
        assert_eq!(pv.metadata.name.as_deref(), Some("lws-u-1"));
    }

    #[test]
    fn claim_is_pre_bound_and_owned_by_the_workspace() {
        let pvc = persistent_volume_claim(&ws(), &class(), 2400, false);
        let owner = &pvc.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("LustreWorkspace", "train", Some(true))
        );
        let spec = pvc.spec.expect("spec");
        assert_eq!(spec.volume_name.as_deref(), Some("lws-u-1"));
        assert_eq!(spec.storage_class_name.as_deref(), Some("lustre-standard"));
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteMany".to_string()]));
        let labels = pvc.metadata.labels.expect("labels");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "lustre-operator");
        assert_eq!(labels["workspaces.lustre.dev/uid"], "u-1");
    }

    #[test]
    fn storage_class_retains_and_uses_the_driver() {
        let sc = storage_class(&class());
        assert_eq!(sc.metadata.name.as_deref(), Some("lustre-standard"));
        assert_eq!(sc.provisioner, "fsx.csi.aws.com");
        assert_eq!(sc.reclaim_policy.as_deref(), Some("Retain"));
        assert_eq!(parse_gib(&gib(4800)), Some(4800));
        assert_eq!(parse_gib(&Quantity("2Ti".into())), Some(2048));
    }
}
