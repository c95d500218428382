//! `LustreWorkspace`: what an ML engineer asks for.

// Each `printcolumn(...)` repeats keys such as `type_ = "string"`: clippy reads the
// repetition as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;
pub use crate::workspace_status::{DataRepositoryStatus, LustreWorkspaceStatus, Phase};

/// What the workspace asks for: size, deployment type, throughput and the S3 data to link. The
/// platform team's `LustreWorkspaceClass` decides the network, encryption and limits. Apply it,
/// wait for `Ready`, and mount the claim named in `status.claimName` in your pods.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "workspaces.lustre.dev",
    version = "v1alpha1",
    kind = "LustreWorkspace",
    plural = "lustreworkspaces",
    singular = "lustreworkspace",
    shortname = "lws",
    category = "lustre",
    namespaced,
    status = "LustreWorkspaceStatus",
    derive = "PartialEq",
    derive = "Default",
    cel,
    validation = Rule::new(rules::NAME_LENGTH).message(rules::WORKSPACE_NAME_LENGTH_MSG),
    doc = "An FSx for Lustre file system for one team or job, mounted through a PersistentVolumeClaim named after the workspace.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where the workspace is in its life"
    ),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".status.deploymentType",
        description = "SCRATCH_2 or PERSISTENT_2"
    ),
    printcolumn(
        name = "Capacity",
        type_ = "integer",
        json_path = ".spec.storageCapacityGiB",
        description = "Requested storage in GiB"
    ),
    printcolumn(
        name = "Zone",
        type_ = "string",
        json_path = ".status.availabilityZone",
        description = "Availability Zone of the file system",
        priority = 1
    ),
    printcolumn(
        name = "FileSystem",
        type_ = "string",
        json_path = ".status.fileSystemId",
        description = "FSx file system id"
    ),
    printcolumn(
        name = "Claim",
        type_ = "string",
        json_path = ".status.claimName",
        description = "PersistentVolumeClaim to mount"
    ),
    printcolumn(
        name = "Cost/Month",
        type_ = "string",
        json_path = ".status.estimatedMonthlyCost.summary",
        description = "Estimated monthly cost"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".status.expiresAt",
        description = "When the workspace deletes itself"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Ready condition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(rules::THROUGHPUT_REQUIRED).message(rules::THROUGHPUT_REQUIRED_MSG).field_path(".perUnitStorageThroughput"),
    validation = Rule::new(rules::THROUGHPUT_FORBIDDEN).message(rules::THROUGHPUT_FORBIDDEN_MSG).field_path(".perUnitStorageThroughput"),
    validation = Rule::new(rules::FINAL_BACKUP).message(rules::FINAL_BACKUP_MSG).field_path(".finalBackupOnDelete"),
    validation = Rule::new(rules::ADOPT_NO_CREATE_FIELDS).message(rules::ADOPT_NO_CREATE_FIELDS_MSG).field_path(".fileSystemId"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[0].1).message(rules::IMMUTABLE_FIELDS[0].2).field_path(".deploymentType"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[1].1).message(rules::IMMUTABLE_FIELDS[1].2).field_path(".className"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[2].1).message(rules::IMMUTABLE_FIELDS[2].2).field_path(".fileSystemId"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[3].1).message(rules::IMMUTABLE_FIELDS[3].2).field_path(".claimName"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[4].1).message(rules::IMMUTABLE_FIELDS[4].2).field_path(".dataCompressionType"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[5].1).message(rules::IMMUTABLE_FIELDS[5].2).field_path(".efa"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[6].1).message(rules::IMMUTABLE_FIELDS[6].2).field_path(".availabilityZone"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[7].1).message(rules::IMMUTABLE_FIELDS[7].2).field_path(".storageType"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[8].1).message(rules::IMMUTABLE_FIELDS[8].2).field_path(".readCache"),
    validation = Rule::new(rules::IMMUTABLE_FIELDS[9].1).message(rules::IMMUTABLE_FIELDS[9].2).field_path(".source"),
    validation = Rule::new(rules::RESTORE_PERSISTENT).message(rules::RESTORE_PERSISTENT_MSG).field_path(".source"),
    validation = Rule::new(rules::RESTORE_NOT_ADOPT).message(rules::RESTORE_NOT_ADOPT_MSG).field_path(".source"),
    validation = Rule::new(rules::SSD_FIELDS).message(rules::SSD_FIELDS_MSG).field_path(".storageCapacityGiB"),
    validation = Rule::new(rules::TIERING_FIELDS).message(rules::TIERING_FIELDS_MSG).field_path(".storageType"),
    validation = Rule::new(rules::TIERING_NO_LINKS).message(rules::TIERING_NO_LINKS_MSG).field_path(".dataRepositories"),
    validation = Rule::new(rules::TIERING_METADATA).message(rules::TIERING_METADATA_MSG).field_path(".metadata"),
    validation = Rule::new(rules::READ_CACHE_BOUNDS).message(rules::READ_CACHE_BOUNDS_MSG).field_path(".readCache"),
    validation = Rule::new(rules::EFA_PERSISTENT).message(rules::EFA_PERSISTENT_MSG).field_path(".efa"),
    validation = Rule::new(rules::EFA_THROUGHPUT).message(rules::EFA_THROUGHPUT_MSG).field_path(".perUnitStorageThroughput"),
    validation = Rule::new(rules::EXPIRY_EXPORT).message(rules::EXPIRY_EXPORT_MSG).field_path(".expiry"),
    validation = Rule::new(rules::METADATA_PERSISTENT).message(rules::METADATA_PERSISTENT_MSG).field_path(".metadata"),
    validation = Rule::new(rules::METADATA_IOPS_GROWS).message(rules::METADATA_IOPS_GROWS_MSG).field_path(".metadata"),
)]
#[serde(rename_all = "camelCase")]
pub struct LustreWorkspaceSpec {
    /// Name of the `LustreWorkspaceClass` to provision with (`kubectl get lwc`). Leave it out
    /// to use the class marked as default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// SCRATCH_2 (temporary, cheapest, no replication: for data you can recreate) or
    /// PERSISTENT_2 (replicated within the Availability Zone, for data that must survive).
    /// Leave it out to take the class's default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<DeploymentType>,

    /// SSD storage in GiB: 1200, 2400, or a multiple of 2400 (4800, 7200, ...). Throughput
    /// grows with size. Can be increased later (to the next multiple of 2400), never
    /// decreased. Required on SSD; not with INTELLIGENT_TIERING, whose storage is elastic.
    #[x_kube(
        validation = Rule::new(rules::CAPACITY).message(rules::CAPACITY_MSG),
        validation = Rule::new(rules::CAPACITY_GROWS).message(rules::CAPACITY_GROWS_MSG),
    )]
    #[serde(
        default,
        rename = "storageCapacityGiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1200, max = i32::MAX))]
    pub storage_capacity_gib: Option<i32>,

    /// SSD (default) or INTELLIGENT_TIERING (PERSISTENT_2 only): elastic storage billed by
    /// what it holds, cold data moving to cheaper tiers by itself, for large datasets that are
    /// mostly cold. It takes `throughputCapacity` and `readCache` instead of
    /// `storageCapacityGiB` and `perUnitStorageThroughput`, and no S3 links. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<crate::lustre_settings::StorageType>,

    /// INTELLIGENT_TIERING only (and required there): throughput in MB/s, 4000 or a multiple
    /// of 4000. Can be raised later, never lowered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(rules::TIERING_THROUGHPUT).message(rules::TIERING_THROUGHPUT_MSG),
        validation = Rule::new(rules::TIERING_THROUGHPUT_GROWS).message(rules::TIERING_THROUGHPUT_GROWS_MSG),
    )]
    #[schemars(range(min = 4000, max = 2_000_000))]
    pub throughput_capacity: Option<i32>,

    /// INTELLIGENT_TIERING only: the SSD read cache in front of the tiers. Left out:
    /// PROPORTIONAL_TO_THROUGHPUT_CAPACITY. Immutable in this API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_cache: Option<crate::lustre_settings::ReadCache>,

    /// PERSISTENT_2 only (and required there): throughput in MB/s per TiB of storage, one of
    /// 125, 250, 500, 1000. Can be changed later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::THROUGHPUT_VALUES).message(rules::THROUGHPUT_VALUES_MSG))]
    #[schemars(range(max = i32::MAX))]
    pub per_unit_storage_throughput: Option<i32>,

    /// PERSISTENT_2 only: the metadata IOPS (file creates, opens and lookups per second).
    /// Left out: Automatic, sized by FSx from the storage capacity. UserProvisioned IOPS can be
    /// raised later (FSx allows one raise every 6 hours), never lowered; the class may cap them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::lustre_settings::MetadataConfiguration>,

    /// The Availability Zone of the file system (for example us-east-1b), among those of the
    /// class's subnets. Left out: the class's first subnet. Pods that mount the claim are
    /// scheduled in this zone. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 4, max = 32), regex(pattern = patterns::AVAILABILITY_ZONE))]
    pub availability_zone: Option<String>,

    /// PERSISTENT_2 only, where the class allows it (`efa.allowed`): Elastic Fabric Adapter
    /// for the file system, the fast path for GPU instances that mount it over EFA (and
    /// GPUDirect Storage). The operator opens its security group to all traffic from itself
    /// and the clients. Its throughput cannot change later. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efa: Option<bool>,

    /// NONE (default) or LZ4: LZ4 compresses data on the file system, saving capacity and
    /// usually costing no throughput. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_compression_type: Option<DataCompressionType>,

    /// S3 locations linked into the file system (at most 8). Objects under `s3Path` appear as
    /// files under `fileSystemPath`, loaded lazily on first read. The class decides which
    /// buckets and prefixes are allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = Rule::new(rules::FS_PATH_UNIQUE).message(rules::FS_PATH_UNIQUE_MSG),
        validation = Rule::new(rules::FS_PATH_NESTED).message(rules::FS_PATH_NESTED_MSG),
        validation = Rule::new(rules::FS_PATH_ROOT_ALONE).message(rules::FS_PATH_ROOT_ALONE_MSG),
        validation = Rule::new(rules::EXPORT_NOT_AUTO).message(rules::EXPORT_NOT_AUTO_MSG),
    )]
    #[schemars(length(max = 8))]
    pub data_repositories: Vec<DataRepository>,

    /// Namespaces this workspace's file system is shared with (one share per namespace, at
    /// most 16), each as a claim there once that namespace accepts with a
    /// `LustreWorkspaceGrant`, where the class's `sharing` allows it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["namespace".into()]))]
    #[schemars(length(max = 16))]
    pub shares: Vec<crate::share::Share>,

    /// What happens to the AWS resources when the workspace is deleted: Delete (default:
    /// the file system and everything on it is gone) or Retain (the file system is kept and
    /// tagged; only the Kubernetes objects go). Leave it out to take the class's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// How the export before deletion behaves (for the links with `exportOnDelete`): what a
    /// failed export does to the deletion, and how long it may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_export: Option<crate::export::DeletionExport>,

    /// When the workspace deletes itself: idle for a while (no pod using its claim), at a time,
    /// or both, whichever comes first. Left out: the class's default; `maxLifetime` caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<crate::expiry::Expiry>,

    /// PERSISTENT_2 only: take a final FSx backup before the file system is deleted. It
    /// stays as a `LustreWorkspaceBackup` named `<workspace>-final-<uid prefix>` in this
    /// namespace (`deletionPolicy: Retain`), restorable with `source.backupName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_backup_on_delete: Option<bool>,

    /// PERSISTENT_2 only: make the file system from this backup instead of empty
    /// (`storageCapacityGiB` must be the backup's). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::backup::WorkspaceSource>,

    /// Adopt an existing FSx for Lustre file system (fs-...) instead of creating one, if the
    /// class's `adoption` policy admits it. The operator marks it as adopted by this workspace,
    /// links data repositories and creates the volume and claim, and never deletes an adopted
    /// file system. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::FILE_SYSTEM_ID))]
    pub file_system_id: Option<String>,

    /// Name of the PersistentVolumeClaim to create in this namespace. Defaults to the
    /// workspace's own name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = patterns::DNS_SUBDOMAIN))]
    pub claim_name: Option<String>,

    /// Extra AWS tags for this workspace's file system and security group (for example a
    /// project), added to the class's tags; a key the class sets may not be given here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(
        validation = Rule::new(rules::TAG_KEYS).message(rules::TAG_KEYS_MSG),
        validation = Rule::new(rules::TAG_SIZES).message(rules::TAG_SIZES_MSG),
        validation = Rule::new(rules::TAG_CHARS).message(rules::TAG_CHARS_MSG),
    )]
    #[schemars(extend(
        "maxProperties" = crate::constants::tags::MAX_WORKSPACE_TAGS,
        "additionalProperties" = {"type": "string", "maxLength": crate::constants::tags::MAX_VALUE_LENGTH},
    ))]
    pub tags: BTreeMap<String, String>,
}

impl LustreWorkspaceSpec {
    /// `storageType: INTELLIGENT_TIERING`.
    pub fn is_tiering(&self) -> bool {
        self.storage_type == Some(crate::lustre_settings::StorageType::IntelligentTiering)
    }

    /// The SSD capacity asked for in GiB (0 for elastic Intelligent-Tiering storage).
    pub fn capacity_gib(&self) -> i32 {
        self.storage_capacity_gib.unwrap_or(0)
    }
}

/// FSx for Lustre deployment types this operator provisions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum DeploymentType {
    /// Temporary storage, no replication, burst throughput with size.
    #[serde(rename = "SCRATCH_2")]
    Scratch2,
    /// Replicated storage with a chosen throughput per TiB.
    #[serde(rename = "PERSISTENT_2")]
    Persistent2,
}

impl DeploymentType {
    /// The FSx API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scratch2 => "SCRATCH_2",
            Self::Persistent2 => "PERSISTENT_2",
        }
    }
}

/// Data compression on the file system.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum DataCompressionType {
    /// No compression.
    #[serde(rename = "NONE")]
    None,
    /// LZ4 compression.
    #[serde(rename = "LZ4")]
    Lz4,
}

impl DataCompressionType {
    /// The FSx API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Lz4 => "LZ4",
        }
    }
}

/// What deleting the workspace does to its AWS resources.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum DeletionPolicy {
    /// Delete the data repository links, the file system and the security group.
    Delete,
    /// Keep the AWS resources (tagged as retained); remove only the Kubernetes objects.
    Retain,
}

/// S3 events that an automatic import or export follows.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
#[schemars(transform = crate::schema::drop_description)]
pub enum S3Event {
    /// New objects or files.
    #[serde(rename = "NEW")]
    New,
    /// Changed objects or files.
    #[serde(rename = "CHANGED")]
    Changed,
    /// Deleted objects or files.
    #[serde(rename = "DELETED")]
    Deleted,
}

impl S3Event {
    /// The FSx API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Changed => "CHANGED",
            Self::Deleted => "DELETED",
        }
    }

    /// Parses the FSx API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NEW" => Some(Self::New),
            "CHANGED" => Some(Self::Changed),
            "DELETED" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// One S3 location linked into the file system (an FSx data repository association).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataRepository {
    /// A short name for this link, unique in the workspace (lower-case letters, digits, -).
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub name: String,

    /// The S3 bucket and prefix to link, as `s3://bucket/` or `s3://bucket/prefix/`.
    #[x_kube(validation = Rule::new(rules::S3_PATH).message(rules::S3_PATH_MSG))]
    #[schemars(length(min = 8, max = crate::constants::limits::MAX_S3_PATH_LENGTH))]
    pub s3_path: String,

    /// Where the S3 data appears in the file system, e.g. `/datasets`. Absolute; two entries
    /// may not share or nest paths, and `/` is only allowed for a single repository.
    #[x_kube(validation = Rule::new(rules::FS_PATH).message(rules::FS_PATH_MSG))]
    #[schemars(length(min = 1, max = 4096))]
    pub file_system_path: String,

    /// S3 changes imported into the file system automatically: any of NEW, CHANGED, DELETED.
    /// Empty: objects present at link time are visible, later changes are not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 3))]
    pub auto_import: Vec<S3Event>,

    /// File system changes exported to S3 automatically: any of NEW, CHANGED, DELETED.
    /// Empty: nothing is written back to S3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 3))]
    pub auto_export: Vec<S3Event>,

    /// Load the file and directory listing of the whole prefix when the link is created,
    /// instead of lazily on first access: once the link is AVAILABLE the operator runs one
    /// FSx import task for it, and the workspace is Ready when that has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_metadata_on_create: Option<bool>,

    /// Export this link's files to its S3 path before the file system is deleted: when the
    /// workspace is deleted, after the claim is released and before the link goes, the
    /// operator runs an FSx export task and waits for it (see `deletionExport`). Not with
    /// `autoExport` anywhere in the workspace: FSx runs no export task on a file system that
    /// exports automatically (those links are written to S3 as files change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_on_delete: Option<bool>,

    /// Stripe size for imported files in MiB (1 to 512000, default 1024).
    #[serde(
        default,
        rename = "importedFileChunkSizeMiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 512000))]
    pub imported_file_chunk_size_mib: Option<i32>,
}
