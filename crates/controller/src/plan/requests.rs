//! What a step carries: the workspace's names and tags, and the AWS requests built from its
//! spec and class.

use lustre_api::validation::effective_deployment_type;
use lustre_api::{DeploymentType, LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::{
    DataRepositoryAssociation, DataRepositoryRequest, FileSystem, FileSystemRequest, Peer, Tags,
};

/// Lustre version every file system is created with: 2.15 lets data repository associations
/// work on SCRATCH_2 as well as PERSISTENT_2, and the version cannot change later.
pub const LUSTRE_VERSION: &str = "2.15";

/// The workspace's identity for tokens and tags.
pub fn owner(ws: &LustreWorkspace, class_name: &str) -> Owner {
    Owner {
        namespace: ws.metadata.namespace.clone().unwrap_or_default(),
        name: ws.metadata.name.clone().unwrap_or_default(),
        uid: ws.metadata.uid.clone().unwrap_or_default(),
        class: class_name.to_string(),
    }
}

/// The claim's name: `spec.claimName` or the workspace's name.
pub fn claim_name(ws: &LustreWorkspace) -> String {
    ws.spec
        .claim_name
        .clone()
        .unwrap_or_else(|| ws.metadata.name.clone().unwrap_or_default())
}

/// Tags for the workspace's AWS resources.
pub fn resource_tags(ws: &LustreWorkspace, class: &LustreWorkspaceClass) -> Tags {
    let class_name = class.metadata.name.clone().unwrap_or_default();
    naming::owner_tags(&owner(ws, &class_name), &class.spec.tags, &ws.spec.tags)
}

/// Client peers the class lets in.
pub fn client_peers(class: &LustreWorkspaceClass) -> Vec<Peer> {
    let sg = &class.spec.security_group;
    sg.client_security_group_ids
        .iter()
        .map(|g| Peer::Group(g.clone()))
        .chain(sg.client_cidrs.iter().map(|c| Peer::Cidr(c.clone())))
        .collect()
}

/// Every inbound rule the workspace's own security group needs: the Lustre ports from itself
/// and the class's clients, and for an EFA workspace all traffic from them as well.
pub fn wanted_ingress(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    group_id: &str,
) -> Vec<lustre_cloud::IngressRule> {
    let clients = client_peers(class);
    let mut rules = lustre_cloud::lustre_ingress(group_id, &clients);
    if ws.spec.efa == Some(true) {
        rules.extend(lustre_cloud::efa_ingress(group_id, &clients));
        rules.sort();
    }
    rules
}

/// The request that creates the workspace's file system.
pub(super) fn file_system_request(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    security_group: Option<&str>,
    subnet_id: &str,
) -> FileSystemRequest {
    let deployment = effective_deployment_type(&ws.spec, &class.spec);
    let compression = ws.spec.data_compression_type.or_else(|| {
        class
            .spec
            .defaults
            .as_ref()
            .and_then(|d| d.data_compression_type)
    });
    let mut groups: Vec<String> = security_group.into_iter().map(str::to_string).collect();
    groups.extend(
        class
            .spec
            .security_group
            .additional_security_group_ids
            .iter()
            .cloned(),
    );
    FileSystemRequest {
        client_token: naming::file_system_token(ws.metadata.uid.as_deref().unwrap_or_default()),
        deployment_type: match deployment {
            DeploymentType::Scratch2 => lustre_cloud::DeploymentType::Scratch2,
            DeploymentType::Persistent2 => lustre_cloud::DeploymentType::Persistent2,
        },
        storage_capacity_gib: ws.spec.capacity_gib(),
        per_unit_storage_throughput: ws.spec.per_unit_storage_throughput,
        subnet_id: subnet_id.to_string(),
        security_group_ids: groups,
        kms_key_id: (deployment == DeploymentType::Persistent2)
            .then(|| class.spec.kms_key_id.clone())
            .flatten(),
        lz4_compression: compression == Some(lustre_api::DataCompressionType::Lz4),
        automatic_backup_retention_days: class.spec.automatic_backup_retention_days,
        daily_automatic_backup_start_time: class.spec.daily_automatic_backup_start_time.clone(),
        // Backups exist only of file systems without S3 links (and automatic ones copy tags).
        copy_tags_to_backups: class.spec.copy_tags_to_backups == Some(true)
            && ws.spec.data_repositories.is_empty(),
        backup_id: None,
        weekly_maintenance_start_time: class.spec.weekly_maintenance_start_time.clone(),
        file_system_type_version: LUSTRE_VERSION.to_string(),
        // Only creation can give a PERSISTENT_2 file system a metadata configuration (and
        // with it the Lustre 2.15 metadata performance); AUTOMATIC scales with capacity.
        metadata: (deployment == DeploymentType::Persistent2).then(|| metadata(ws)),
        root_squash: root_squash(class),
        log: log(class),
        efa: ws.spec.efa == Some(true),
        tiering: ws.spec.is_tiering().then(|| lustre_cloud::Tiering {
            throughput_capacity: ws.spec.throughput_capacity.unwrap_or(4000),
            read_cache: ws
                .spec
                .read_cache
                .clone()
                .unwrap_or(lustre_cloud::ReadCache {
                    sizing_mode: lustre_cloud::ReadCacheSizing::ProportionalToThroughputCapacity,
                    size_gib: None,
                }),
        }),
        tags: resource_tags(ws, class),
    }
}

/// The metadata configuration the spec asks for when it says nothing: AUTOMATIC on SSD, 6000
/// provisioned IOPS on Intelligent-Tiering (where FSx has no AUTOMATIC mode).
pub(super) fn metadata(ws: &LustreWorkspace) -> lustre_cloud::MetadataConfiguration {
    use lustre_cloud::MetadataConfiguration::{Automatic, UserProvisioned};
    match (
        ws.spec.metadata.as_ref().and_then(|m| m.iops),
        ws.spec.is_tiering(),
    ) {
        (Some(iops), _) => UserProvisioned(iops),
        (None, true) => UserProvisioned(TIERING_METADATA_IOPS),
        (None, false) => Automatic,
    }
}

/// Metadata IOPS an Intelligent-Tiering file system gets when the spec names none.
pub const TIERING_METADATA_IOPS: i32 = 6000;

/// The class's root squash, as FSx takes it.
pub(super) fn root_squash(class: &LustreWorkspaceClass) -> Option<lustre_cloud::RootSquash> {
    class
        .spec
        .root_squash
        .as_ref()
        .map(|r| lustre_cloud::RootSquash {
            uid_gid: r.uid_gid.clone(),
            no_squash_nids: r.no_squash_nids.clone(),
        })
}

/// The class's logging, as FSx takes it.
pub(super) fn log(class: &LustreWorkspaceClass) -> Option<lustre_cloud::LogSettings> {
    class
        .spec
        .logging
        .as_ref()
        .map(|l| lustre_cloud::LogSettings {
            level: l.level,
            destination: l.destination.clone(),
        })
}

/// The requests that link the spec's data repositories not linked yet.
pub(super) fn association_requests(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: &FileSystem,
    missing: &[&lustre_api::DataRepository],
) -> Vec<DataRepositoryRequest> {
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let tags = resource_tags(ws, class);
    missing
        .iter()
        .map(|r| DataRepositoryRequest {
            client_token: naming::association_token(uid, &fs.id, &r.file_system_path, &r.s3_path),
            file_system_id: fs.id.clone(),
            file_system_path: r.file_system_path.clone(),
            data_repository_path: r.s3_path.clone(),
            auto_import: r.auto_import.clone(),
            auto_export: r.auto_export.clone(),
            // The operator runs the import itself, and Ready waits for it (plan::import).
            batch_import_meta_data_on_create: false,
            imported_file_chunk_size_mib: r.imported_file_chunk_size_mib,
            tags: tags.clone(),
        })
        .collect()
}

/// Whether an observed association is what a spec entry asks for.
pub fn association_matches(a: &DataRepositoryAssociation, r: &lustre_api::DataRepository) -> bool {
    same_link(a, r) && events_update(a, r).is_none()
}

/// Whether an association links what an entry asks for (the same paths), whatever its
/// automatic import and export.
pub fn same_link(a: &DataRepositoryAssociation, r: &lustre_api::DataRepository) -> bool {
    a.file_system_path == r.file_system_path && a.data_repository_path == r.s3_path
}

/// The in-place change that gives the association the entry's automatic import and export
/// events (only the lists that differ); `None` when they agree.
pub fn events_update(
    a: &DataRepositoryAssociation,
    r: &lustre_api::DataRepository,
) -> Option<lustre_cloud::AssociationUpdate> {
    let mut want_import = r.auto_import.clone();
    let mut want_export = r.auto_export.clone();
    let (mut have_import, mut have_export) = (a.auto_import.clone(), a.auto_export.clone());
    for v in [
        &mut want_import,
        &mut want_export,
        &mut have_import,
        &mut have_export,
    ] {
        v.sort();
        v.dedup();
    }
    let update = lustre_cloud::AssociationUpdate {
        auto_import: (want_import != have_import).then_some(want_import),
        auto_export: (want_export != have_export).then_some(want_export),
    };
    (update != lustre_cloud::AssociationUpdate::default()).then_some(update)
}
