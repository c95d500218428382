//! Sharing one workspace's file system with other namespaces: the workspace offers
//! (`spec.shares`), the receiving namespace accepts with a `LustreWorkspaceGrant` of its own,
//! and the class decides whether its workspaces may share and with whom. Per accepted share
//! the operator makes a volume (the sub-path, read-only where asked) and a claim in the
//! receiving namespace.

// Each `printcolumn(...)` repeats keys such as `type_ = "string"`: clippy reads the
// repetition as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;

/// One namespace a workspace shares its file system with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// The receiving namespace. Nothing is made there until it accepts with a
    /// `LustreWorkspaceGrant` naming this workspace.
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub namespace: String,

    /// The claim's name in that namespace (default: this workspace's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = patterns::DNS_SUBDOMAIN))]
    pub claim_name: Option<String>,

    /// A directory of the file system to share instead of all of it, e.g. `/datasets/imagenet`
    /// (absolute; no `.` or `..` segments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1024), regex(pattern = rules::FS_PATH_RE))]
    pub sub_path: Option<String>,

    /// Mounted read-only there (the default): the volume's CSI source is read-only and the
    /// claim's access mode ReadOnlyMany. `false` needs the class's `sharing.readWrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

impl Share {
    /// Whether the share is mounted read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only != Some(false)
    }
}

/// Whom a class's workspaces may share with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharingPolicy {
    /// Namespaces the class's workspaces may share with (`*`: any namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63)))]
    pub to_namespaces: Vec<String>,

    /// Whether a share may be writable (`readOnly: false`); default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_write: Option<bool>,
}

impl SharingPolicy {
    /// Why the class refuses `share`, if it does.
    pub fn refusal(policy: Option<&Self>, class: &str, share: &Share) -> Option<String> {
        let Some(p) = policy else {
            return Some(format!(
                "class {class} does not let its workspaces share (no sharing policy)"
            ));
        };
        if !p
            .to_namespaces
            .iter()
            .any(|n| n == "*" || *n == share.namespace)
        {
            return Some(format!(
                "class {class} does not let its workspaces share with namespace {} (sharing.toNamespaces)",
                share.namespace
            ));
        }
        if !share.is_read_only() && p.read_write != Some(true) {
            return Some(format!(
                "class {class} allows read-only shares only (sharing.readWrite)"
            ));
        }
        None
    }
}

/// A namespace's acceptance of a share another namespace's workspace offers: with it (and
/// the offer, and the class's consent) the operator makes the shared claim here, owned by
/// this object. Deleting it removes the claim and its volume.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "workspaces.lustre.dev",
    version = "v1alpha1",
    kind = "LustreWorkspaceGrant",
    plural = "lustreworkspacegrants",
    singular = "lustreworkspacegrant",
    shortname = "lwg",
    category = "lustre",
    namespaced,
    status = "LustreWorkspaceGrantStatus",
    derive = "PartialEq",
    derive = "Default",
    cel,
    doc = "This namespace's acceptance of a share of another namespace's LustreWorkspace.",
    printcolumn(
        name = "From",
        type_ = "string",
        json_path = ".spec.fromNamespace",
        description = "The namespace of the shared workspace"
    ),
    printcolumn(
        name = "Workspace",
        type_ = "string",
        json_path = ".spec.workspace",
        description = "The shared workspace"
    ),
    printcolumn(
        name = "Claim",
        type_ = "string",
        json_path = ".status.claimName",
        description = "The claim made here for the share"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Bound, Refused or Revoked"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(rules::GRANT_IMMUTABLE).message(rules::GRANT_IMMUTABLE_MSG))]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceGrantSpec {
    /// The namespace of the workspace that offers the share.
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub from_namespace: String,

    /// The workspace that offers the share (its `spec.shares` names this namespace).
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub workspace: String,
}

/// Where a grant is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum GrantPhase {
    /// Waiting: for the workspace, its offer, or the claim to bind.
    Pending,
    /// The claim is bound: pods here can mount it.
    Bound,
    /// Not offered, not allowed by the class, or the claim name is taken; nothing is made.
    Refused,
    /// The share was withdrawn or its workspace is being deleted: the claim was removed.
    Revoked,
}

impl GrantPhase {
    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Bound => "Bound",
            Self::Refused => "Refused",
            Self::Revoked => "Revoked",
        }
    }
}

/// What the operator made for the grant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceGrantStatus {
    /// Pending, Bound, Refused or Revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<GrantPhase>,
    /// Why it is where it is, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready (True once the claim is bound).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The claim made in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// The volume it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    /// The shared directory (`/`: all of the file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Whether it is mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// One share as the offering workspace's status shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareStatus {
    /// The receiving namespace.
    pub namespace: String,
    /// The claim there.
    pub claim_name: String,
    /// Whether the namespace accepted (a `LustreWorkspaceGrant` names this workspace).
    pub granted: bool,
    /// Whether the claim there is bound.
    pub bound: bool,
}
