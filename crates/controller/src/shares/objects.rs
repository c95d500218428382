//! The volume and claim of one accepted share: the volume is the offering workspace's own
//! (made by the operator, so its file system, DNS name and mount name are proven) narrowed to
//! the share's sub-path and made read-only where asked; the claim is made in the receiving
//! namespace, owned by the grant (deleting the grant collects it), pre-bound to the volume.

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    VolumeResourceRequirements,
};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use lustre_api::constants::csi;
use lustre_api::{LustreWorkspace, LustreWorkspaceGrant, Share};

/// Label on a share's volume and claim: the UID of the grant they were made for.
pub(crate) const GRANT_UID_LABEL: &str = "workspaces.lustre.dev/grant-uid";

/// The volume of the share a grant accepted.
pub(crate) fn volume_name(grant: &LustreWorkspaceGrant) -> String {
    format!("lws-share-{}", grant.uid().unwrap_or_default())
}

/// The claim's name in the receiving namespace.
pub(crate) fn claim_name(ws: &LustreWorkspace, share: &Share) -> String {
    share.claim_name.clone().unwrap_or_else(|| ws.name_any())
}

fn access_mode(share: &Share) -> String {
    match share.is_read_only() {
        true => "ReadOnlyMany".into(),
        false => "ReadWriteMany".into(),
    }
}

/// Labels of a share's objects: the offering workspace's (its volumes' watch wakes it when a
/// share's volume goes) and the grant's UID.
fn share_labels(
    source: &PersistentVolume,
    grant: &LustreWorkspaceGrant,
) -> std::collections::BTreeMap<String, String> {
    let mut l = source.labels().clone();
    l.insert(GRANT_UID_LABEL.into(), grant.uid().unwrap_or_default());
    l
}

/// The mount name that addresses the share's sub-path (`<mountName>/<subPath>`, the CSI
/// driver's form), or the whole file system's.
pub(crate) fn mount_name(source_mount: &str, share: &Share) -> String {
    match share.sub_path.as_deref() {
        Some(path) => format!("{source_mount}{path}"),
        None => source_mount.to_string(),
    }
}

/// The share's volume: the source volume's file system, capacity, class, options and zone,
/// with the sub-path, the read-only flag and the access mode of the share, pre-bound to the
/// claim in the grant's namespace.
pub(crate) fn volume(
    source: &PersistentVolume,
    grant: &LustreWorkspaceGrant,
    share: &Share,
    claim: &str,
) -> Option<PersistentVolume> {
    let mut spec = source.spec.clone()?;
    let csi_source = spec.csi.as_mut()?;
    let attributes = csi_source.volume_attributes.as_mut()?;
    let mount = attributes.get(csi::ATTR_MOUNT_NAME)?.clone();
    attributes.insert(csi::ATTR_MOUNT_NAME.into(), mount_name(&mount, share));
    csi_source.read_only = share.is_read_only().then_some(true);
    spec.access_modes = Some(vec![access_mode(share)]);
    spec.claim_ref = Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: grant.namespace(),
        name: Some(claim.to_string()),
        ..ObjectReference::default()
    });
    Some(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(grant)),
            labels: Some(share_labels(source, grant)),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..PersistentVolume::default()
    })
}

/// The share's claim in the grant's namespace, owned by the grant, bound to `volume`.
pub(crate) fn claim(
    grant: &LustreWorkspaceGrant,
    share: &Share,
    volume: &PersistentVolume,
    name: &str,
) -> PersistentVolumeClaim {
    let spec = volume.spec.clone().unwrap_or_default();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: grant.namespace(),
            labels: volume.metadata.labels.clone(),
            owner_references: grant.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode(share)]),
            storage_class_name: spec.storage_class_name,
            volume_name: volume.metadata.name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: spec.capacity.map(|c| c.into_iter().collect()),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Whether an existing share volume still says what the share asks (a volume's source is
/// immutable: a changed share is remade).
pub(crate) fn same(have: &PersistentVolume, want: &PersistentVolume) -> bool {
    let csi_of = |pv: &PersistentVolume| pv.spec.as_ref().and_then(|s| s.csi.clone());
    let modes = |pv: &PersistentVolume| pv.spec.as_ref().and_then(|s| s.access_modes.clone());
    let claim = |pv: &PersistentVolume| {
        pv.spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .map(|r| (r.namespace.clone(), r.name.clone()))
    };
    csi_of(have) == csi_of(want) && modes(have) == modes(want) && claim(have) == claim(want)
}

/// Whether an existing share volume is as wanted, nothing to apply: its claim reference as
/// far as the share names it (the binder adds the claim's UID), its spec otherwise, and
/// every wanted label.
pub(crate) fn current(have: &PersistentVolume, want: &PersistentVolume) -> bool {
    let mut spec = have.spec.clone();
    if let (Some(s), Some(w)) = (spec.as_mut(), want.spec.as_ref())
        && same(have, want)
    {
        s.claim_ref = w.claim_ref.clone();
    }
    spec == want.spec
        && want
            .labels()
            .iter()
            .all(|(k, v)| have.labels().get(k) == Some(v))
}
