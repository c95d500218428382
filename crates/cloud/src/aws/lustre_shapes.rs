//! FSx's Lustre settings shapes beyond size: metadata, root squash, logging, the
//! Intelligent-Tiering read cache, in both directions.

use aws_sdk_fsx::types as fsx;

use crate::types::*;

pub(super) fn metadata_to(
    m: MetadataConfiguration,
) -> (fsx::MetadataConfigurationMode, Option<i32>) {
    match m {
        MetadataConfiguration::Automatic => (fsx::MetadataConfigurationMode::Automatic, None),
        MetadataConfiguration::UserProvisioned(iops) => {
            (fsx::MetadataConfigurationMode::UserProvisioned, Some(iops))
        }
    }
}

pub(super) fn read_cache_to(c: &ReadCache) -> fsx::LustreReadCacheConfiguration {
    fsx::LustreReadCacheConfiguration::builder()
        .sizing_mode(fsx::LustreReadCacheSizingMode::from(c.sizing_mode.as_str()))
        .set_size_gib(c.size_gib)
        .build()
}

pub(super) fn root_squash_to(r: &RootSquash) -> fsx::LustreRootSquashConfiguration {
    fsx::LustreRootSquashConfiguration::builder()
        .root_squash(&r.uid_gid)
        .set_no_squash_nids((!r.no_squash_nids.is_empty()).then(|| r.no_squash_nids.clone()))
        .build()
}

pub(super) fn log_to(l: &LogSettings) -> fsx::LustreLogCreateConfiguration {
    fsx::LustreLogCreateConfiguration::builder()
        .level(fsx::LustreAccessAuditLogLevel::from(l.level.as_str()))
        .set_destination(l.destination.clone())
        .build()
}

/// Metadata IOPS, root squash and logging, and when FSx last took a metadata change (the
/// latest administrative update whose target names a metadata configuration).
pub(super) fn settings_from(fs: &fsx::FileSystem) -> FileSystemSettings {
    let lustre = fs.lustre_configuration();
    let metadata = lustre.and_then(|l| l.metadata_configuration());
    let metadata_changed_at = fs
        .administrative_actions()
        .iter()
        .filter(|a| {
            a.administrative_action_type().map(|t| t.as_str()) == Some("FILE_SYSTEM_UPDATE")
                && a.status().map(|s| s.as_str()) != Some("FAILED")
                && a.target_file_system_values()
                    .and_then(|t| t.lustre_configuration())
                    .and_then(|l| l.metadata_configuration())
                    .is_some()
        })
        .filter_map(|a| a.request_time().map(|t| t.secs()))
        .max();
    FileSystemSettings {
        metadata: metadata.and_then(|m| match m.mode().map(|m| m.as_str()) {
            Some("AUTOMATIC") => Some(MetadataConfiguration::Automatic),
            Some("USER_PROVISIONED") => Some(MetadataConfiguration::UserProvisioned(
                m.iops().unwrap_or_default(),
            )),
            _ => None,
        }),
        metadata_iops: metadata.and_then(|m| m.iops()),
        metadata_changed_at,
        root_squash: lustre
            .and_then(|l| l.root_squash_configuration())
            .and_then(|r| {
                Some(RootSquash {
                    uid_gid: r.root_squash()?.to_string(),
                    no_squash_nids: r.no_squash_nids().to_vec(),
                })
            }),
        efa: lustre.and_then(|l| l.efa_enabled()).unwrap_or(false),
        intelligent_tiering: fs.storage_type().map(|t| t.as_str()) == Some("INTELLIGENT_TIERING"),
        throughput_capacity: lustre.and_then(|l| l.throughput_capacity()),
        log: lustre.and_then(|l| l.log_configuration()).and_then(|l| {
            Some(LogSettings {
                level: LogLevel::parse(l.level()?.as_str())?,
                destination: l.destination().map(str::to_string),
            })
        }),
    }
}
