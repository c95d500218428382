//! A grant's status: its phase, the claim and volume made for it, and the `Ready` condition.

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::ResourceExt;
use lustre_api::{GrantPhase, LustreWorkspaceGrant, LustreWorkspaceGrantStatus, Share};

use super::Made;
use crate::beside::conditions_of;

/// `phase` saying `note` (a revoked claim still held by pods says so).
pub(crate) fn at(
    g: &LustreWorkspaceGrant,
    phase: GrantPhase,
    note: &str,
    held: bool,
) -> LustreWorkspaceGrantStatus {
    let note = match held {
        true => format!("{note}; the claim goes once no pod here uses it"),
        false => note.to_string(),
    };
    let old = g.status.as_ref().map(|s| s.conditions.as_slice());
    let which = [
        ("Ready", phase == GrantPhase::Bound),
        ("Refused", phase == GrantPhase::Refused),
    ];
    LustreWorkspaceGrantStatus {
        phase: Some(phase),
        conditions: conditions_of(
            old.unwrap_or_default(),
            g.metadata.generation,
            which,
            phase.as_str(),
            &note,
        ),
        message: Some(note),
        ..Default::default()
    }
}

/// What making the share's objects came to.
pub(crate) fn made(
    g: &LustreWorkspaceGrant,
    share: &Share,
    claim: &str,
    volume: &PersistentVolume,
    made: Made,
) -> LustreWorkspaceGrantStatus {
    let (phase, note) = match &made {
        Made::Taken => (
            GrantPhase::Refused,
            format!(
                "claim {claim} exists here and is not this grant's: remove it or ask for another claimName"
            ),
        ),
        Made::Remaking => (
            GrantPhase::Pending,
            "the share changed: its claim and volume are being made again".to_string(),
        ),
        Made::Claim { bound: true } => (
            GrantPhase::Bound,
            format!(
                "claim {claim} is bound to {}{}: mount it in your pods",
                share.sub_path.as_deref().unwrap_or("the whole file system"),
                if share.is_read_only() {
                    " (read-only)"
                } else {
                    ""
                }
            ),
        ),
        Made::Claim { bound: false } => (
            GrantPhase::Pending,
            format!("waiting for claim {claim} to bind"),
        ),
    };
    let mut s = at(g, phase, &note, false);
    if matches!(made, Made::Claim { .. }) {
        s.claim_name = Some(claim.to_string());
        s.volume_name = Some(volume.name_any());
        s.sub_path = Some(share.sub_path.clone().unwrap_or_else(|| "/".into()));
        s.read_only = Some(share.is_read_only());
    }
    s
}
