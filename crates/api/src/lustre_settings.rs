//! FSx for Lustre settings beyond size and throughput: a workspace's metadata performance, and
//! the guard rails a class sets on every file system it makes (root squash, logging).

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::rules::patterns;

/// How a PERSISTENT_2 file system's metadata IOPS (file creates, opens, lookups per second)
/// are provisioned. FSx can give a file system a metadata configuration only when it creates
/// it; the operator always does (`Automatic` when this is left out).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(rules::METADATA_IOPS_MODE).message(rules::METADATA_IOPS_MODE_MSG).field_path(".iops"))]
pub struct MetadataConfiguration {
    /// Automatic (FSx sizes the IOPS from the storage capacity) or UserProvisioned (`iops`).
    pub mode: MetadataMode,

    /// UserProvisioned only: 1500, 3000, 6000, 12000, or a multiple of 12000 up to 192000. It
    /// can be raised later (FSx allows one raise every 6 hours), never lowered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::METADATA_IOPS_VALUES).message(rules::METADATA_IOPS_VALUES_MSG))]
    #[schemars(range(min = 1500, max = 192000))]
    pub iops: Option<i32>,
}

/// Who decides the metadata IOPS.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum MetadataMode {
    /// FSx, from the storage capacity.
    Automatic,
    /// The workspace, with `iops`.
    UserProvisioned,
}

/// Whether `iops` is a metadata IOPS value FSx accepts on SSD storage.
pub fn valid_metadata_iops(iops: i32) -> bool {
    [1500, 3000, 6000].contains(&iops) || (iops % 12000 == 0 && (12000..=192000).contains(&iops))
}

/// The metadata IOPS FSx provisions in AUTOMATIC mode for an SSD file system of this size:
/// 1500 at 1.2 TiB, 3000 at 2.4 TiB, 6000 up to 9.6 TiB, 12000 up to 45.6 TiB, then 12000
/// per 24 TiB (up to 192000). The table is the FSx for Lustre user guide's as remembered: no
/// stored source confirms it, so the simulated AWS and the in-memory account use it and the
/// operator only reads what AWS reports.
pub fn automatic_metadata_iops(capacity_gib: i32) -> i32 {
    if capacity_gib <= 1200 {
        1500
    } else if capacity_gib <= 2400 {
        3000
    } else if capacity_gib <= 9600 {
        6000
    } else if capacity_gib <= 45600 {
        12000
    } else {
        (12000 * (capacity_gib / 24000)).min(192_000)
    }
}

/// The storage under the file system.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum StorageType {
    /// Provisioned SSD storage of a set capacity.
    #[serde(rename = "SSD")]
    Ssd,
    /// Elastic storage across access tiers, billed by use.
    #[serde(rename = "INTELLIGENT_TIERING")]
    IntelligentTiering,
}

/// An Intelligent-Tiering file system's SSD read cache.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(rules::READ_CACHE_SIZE).message(rules::READ_CACHE_SIZE_MSG).field_path(".sizeGiB"))]
pub struct ReadCache {
    /// NO_CACHE, USER_PROVISIONED (`sizeGiB`) or PROPORTIONAL_TO_THROUGHPUT_CAPACITY.
    pub sizing_mode: ReadCacheSizing,

    /// USER_PROVISIONED only: GiB, 32 to 131072 for every 4000 MB/s of throughput.
    #[serde(default, rename = "sizeGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub size_gib: Option<i32>,
}

/// How the read cache is sized.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum ReadCacheSizing {
    /// No read cache.
    #[serde(rename = "NO_CACHE")]
    NoCache,
    /// `sizeGiB`.
    #[serde(rename = "USER_PROVISIONED")]
    UserProvisioned,
    /// FSx sizes it from the throughput.
    #[serde(rename = "PROPORTIONAL_TO_THROUGHPUT_CAPACITY")]
    ProportionalToThroughputCapacity,
}

impl ReadCacheSizing {
    /// The FSx API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCache => "NO_CACHE",
            Self::UserProvisioned => "USER_PROVISIONED",
            Self::ProportionalToThroughputCapacity => "PROPORTIONAL_TO_THROUGHPUT_CAPACITY",
        }
    }
}

/// Root squash: what a client's root user becomes on the file system. The class decides it for
/// every file system it makes; a change applies to existing ones.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(rules::ROOT_SQUASH_IDS).message(rules::ROOT_SQUASH_IDS_MSG).field_path(".uidGid"),
    validation = Rule::new(rules::ROOT_SQUASH_NIDS).message(rules::ROOT_SQUASH_NIDS_MSG).field_path(".noSquashNids"),
)]
pub struct RootSquash {
    /// `UID:GID` root is mapped to, such as `65534:65534` (nobody); both non-zero, each at most
    /// 4294967294. `0:0` turns root squash off.
    #[schemars(length(min = 3, max = 21), regex(pattern = patterns::ROOT_SQUASH))]
    pub uid_gid: String,

    /// Clients whose root stays root, as Lustre NIDs: `10.0.1.6@tcp`, or a range such as
    /// `10.0.[2-10].[1-255]@tcp` (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 11, max = 43), regex(pattern = patterns::LUSTRE_NID)))]
    pub no_squash_nids: Vec<String>,
}

/// Logging of data repository events (imports and exports that fail or warn) to CloudWatch
/// Logs. The class decides it for every file system it makes; a change applies to existing
/// ones.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(rules::LOG_DISABLED).message(rules::LOG_DISABLED_MSG).field_path(".destination"))]
pub struct Logging {
    /// DISABLED, WARN_ONLY, ERROR_ONLY or WARN_ERROR.
    pub level: LogLevel,

    /// ARN of the CloudWatch Logs group, in the file system's account and region, whose name
    /// starts with `/aws/fsx` (it must exist). Left out: FSx's `/aws/fsx/lustre`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 1024), regex(pattern = patterns::LOG_GROUP_ARN))]
    pub destination: Option<String>,
}

/// Which data repository events FSx logs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(transform = crate::schema::drop_description)]
pub enum LogLevel {
    /// No logging.
    #[serde(rename = "DISABLED")]
    Disabled,
    /// Warnings only.
    #[serde(rename = "WARN_ONLY")]
    WarnOnly,
    /// Errors only.
    #[serde(rename = "ERROR_ONLY")]
    ErrorOnly,
    /// Warnings and errors.
    #[serde(rename = "WARN_ERROR")]
    WarnError,
}

impl LogLevel {
    /// The FSx API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "DISABLED",
            Self::WarnOnly => "WARN_ONLY",
            Self::ErrorOnly => "ERROR_ONLY",
            Self::WarnError => "WARN_ERROR",
        }
    }

    /// Parses the FSx API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Disabled,
            Self::WarnOnly,
            Self::ErrorOnly,
            Self::WarnError,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_iops_values_follow_the_ssd_list() {
        let valid: Vec<i32> = (0..=200_000).filter(|n| valid_metadata_iops(*n)).collect();
        let mut expected = vec![1500, 3000, 6000];
        expected.extend((1..=16).map(|k| k * 12000));
        assert_eq!(valid, expected);
    }

    #[test]
    fn root_squash_ids_are_bounded_as_fsx_bounds_them() {
        let re = regex::Regex::new(patterns::ROOT_SQUASH).expect("pattern compiles");
        for ok in ["0:0", "65534:65534", "4294967294:1", "1000000000:2"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["4294967295:1", "01:1", "9999999999:1", "1:", "a:b", "1:2:3"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn log_levels_round_trip() {
        for l in ["DISABLED", "WARN_ONLY", "ERROR_ONLY", "WARN_ERROR"] {
            assert_eq!(LogLevel::parse(l).map(LogLevel::as_str), Some(l));
        }
        assert_eq!(LogLevel::parse("INFO"), None);
    }
}
