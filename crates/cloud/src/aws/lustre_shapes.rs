//! FSx's shapes and the domain types: file systems, associations and tags as described, and
//! the Lustre settings beyond size (metadata, root squash, logging, the Intelligent-Tiering
//! read cache) in both directions.

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

pub(crate) fn tags_from(tags: &[fsx::Tag]) -> Tags {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn tags_to(tags: &Tags) -> Vec<fsx::Tag> {
    tags.iter()
        .map(|(k, v)| fsx::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn events_from(events: &[fsx::EventType]) -> Vec<S3Event> {
    events
        .iter()
        .filter_map(|e| S3Event::parse(e.as_str()))
        .collect()
}

pub(super) fn events_to(events: &[S3Event]) -> Vec<fsx::EventType> {
    events
        .iter()
        .map(|e| fsx::EventType::from(e.as_str()))
        .collect()
}

pub(crate) fn file_system_from(fs: &fsx::FileSystem) -> FileSystem {
    let lustre = fs.lustre_configuration();
    let deployment_type = match lustre.and_then(|l| l.deployment_type()).map(|d| d.as_str()) {
        Some("SCRATCH_2") => DeploymentType::Scratch2,
        Some("PERSISTENT_2") => DeploymentType::Persistent2,
        _ => DeploymentType::Other,
    };
    let update_in_progress = fs.administrative_actions().iter().any(|a| {
        matches!(
            a.status().map(|s| s.as_str()),
            Some("PENDING") | Some("IN_PROGRESS") | Some("UPDATED_OPTIMIZING")
        ) && matches!(
            a.administrative_action_type().map(|t| t.as_str()),
            Some("FILE_SYSTEM_UPDATE") | Some("STORAGE_OPTIMIZATION")
        )
    });
    FileSystem {
        id: fs.file_system_id().unwrap_or_default().to_string(),
        arn: fs.resource_arn().unwrap_or_default().to_string(),
        lifecycle: Lifecycle::parse(fs.lifecycle().map(|l| l.as_str()).unwrap_or("")),
        failure_message: fs
            .failure_details()
            .and_then(|d| d.message())
            .map(str::to_string),
        dns_name: fs.dns_name().map(str::to_string),
        mount_name: lustre.and_then(|l| l.mount_name()).map(str::to_string),
        storage_capacity_gib: fs.storage_capacity().unwrap_or_default(),
        deployment_type,
        per_unit_storage_throughput: lustre.and_then(|l| l.per_unit_storage_throughput()),
        subnet_id: fs.subnet_ids().first().cloned(),
        vpc_id: fs.vpc_id().map(str::to_string),
        network_interface_ids: fs.network_interface_ids().to_vec(),
        file_system_type_version: fs.file_system_type_version().map(str::to_string),
        tags: tags_from(fs.tags()),
        update_in_progress,
        settings: settings_from(fs),
    }
}

pub(super) fn association_from(a: &fsx::DataRepositoryAssociation) -> DataRepositoryAssociation {
    let s3 = a.s3();
    DataRepositoryAssociation {
        id: a.association_id().unwrap_or_default().to_string(),
        file_system_id: a.file_system_id().unwrap_or_default().to_string(),
        file_system_path: a.file_system_path().unwrap_or_default().to_string(),
        data_repository_path: a.data_repository_path().unwrap_or_default().to_string(),
        lifecycle: Lifecycle::parse(a.lifecycle().map(|l| l.as_str()).unwrap_or("")),
        failure_message: a
            .failure_details()
            .and_then(|d| d.message())
            .map(str::to_string),
        auto_import: s3
            .and_then(|s| s.auto_import_policy())
            .map(|p| events_from(p.events()))
            .unwrap_or_default(),
        auto_export: s3
            .and_then(|s| s.auto_export_policy())
            .map(|p| events_from(p.events()))
            .unwrap_or_default(),
        tags: tags_from(a.tags()),
    }
}
