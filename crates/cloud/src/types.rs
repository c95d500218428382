//! Domain types of the cloud layer: what the controller asks for and what it observes, in
//! words of this product, not of the AWS SDK.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// AWS resource tags.
pub type Tags = BTreeMap<String, String>;

/// The Lustre ports a security group must open: TCP 988 and 1018-1023.
pub const LUSTRE_PORT_RANGES: [(i32, i32); 2] = [(988, 988), (1018, 1023)];

/// Who may reach the file system's Lustre ports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Peer {
    /// Another security group (or the group itself).
    Group(String),
    /// An IPv4 CIDR block.
    Cidr(String),
}

/// What an inbound rule lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP on the rule's ports.
    Tcp,
    /// All traffic, every protocol and port (EC2's `-1`; the ports are -1).
    All,
}

/// One inbound rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IngressRule {
    /// TCP on ports, or all traffic.
    pub protocol: Protocol,
    /// First port.
    pub from_port: i32,
    /// Last port.
    pub to_port: i32,
    /// Who is let in.
    pub peer: Peer,
}

/// The rules a workspace's security group needs: the Lustre ports from itself and from every
/// client peer.
pub fn lustre_ingress(group_id: &str, clients: &[Peer]) -> Vec<IngressRule> {
    let mut peers = vec![Peer::Group(group_id.to_string())];
    peers.extend(clients.iter().cloned());
    let mut rules: Vec<IngressRule> = LUSTRE_PORT_RANGES
        .iter()
        .flat_map(|(from, to)| {
            peers.iter().map(move |peer| IngressRule {
                protocol: Protocol::Tcp,
                from_port: *from,
                to_port: *to,
                peer: peer.clone(),
            })
        })
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

/// The rules an EFA-enabled file system's group needs besides the Lustre ports: all traffic
/// from itself and from every client peer (outbound, a new group's default rule already lets
/// all traffic out).
pub fn efa_ingress(group_id: &str, clients: &[Peer]) -> Vec<IngressRule> {
    let mut rules: Vec<IngressRule> = std::iter::once(Peer::Group(group_id.to_string()))
        .chain(clients.iter().cloned())
        .map(|peer| IngressRule {
            protocol: Protocol::All,
            from_port: -1,
            to_port: -1,
            peer,
        })
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

/// A subnet, as far as the operator cares: its VPC and zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// subnet-...
    pub id: String,
    /// vpc-...
    pub vpc_id: String,
    /// Its Availability Zone, such as us-east-1b (the nodes' `topology.kubernetes.io/zone`).
    pub availability_zone: String,
}

/// A security group to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupRequest {
    /// Group name, unique in the VPC (derived from the workspace UID).
    pub name: String,
    /// Human description.
    pub description: String,
    /// VPC of the class's subnet.
    pub vpc_id: String,
    /// Tags, including the operator's identity tags.
    pub tags: Tags,
}

/// An observed security group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// sg-...
    pub id: String,
    /// Group name.
    pub name: String,
    /// VPC.
    pub vpc_id: String,
    /// Tags.
    pub tags: Tags,
    /// Inbound TCP rules (other protocols are left out).
    pub ingress: Vec<IngressRule>,
}

/// FSx for Lustre deployment types the operator creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentType {
    /// SCRATCH_2
    Scratch2,
    /// PERSISTENT_2
    Persistent2,
    /// Any other type (seen on adopted file systems).
    Other,
}

/// A file system to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSystemRequest {
    /// Idempotency token (≤ 63 characters), stable across operator restarts.
    pub client_token: String,
    /// SCRATCH_2 or PERSISTENT_2.
    pub deployment_type: DeploymentType,
    /// GiB.
    pub storage_capacity_gib: i32,
    /// MB/s/TiB, PERSISTENT_2 only.
    pub per_unit_storage_throughput: Option<i32>,
    /// The one subnet.
    pub subnet_id: String,
    /// Security groups attached to the file system's network interfaces.
    pub security_group_ids: Vec<String>,
    /// KMS key for PERSISTENT_2.
    pub kms_key_id: Option<String>,
    /// LZ4 compression.
    pub lz4_compression: bool,
    /// Automatic backup retention (PERSISTENT_2).
    pub automatic_backup_retention_days: Option<i32>,
    /// `HH:MM` (UTC) when the daily automatic backup starts.
    pub daily_automatic_backup_start_time: Option<String>,
    /// Copy the file system's tags to backups that get none of their own (creation only).
    pub copy_tags_to_backups: bool,
    /// Restore: make the file system from this backup (CreateFileSystemFromBackup); the
    /// capacity must be the backup's.
    pub backup_id: Option<String>,
    /// `d:HH:MM`.
    pub weekly_maintenance_start_time: Option<String>,
    /// Lustre version: "2.15" so that data repository associations work on every type.
    pub file_system_type_version: String,
    /// PERSISTENT_2: the metadata configuration, which only creation can give a file system.
    pub metadata: Option<MetadataConfiguration>,
    /// Root squash (the class's).
    pub root_squash: Option<RootSquash>,
    /// Logging of data repository events (the class's).
    pub log: Option<LogSettings>,
    /// Elastic Fabric Adapter (PERSISTENT_2 with a metadata configuration; creation only).
    pub efa: bool,
    /// Intelligent-Tiering storage (PERSISTENT_2; no capacity is sent), else SSD.
    pub tiering: Option<Tiering>,
    /// Tags, including the operator's identity tags.
    pub tags: Tags,
}

/// How a PERSISTENT_2 file system's metadata IOPS are provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataConfiguration {
    /// FSx sizes them from the storage capacity.
    Automatic,
    /// This many (1500, 3000, 6000, 12000, then multiples of 12000 up to 192000).
    UserProvisioned(i32),
}

/// The metadata IOPS FSx provisions in AUTOMATIC mode for an SSD file system of a size.
pub use lustre_api::lustre_settings::automatic_metadata_iops;

/// An Intelligent-Tiering file system's throughput and read cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiering {
    /// MB/s (multiples of 4000).
    pub throughput_capacity: i32,
    /// The SSD read cache.
    pub read_cache: ReadCache,
}

/// The read cache of an Intelligent-Tiering file system: the workspace API's type.
pub use lustre_api::{ReadCache, ReadCacheSizing};

/// Root squash as FSx takes and reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSquash {
    /// `UID:GID` root becomes; `0:0` is off.
    pub uid_gid: String,
    /// Clients (Lustre NIDs) whose root is not squashed.
    pub no_squash_nids: Vec<String>,
}

/// Which data repository events FSx logs: the workspace API's type, which speaks FSx's
/// spelling (`as_str`, `parse`).
pub use lustre_api::LogLevel;

/// Logging of data repository events to CloudWatch Logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    /// What is logged.
    pub level: LogLevel,
    /// The log group's ARN (`None` in a request: FSx's default group).
    pub destination: Option<String>,
}

/// What a file system has beyond size and throughput, as AWS reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystemSettings {
    /// The metadata configuration's mode (`None`: the file system has none, and FSx cannot
    /// add one).
    pub metadata: Option<MetadataConfiguration>,
    /// The metadata IOPS FSx provisioned (in either mode).
    pub metadata_iops: Option<i32>,
    /// When FSx last accepted a change of the metadata configuration (seconds since the
    /// epoch), read from its administrative actions: raises must be 6 hours apart.
    pub metadata_changed_at: Option<i64>,
    /// Root squash.
    pub root_squash: Option<RootSquash>,
    /// Logging.
    pub log: Option<LogSettings>,
    /// EFA enabled.
    pub efa: bool,
    /// Intelligent-Tiering storage.
    pub intelligent_tiering: bool,
    /// Intelligent-Tiering throughput in MB/s.
    pub throughput_capacity: Option<i32>,
}

impl FileSystemRequest {
    /// The smallest SCRATCH_2 file system (1200 GiB, Lustre 2.15) in a subnet, with nothing
    /// else set: one made by hand, outside any workspace (tests, the benchmark).
    pub fn scratch(
        client_token: impl Into<String>,
        subnet_id: impl Into<String>,
        tags: Tags,
    ) -> Self {
        Self {
            client_token: client_token.into(),
            deployment_type: DeploymentType::Scratch2,
            storage_capacity_gib: 1200,
            per_unit_storage_throughput: None,
            subnet_id: subnet_id.into(),
            security_group_ids: vec![],
            kms_key_id: None,
            lz4_compression: false,
            automatic_backup_retention_days: None,
            daily_automatic_backup_start_time: None,
            copy_tags_to_backups: false,
            backup_id: None,
            weekly_maintenance_start_time: None,
            file_system_type_version: "2.15".into(),
            metadata: None,
            root_squash: None,
            log: None,
            efa: false,
            tiering: None,
            tags,
        }
    }
}

/// File system lifecycle, as FSx reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Being created.
    Creating,
    /// Usable.
    Available,
    /// Being changed.
    Updating,
    /// Being deleted.
    Deleting,
    /// Failed; see the failure message.
    Failed,
    /// Misconfigured (e.g. a KMS key or network problem); see the failure message.
    Misconfigured,
    /// Misconfigured and unavailable.
    MisconfiguredUnavailable,
    /// A value this build does not know.
    Other(String),
}

impl Lifecycle {
    /// Parses the FSx spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "CREATING" => Self::Creating,
            "AVAILABLE" => Self::Available,
            "UPDATING" => Self::Updating,
            "DELETING" => Self::Deleting,
            "FAILED" => Self::Failed,
            "MISCONFIGURED" => Self::Misconfigured,
            "MISCONFIGURED_UNAVAILABLE" => Self::MisconfiguredUnavailable,
            other => Self::Other(other.to_string()),
        }
    }

    /// The FSx spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "CREATING",
            Self::Available => "AVAILABLE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
            Self::Failed => "FAILED",
            Self::Misconfigured => "MISCONFIGURED",
            Self::MisconfiguredUnavailable => "MISCONFIGURED_UNAVAILABLE",
            Self::Other(s) => s,
        }
    }

    /// FAILED or MISCONFIGURED*: needs a person.
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Misconfigured | Self::MisconfiguredUnavailable
        )
    }

    /// Still moving on its own (CREATING, UPDATING, DELETING).
    pub fn is_transitional(&self) -> bool {
        matches!(self, Self::Creating | Self::Updating | Self::Deleting)
    }
}

/// An observed file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystem {
    /// fs-...
    pub id: String,
    /// ARN, for tagging.
    pub arn: String,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// AWS's failure details, verbatim.
    pub failure_message: Option<String>,
    /// DNS name the CSI driver mounts.
    pub dns_name: Option<String>,
    /// Lustre mount name the CSI driver mounts.
    pub mount_name: Option<String>,
    /// GiB.
    pub storage_capacity_gib: i32,
    /// Deployment type.
    pub deployment_type: DeploymentType,
    /// MB/s/TiB.
    pub per_unit_storage_throughput: Option<i32>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Network interfaces (they hold the security groups).
    pub network_interface_ids: Vec<String>,
    /// Lustre version.
    pub file_system_type_version: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// An update (capacity or throughput) AWS is still applying.
    pub update_in_progress: bool,
    /// Metadata IOPS, root squash, logging.
    pub settings: FileSystemSettings,
}

/// A change to apply with UpdateFileSystem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSystemUpdate {
    /// New capacity (must be larger, in steps of 2400 GiB).
    pub storage_capacity_gib: Option<i32>,
    /// New PERSISTENT_2 throughput.
    pub per_unit_storage_throughput: Option<i32>,
    /// New metadata IOPS (only ever more).
    pub metadata: Option<MetadataConfiguration>,
    /// New Intelligent-Tiering throughput in MB/s (only ever more).
    pub throughput_capacity: Option<i32>,
    /// New root squash.
    pub root_squash: Option<RootSquash>,
    /// New logging.
    pub log: Option<LogSettings>,
}

/// S3 events for automatic import / export: the workspace API's type, which speaks FSx's
/// spelling (`as_str`, `parse`).
pub use lustre_api::S3Event;

/// A data repository association to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRepositoryRequest {
    /// Idempotency token.
    pub client_token: String,
    /// The file system.
    pub file_system_id: String,
    /// Path in the file system.
    pub file_system_path: String,
    /// `s3://bucket/prefix/`.
    pub data_repository_path: String,
    /// Automatic import events.
    pub auto_import: Vec<S3Event>,
    /// Automatic export events.
    pub auto_export: Vec<S3Event>,
    /// Import the listing at creation.
    pub batch_import_meta_data_on_create: bool,
    /// MiB.
    pub imported_file_chunk_size_mib: Option<i32>,
    /// Tags.
    pub tags: Tags,
}

/// An observed data repository association.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRepositoryAssociation {
    /// dra-...
    pub id: String,
    /// The file system.
    pub file_system_id: String,
    /// Path in the file system.
    pub file_system_path: String,
    /// `s3://bucket/prefix/`.
    pub data_repository_path: String,
    /// Lifecycle (same words as a file system's).
    pub lifecycle: Lifecycle,
    /// AWS's failure details, verbatim.
    pub failure_message: Option<String>,
    /// Automatic import events.
    pub auto_import: Vec<S3Event>,
    /// Automatic export events.
    pub auto_export: Vec<S3Event>,
    /// Tags.
    pub tags: Tags,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_covers_both_port_ranges_for_self_and_clients() {
        let rules = lustre_ingress(
            "sg-self",
            &[
                Peer::Group("sg-nodes".into()),
                Peer::Cidr("10.0.0.0/16".into()),
            ],
        );
        assert_eq!(rules.len(), 6);
        for peer in [
            Peer::Group("sg-self".into()),
            Peer::Group("sg-nodes".into()),
            Peer::Cidr("10.0.0.0/16".into()),
        ] {
            for (from, to) in LUSTRE_PORT_RANGES {
                assert!(rules.contains(&IngressRule {
                    protocol: Protocol::Tcp,
                    from_port: from,
                    to_port: to,
                    peer: peer.clone()
                }));
            }
        }
    }

    #[test]
    fn lifecycle_round_trips() {
        for s in [
            "CREATING",
            "AVAILABLE",
            "UPDATING",
            "DELETING",
            "FAILED",
            "MISCONFIGURED",
        ] {
            assert_eq!(Lifecycle::parse(s).as_str(), s);
        }
        assert!(Lifecycle::parse("MISCONFIGURED_UNAVAILABLE").is_failed());
        assert_eq!(
            Lifecycle::parse("NEW_STATE"),
            Lifecycle::Other("NEW_STATE".into())
        );
    }
}
