//! `LustreWorkspaceClass`: what the platform team decides once for many workspaces.

// Each `printcolumn(...)` repeats keys such as `type_ = "string"`: clippy reads the
// repetition as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;
use crate::workspace::{DataCompressionType, DeletionPolicy, DeploymentType};

/// What the platform team decides for every workspace of this class: the network (subnet,
/// security groups), encryption, tags, which S3 data may be linked, which namespaces may use
/// it, size limits and defaults. Mark one class as the default with the annotation
/// `workspaces.lustre.dev/is-default-class: "true"`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "workspaces.lustre.dev",
    version = "v1alpha1",
    kind = "LustreWorkspaceClass",
    plural = "lustreworkspaceclasses",
    singular = "lustreworkspaceclass",
    shortname = "lwc",
    category = "lustre",
    derive = "PartialEq",
    derive = "Default",
    cel,
    validation = Rule::new(rules::NAME_LENGTH).message(rules::CLASS_NAME_LENGTH_MSG),
    doc = "A class of FSx for Lustre workspaces, written by the platform team: network, encryption, tags, allowed S3 data, allowed namespaces, limits and defaults.",
    printcolumn(
        name = "Subnet",
        type_ = "string",
        json_path = ".spec.subnetId",
        description = "Subnet the file systems are created in"
    ),
    printcolumn(
        name = "Default",
        type_ = "string",
        json_path = ".metadata.annotations.workspaces\\.lustre\\.dev/is-default-class",
        description = "Whether this is the default class"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(rules::EFA_MANAGED_SG).message(rules::EFA_MANAGED_SG_MSG).field_path(".efa"),
    validation = Rule::new(rules::SUBNETS_ONE_OF).message(rules::SUBNETS_ONE_OF_MSG).field_path(".subnetIds"),
)]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceClassSpec {
    /// AWS region of the subnet (e.g. us-east-1). Leave it out to use the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::REGION))]
    pub region: Option<String>,

    /// The subnet every file system of this class is created in (FSx for Lustre uses exactly
    /// one subnet). Pick one in the Availability Zone of the nodes that mount it. Or give
    /// `subnetIds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::SUBNET_ID))]
    pub subnet_id: Option<String>,

    /// Several subnets of one VPC, each in its own Availability Zone: a workspace picks one by
    /// its zone (`spec.availabilityZone`); without one it gets the first. Instead of
    /// `subnetId`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 16), inner(regex(pattern = patterns::SUBNET_ID)))]
    pub subnet_ids: Vec<String>,

    /// Which security groups the file systems get, and who may reach them.
    pub security_group: SecurityGroupPolicy,

    /// KMS key (id, alias or ARN) that encrypts PERSISTENT_2 file systems at rest. Leave it out
    /// to use the AWS managed key. Applies to file systems created after a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,

    /// AWS tags added to every file system and security group of this class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(
        validation = Rule::new(rules::TAG_KEYS).message(rules::TAG_KEYS_MSG),
        validation = Rule::new(rules::TAG_SIZES).message(rules::TAG_SIZES_MSG),
        validation = Rule::new(rules::TAG_CHARS).message(rules::TAG_CHARS_MSG),
    )]
    #[schemars(extend(
        "maxProperties" = crate::constants::tags::MAX_CLASS_TAGS,
        "additionalProperties" = {"type": "string", "maxLength": crate::constants::tags::MAX_VALUE_LENGTH},
    ))]
    pub tags: BTreeMap<String, String>,

    /// S3 prefixes that workspaces may link read-write, such as `s3://ml-results/`. A
    /// workspace's `s3Path` must lie under one of these or of `readOnlyDataRepositories`
    /// (compared segment by segment). `{namespace}` stands for the workspace's namespace:
    /// `s3://ml-results/{namespace}/` gives each namespace its own prefix. Empty: no S3
    /// links allowed; `s3://` allows every bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(rules::S3_PREFIXES).message(rules::S3_PREFIX_MSG))]
    #[schemars(length(max = 100), inner(length(max = crate::constants::limits::MAX_S3_PATH_LENGTH)))]
    pub allowed_data_repositories: Vec<String>,

    /// S3 prefixes that workspaces may link for reading only: `autoImport` allowed,
    /// `autoExport` refused, so no workspace writes or deletes objects there (a shared
    /// dataset). Takes precedence over `allowedDataRepositories` where both match;
    /// `{namespace}` works as there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(rules::S3_READ_ONLY_PREFIXES).message(rules::S3_READ_ONLY_PREFIX_MSG))]
    #[schemars(length(max = 100), inner(length(max = crate::constants::limits::MAX_S3_PATH_LENGTH)))]
    pub read_only_data_repositories: Vec<String>,

    /// Namespaces whose workspaces may use this class, by label. Left out (or `{}`): every
    /// namespace. Checked again whenever a namespace's labels change: a namespace that stops
    /// matching keeps its file systems but gets no AWS change (`NamespaceNotAllowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<LabelSelector>,

    /// Largest `storageCapacityGiB` a workspace of this class may ask for.
    #[serde(
        default,
        rename = "maxStorageCapacityGiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1200, max = i32::MAX))]
    pub max_storage_capacity_gib: Option<i32>,

    /// Largest `metadata.iops` a workspace of this class may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1500, max = 192000))]
    pub max_metadata_iops: Option<i32>,

    /// Where a workspace without `availabilityZone` gets its file system: FirstSubnet (the
    /// default: the first of the class's subnets) or MatchPods (its claim is made first and the
    /// file system goes in the zone of the node the scheduler picks for the first pod that
    /// uses it, as a WaitForFirstConsumer StorageClass does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// Whether workspaces of this class may ask for EFA (`spec.efa`). Needs a managed
    /// security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efa: Option<EfaPolicy>,

    /// Root squash on every file system of this class (workspaces cannot change it): set when
    /// a file system is created, and applied to the existing ones when this changes. Left out:
    /// FSx's default (off), and existing file systems are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_squash: Option<crate::lustre_settings::RootSquash>,

    /// Logging of data repository events to CloudWatch Logs on every file system of this
    /// class (workspaces cannot change it): set at creation, applied to existing file systems
    /// when this changes. Left out: FSx's default, and existing ones are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<crate::lustre_settings::Logging>,

    /// What each namespace's workspaces of this class may use together (a budget checked
    /// before anything is created or grown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_limits: Option<NamespaceLimits>,

    /// What a GiB-month costs this class's workspaces, for the estimate in their status
    /// (`estimatedMonthlyCost`) and the cost metrics. Left out: the prices shipped with the
    /// operator for the class's region, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<crate::cost::Prices>,

    /// When workspaces of this class delete themselves: per deployment type the longest
    /// lifetime and the default expiry, and how long before the expiry a warning goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<crate::expiry::ClassExpiry>,

    /// Mount options for the PersistentVolumes (default: `flock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub mount_options: Option<Vec<String>>,

    /// PERSISTENT_2: days to keep automatic daily backups (0 turns them off, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 90))]
    pub automatic_backup_retention_days: Option<i32>,

    /// PERSISTENT_2: when the daily automatic backup starts, `HH:MM` in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 5, max = 5), regex(pattern = patterns::DAILY_TIME))]
    pub daily_automatic_backup_start_time: Option<String>,

    /// PERSISTENT_2 without S3 links: copy the file system's tags to its automatic backups
    /// (set at creation only; backups of `LustreWorkspaceBackup`s carry the operator's tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_tags_to_backups: Option<bool>,

    /// Which other namespaces' backups the class's workspaces may restore (`spec.source`);
    /// leave it out for their own namespace's only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<crate::backup::RestorePolicy>,

    /// Whether the class's workspaces may share their file systems with other namespaces
    /// (`spec.shares`), with which, and whether writable; leave it out for no sharing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<crate::share::SharingPolicy>,

    /// Weekly maintenance window start, `d:HH:MM` in UTC (d = 1 for Monday ... 7 for Sunday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::MAINTENANCE_TIME))]
    pub weekly_maintenance_start_time: Option<String>,

    /// Values used when a workspace leaves a field out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ClassDefaults>,

    /// Whether workspaces of this class may adopt an existing file system
    /// (`spec.fileSystemId`), and which. Leave it out to refuse every adoption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionPolicy>,
}

/// Where a class places file systems of workspaces that name no zone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum Placement {
    /// The class's first subnet.
    FirstSubnet,
    /// The zone of the first pod that uses the claim.
    MatchPods,
}

/// Whether a class's workspaces may use EFA.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EfaPolicy {
    /// Workspaces may set `efa: true`. Default false.
    #[serde(default)]
    pub allowed: bool,
}

/// Which existing file systems the workspaces of a class may adopt. A file system is adopted
/// only if it is a SCRATCH_2 or PERSISTENT_2 Lustre file system in the VPC of the class's
/// subnet, carries every tag below, and no other workspace adopts or owns it; a file system
/// the operator kept (`deletionPolicy: Retain`) may be adopted again only from the namespace
/// of the workspace that made it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdoptionPolicy {
    /// Tags a file system must carry, every one with this value, to be adopted (for example
    /// `lustre-adoptable: "true"`, set by whoever made the file system). At least one.
    #[x_kube(validation = Rule::new(rules::ADOPTION_TAGS).message(rules::ADOPTION_TAGS_MSG))]
    #[schemars(extend(
        "maxProperties" = crate::constants::tags::MAX_ADOPTION_TAGS,
        "additionalProperties" = {"type": "string", "maxLength": crate::constants::tags::MAX_VALUE_LENGTH},
    ))]
    pub file_system_tags: BTreeMap<String, String>,
}

/// The security groups attached to the file systems of a class.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(rules::SG_NEEDED).message(rules::SG_NEEDED_MSG).field_path(".additionalSecurityGroupIds"),
    validation = Rule::new(rules::SG_CLIENTS).message(rules::SG_CLIENTS_MSG).field_path(".clientSecurityGroupIds"),
)]
pub struct SecurityGroupPolicy {
    /// Create one security group per workspace with the Lustre ports (TCP 988 and 1018-1023)
    /// open to itself and to the clients below. Default true.
    #[serde(default = "default_true")]
    pub managed: bool,

    /// Security groups of the nodes that mount the file systems (e.g. the EKS node group's).
    #[serde(default)]
    #[schemars(length(max = 20), inner(regex(pattern = patterns::SECURITY_GROUP_ID)))]
    pub client_security_group_ids: Vec<String>,

    /// CIDR blocks of the nodes that mount the file systems, e.g. 10.0.0.0/16.
    #[serde(default)]
    #[schemars(length(max = 20), inner(regex(pattern = patterns::CIDR)))]
    pub client_cidrs: Vec<String>,

    /// Existing security groups also attached to every file system.
    #[serde(default)]
    #[schemars(length(max = 4), inner(regex(pattern = patterns::SECURITY_GROUP_ID)))]
    pub additional_security_group_ids: Vec<String>,
}

impl Default for SecurityGroupPolicy {
    fn default() -> Self {
        Self {
            managed: true,
            client_security_group_ids: Vec::new(),
            client_cidrs: Vec::new(),
            additional_security_group_ids: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// Defaults for workspaces of a class.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDefaults {
    /// Deployment type when the workspace gives none (SCRATCH_2 when this is unset too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<DeploymentType>,
    /// Deletion policy when the workspace gives none (Delete when this is unset too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Data compression when the workspace gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_compression_type: Option<DataCompressionType>,
}

/// A budget each namespace's workspaces of a class share. Checked before a workspace gets
/// anything and before it grows: over it, the workspace waits (`OverBudget`, no AWS call) and
/// goes ahead by itself when room frees up. Workspaces that hold a file system count first,
/// then waiting ones in the order they were created (then by name); workspaces being
/// deleted do not count.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceLimits {
    /// Most workspaces of this class in one namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_workspaces: Option<i32>,
    /// Most storage, in GiB, the namespace's workspaces of this class may ask for together.
    #[serde(
        default,
        rename = "maxStorageCapacityGiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0))]
    pub max_storage_capacity_gib: Option<i64>,
    /// Most the namespace's workspaces of this class may cost together a month, in the
    /// currency of the class's prices, as a decimal (e.g. "2500" or "2500.50"); every tier
    /// the namespace uses then needs a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16), regex(pattern = crate::cost::AMOUNT))]
    pub max_monthly_cost: Option<String>,
}

impl LustreWorkspaceClassSpec {
    /// The subnets file systems of this class may go in, in order: `subnetIds`, or
    /// `subnetId`.
    pub fn subnets(&self) -> Vec<String> {
        match &self.subnet_id {
            Some(id) if self.subnet_ids.is_empty() => vec![id.clone()],
            _ => self.subnet_ids.clone(),
        }
    }
}
