//! What the operator writes back on a `LustreWorkspace`: its status, phase and the state of each
//! data repository link.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use crate::workspace::{DeletionPolicy, DeploymentType};

/// What the operator observed and did. GitOps tools read `conditions[Ready]` with
/// `observedGeneration`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceStatus {
    /// Pending, Provisioning, Ready, Updating, Deleting or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, SecurityGroupReady, FileSystemReady, DataRepositoriesReady and VolumeReady, each
    /// with a reason and a human message (AWS failure details verbatim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The class the workspace was provisioned with (resolved from the default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// The deployment type in effect (from the spec or the class default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<DeploymentType>,
    /// The deletion policy in effect: `spec.deletionPolicy` when set, else the class's default
    /// as it was when first recorded here (a later change of the class's default does not turn
    /// a kept workspace into a deleted one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// The FSx file system id (fs-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_id: Option<String>,
    /// The file system's lifecycle as AWS reports it (CREATING, AVAILABLE, UPDATING, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// The file system's DNS name, used by the CSI driver to mount it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    /// The Lustre mount name, used by the CSI driver to mount it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_name: Option<String>,
    /// The storage capacity AWS reports, in GiB.
    #[serde(
        default,
        rename = "storageCapacityGiB",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_capacity_gib: Option<i32>,
    /// The Availability Zone of the file system's subnet: pods that mount the claim run there
    /// (the volume's node affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The metadata IOPS the file system has (PERSISTENT_2), as AWS reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_iops: Option<i32>,
    /// The security group the operator created for this workspace (sg-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    /// The PersistentVolume bound to the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    /// The PersistentVolumeClaim to mount in pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// One entry per data repository: its association id and lifecycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub data_repositories: Vec<DataRepositoryStatus>,
    /// What the workspace is estimated to cost a month (its storage capacity times the
    /// class's price), or why no estimate is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost: Option<Box<crate::cost::CostStatus>>,
    /// The last export before deletion (`exportOnDelete`): its FSx task and what it moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_export: Option<Box<crate::export::ExportStatus>>,
    /// Since when no unfinished pod uses the claim (with an idle expiry only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,

    /// When the workspace deletes itself as things stand: the first of its time, its idle
    /// deadline and the class's longest lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,

    /// When the workspace first became Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Each share the spec offers: its receiving namespace and claim, whether that namespace
    /// accepted, and whether the claim there is bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["namespace"]))]
    pub shares: Vec<crate::share::ShareStatus>,
}

/// Where a workspace is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum Phase {
    /// Accepted, not yet acted on (or waiting for a class / a valid spec).
    Pending,
    /// AWS resources are being created.
    Provisioning,
    /// The claim is bound and can be mounted.
    Ready,
    /// A change (capacity, throughput, data repositories) is being applied.
    Updating,
    /// The workspace is being deleted.
    Deleting,
    /// Something failed that needs a person; see the conditions.
    Failed,
}

impl Phase {
    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Provisioning => "Provisioning",
            Self::Ready => "Ready",
            Self::Updating => "Updating",
            Self::Deleting => "Deleting",
            Self::Failed => "Failed",
        }
    }

    /// Every phase, for metrics that report a gauge per phase.
    pub const ALL: [Phase; 6] = [
        Self::Pending,
        Self::Provisioning,
        Self::Ready,
        Self::Updating,
        Self::Deleting,
        Self::Failed,
    ];
}

/// The observed state of one data repository association.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataRepositoryStatus {
    /// The `name` of the entry in `spec.dataRepositories`.
    pub name: String,
    /// The FSx association id (dra-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
    /// CREATING, AVAILABLE, UPDATING, DELETING, FAILED or MISCONFIGURED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// AWS's failure details when the association failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `importMetadataOnCreate`: the listing of the prefix was imported when the link
    /// was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<bool>,
}
