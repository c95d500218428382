//! The rules of a workspace's spec on its own (what the CRD schema and its CEL rules check).

use std::collections::BTreeSet;

use super::{Checker, PATTERNS, Violation};
use crate::constants::{limits, tags as tag_keys};
use crate::messages;
use crate::rules;
use crate::rules::patterns;
use crate::workspace::{DeploymentType, LustreWorkspaceSpec};

/// The spec-level rules of [`crate::LustreWorkspace::validate`].
pub fn validate_workspace_spec(
    spec: &LustreWorkspaceSpec,
    old: Option<&LustreWorkspaceSpec>,
) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();

    if let Some(name) = &spec.class_name {
        c.length("spec.className", name, 1, 253);
    }

    if let Some(capacity) = spec.storage_capacity_gib {
        c.range(
            "spec.storageCapacityGiB",
            capacity.into(),
            Some(limits::MIN_CAPACITY_GIB.into()),
            None,
        );
        if !valid_capacity(capacity) {
            c.push("spec.storageCapacityGiB", rules::CAPACITY_MSG);
        }
    }
    storage_rules(&mut c, spec, old);

    if let Some(t) = spec.per_unit_storage_throughput
        && !limits::PERSISTENT_2_THROUGHPUTS.contains(&t)
    {
        c.push(
            "spec.perUnitStorageThroughput",
            rules::THROUGHPUT_VALUES_MSG,
        );
    }
    throughput_rules(
        &mut c,
        spec.deployment_type,
        spec.per_unit_storage_throughput,
        spec.is_tiering(),
    );
    persistent_only_rules(&mut c, spec, spec.deployment_type);

    if let Some(id) = &spec.file_system_id {
        c.pattern(
            "spec.fileSystemId",
            id,
            &p.file_system_id,
            patterns::FILE_SYSTEM_ID,
        );
        if spec.per_unit_storage_throughput.is_some()
            || spec.data_compression_type.is_some()
            || spec.metadata.is_some()
            || spec.efa.is_some()
            || spec.availability_zone.is_some()
        {
            c.push("spec.fileSystemId", rules::ADOPT_NO_CREATE_FIELDS_MSG);
        }
    }
    if let Some(zone) = &spec.availability_zone {
        c.length("spec.availabilityZone", zone, 4, 32);
        c.pattern(
            "spec.availabilityZone",
            zone,
            &p.availability_zone,
            patterns::AVAILABILITY_ZONE,
        );
    }
    if let Some(claim) = &spec.claim_name {
        c.length("spec.claimName", claim, 1, 253);
        c.pattern(
            "spec.claimName",
            claim,
            &p.dns_subdomain,
            patterns::DNS_SUBDOMAIN,
        );
    }
    c.tags("spec.tags", &spec.tags, tag_keys::MAX_WORKSPACE_TAGS);
    if let Some(minutes) = spec
        .deletion_export
        .as_ref()
        .and_then(|e| e.timeout_minutes)
    {
        c.range(
            "spec.deletionExport.timeoutMinutes",
            minutes.into(),
            Some(1),
            Some(10080),
        );
    }

    data_repository_rules(&mut c, spec);
    super::share::share_rules(&mut c, &spec.shares);
    source_rules(&mut c, spec);
    expiry_rules(&mut c, spec);
    metadata_rules(&mut c, spec, old);

    if let Some(old) = old {
        if let (Some(now), Some(was)) = (spec.storage_capacity_gib, old.storage_capacity_gib)
            && now < was
        {
            c.push("spec.storageCapacityGiB", rules::CAPACITY_GROWS_MSG);
        }
        let changed = [
            (
                spec.deployment_type.map(|t| t.as_str().to_string())
                    != old.deployment_type.map(|t| t.as_str().to_string()),
                0,
            ),
            (spec.class_name != old.class_name, 1),
            (spec.file_system_id != old.file_system_id, 2),
            (spec.claim_name != old.claim_name, 3),
            (spec.data_compression_type != old.data_compression_type, 4),
            (spec.efa != old.efa, 5),
            (spec.availability_zone != old.availability_zone, 6),
            (spec.storage_type != old.storage_type, 7),
            (spec.read_cache != old.read_cache, 8),
            (spec.source != old.source, 9),
        ];
        for (differs, i) in changed {
            if differs {
                let (field, _, message) = rules::IMMUTABLE_FIELDS[i];
                c.push(format!("spec.{field}"), message);
            }
        }
    }
    c.out
}

/// `spec.expiry`: when, in durations the operator reads, and an export only where one can run.
fn expiry_rules(c: &mut Checker, spec: &LustreWorkspaceSpec) {
    let Some(e) = &spec.expiry else { return };
    if let Some(idle) = &e.after_idle {
        c.duration("spec.expiry.afterIdle", idle);
    }
    if e.after_idle.is_none() && e.at.is_none() {
        c.push("spec.expiry", rules::EXPIRY_WHEN_MSG);
    }
    let exports = e.action == Some(crate::expiry::ExpiryAction::ExportThenDelete);
    let repos = &spec.data_repositories;
    if exports && (repos.is_empty() || repos.iter().any(|r| !r.auto_export.is_empty())) {
        c.push("spec.expiry", rules::EXPIRY_EXPORT_MSG);
    }
}

/// `spec.metadata`: IOPS exactly when user-provisioned, from FSx's list, on PERSISTENT_2, and
/// never lower than before; `spec.efa`: PERSISTENT_2, and the throughput kept.
fn metadata_rules(c: &mut Checker, spec: &LustreWorkspaceSpec, old: Option<&LustreWorkspaceSpec>) {
    use crate::lustre_settings::{MetadataMode, valid_metadata_iops};
    if let Some(m) = &spec.metadata {
        if let Some(iops) = m.iops {
            c.range("spec.metadata.iops", iops.into(), Some(1500), Some(192_000));
            if !valid_metadata_iops(iops) {
                c.push("spec.metadata.iops", rules::METADATA_IOPS_VALUES_MSG);
            }
        }
        if (m.mode == MetadataMode::UserProvisioned) != m.iops.is_some() {
            c.push("spec.metadata.iops", rules::METADATA_IOPS_MODE_MSG);
        }
    }
    let efa = spec.efa == Some(true);
    if let Some(was) = old.and_then(|o| o.per_unit_storage_throughput)
        && efa
        && spec.per_unit_storage_throughput != Some(was)
    {
        c.push("spec.perUnitStorageThroughput", rules::EFA_THROUGHPUT_MSG);
    }
    let was = old.and_then(|o| o.metadata.as_ref()).and_then(|m| m.iops);
    let now = spec.metadata.as_ref().and_then(|m| m.iops);
    if let Some(was) = was
        && now.is_none_or(|now| now < was)
    {
        c.push("spec.metadata", rules::METADATA_IOPS_GROWS_MSG);
    }
}

/// `spec.storageType` and what goes with it: SSD by capacity, Intelligent-Tiering by
/// throughput and read cache, without S3 links.
fn storage_rules(c: &mut Checker, spec: &LustreWorkspaceSpec, old: Option<&LustreWorkspaceSpec>) {
    use crate::lustre_settings::{MetadataMode, ReadCacheSizing};
    if let Some(t) = spec.throughput_capacity {
        c.range(
            "spec.throughputCapacity",
            t.into(),
            Some(4000),
            Some(2_000_000),
        );
        if t % 4000 != 0 {
            c.push("spec.throughputCapacity", rules::TIERING_THROUGHPUT_MSG);
        }
        if let Some(was) = old.and_then(|o| o.throughput_capacity)
            && t < was
        {
            c.push(
                "spec.throughputCapacity",
                rules::TIERING_THROUGHPUT_GROWS_MSG,
            );
        }
    }
    if let Some(cache) = &spec.read_cache {
        if let Some(size) = cache.size_gib {
            c.range("spec.readCache.sizeGiB", size.into(), Some(0), None);
        }
        if (cache.sizing_mode == ReadCacheSizing::UserProvisioned) != cache.size_gib.is_some() {
            c.push("spec.readCache.sizeGiB", rules::READ_CACHE_SIZE_MSG);
        }
        if let (Some(size), Some(t)) = (cache.size_gib, spec.throughput_capacity) {
            let units = i64::from(t / 4000);
            if !(32 * units..=131_072 * units).contains(&i64::from(size)) {
                c.push("spec.readCache", rules::READ_CACHE_BOUNDS_MSG);
            }
        }
    }
    if !spec.is_tiering() {
        if spec.storage_capacity_gib.is_none()
            || spec.throughput_capacity.is_some()
            || spec.read_cache.is_some()
        {
            c.push("spec.storageCapacityGiB", rules::SSD_FIELDS_MSG);
        }
        return;
    }
    if spec.throughput_capacity.is_none()
        || spec.storage_capacity_gib.is_some()
        || spec.per_unit_storage_throughput.is_some()
        || spec.deployment_type != Some(DeploymentType::Persistent2)
    {
        c.push("spec.storageType", rules::TIERING_FIELDS_MSG);
    }
    if !spec.data_repositories.is_empty() {
        c.push("spec.dataRepositories", rules::TIERING_NO_LINKS_MSG);
    }
    if let Some(m) = &spec.metadata
        && !(m.mode == MetadataMode::UserProvisioned && matches!(m.iops, Some(6000 | 12000)))
    {
        c.push("spec.metadata", rules::TIERING_METADATA_MSG);
    }
}

/// What only PERSISTENT_2 takes (a final backup, a metadata configuration, EFA), set for
/// another `deployment` type (the spec's, or the class's default where CEL cannot see it).
pub(super) fn persistent_only_rules(
    c: &mut Checker,
    spec: &LustreWorkspaceSpec,
    deployment: Option<DeploymentType>,
) {
    if deployment.is_none_or(|t| t == DeploymentType::Persistent2) {
        return;
    }
    if spec.final_backup_on_delete == Some(true) {
        c.push("spec.finalBackupOnDelete", rules::FINAL_BACKUP_MSG);
    }
    if spec.metadata.is_some() {
        c.push("spec.metadata", rules::METADATA_PERSISTENT_MSG);
    }
    if spec.efa == Some(true) {
        c.push("spec.efa", rules::EFA_PERSISTENT_MSG);
    }
    if spec.source.is_some() {
        c.push("spec.source", rules::RESTORE_PERSISTENT_MSG);
    }
}

/// `spec.source`: one backup, by name (with its namespace) or by id; not with an adoption.
fn source_rules(c: &mut Checker, spec: &LustreWorkspaceSpec) {
    let p = &*PATTERNS;
    let Some(source) = &spec.source else {
        return;
    };
    if source.backup_name.is_some() == source.backup_id.is_some() {
        c.push("spec.source", rules::SOURCE_ONE_MSG);
    }
    if source.backup_namespace.is_some() && source.backup_name.is_none() {
        c.push("spec.source.backupNamespace", rules::SOURCE_NAMESPACE_MSG);
    }
    if spec.file_system_id.is_some() {
        c.push("spec.source", rules::RESTORE_NOT_ADOPT_MSG);
    }
    if let Some(name) = &source.backup_name {
        c.length("spec.source.backupName", name, 1, 253);
        c.pattern(
            "spec.source.backupName",
            name,
            &p.dns_subdomain,
            patterns::DNS_SUBDOMAIN,
        );
    }
    if let Some(ns) = &source.backup_namespace {
        c.length("spec.source.backupNamespace", ns, 1, 63);
        c.pattern(
            "spec.source.backupNamespace",
            ns,
            &p.dns_label,
            patterns::DNS_LABEL,
        );
    }
    if let Some(id) = &source.backup_id {
        c.length("spec.source.backupId", id, 15, 128);
        c.pattern(
            "spec.source.backupId",
            id,
            &p.backup_id,
            patterns::BACKUP_ID,
        );
    }
}

/// Whether `gib` is a SCRATCH_2 / PERSISTENT_2 size.
pub fn valid_capacity(gib: i32) -> bool {
    gib == limits::MIN_CAPACITY_GIB
        || (gib >= limits::CAPACITY_STEP_GIB && gib % limits::CAPACITY_STEP_GIB == 0)
}

pub(super) fn throughput_rules(
    c: &mut Checker,
    deployment: Option<DeploymentType>,
    throughput: Option<i32>,
    tiering: bool,
) {
    match (deployment, throughput) {
        (Some(DeploymentType::Persistent2), None) if !tiering => c.push(
            "spec.perUnitStorageThroughput",
            rules::THROUGHPUT_REQUIRED_MSG,
        ),
        (Some(DeploymentType::Scratch2), Some(_)) => c.push(
            "spec.perUnitStorageThroughput",
            rules::THROUGHPUT_FORBIDDEN_MSG,
        ),
        _ => {}
    }
}

fn data_repository_rules(c: &mut Checker, spec: &LustreWorkspaceSpec) {
    let p = &*PATTERNS;
    let repos = &spec.data_repositories;
    c.max_items(
        "spec.dataRepositories",
        repos.len(),
        limits::MAX_DATA_REPOSITORIES,
    );

    let mut names = BTreeSet::new();
    for (i, repo) in repos.iter().enumerate() {
        let at = |field: &str| format!("spec.dataRepositories[{i}].{field}");
        c.length(&at("name"), &repo.name, 1, 63);
        c.pattern(&at("name"), &repo.name, &p.dns_label, patterns::DNS_LABEL);
        if !names.insert(repo.name.as_str()) {
            c.push(
                format!("spec.dataRepositories[{i}]"),
                messages::duplicate(format!("{{\"name\":\"{}\"}}", repo.name)),
            );
        }
        c.length(&at("s3Path"), &repo.s3_path, 8, limits::MAX_S3_PATH_LENGTH);
        if !p.s3_path.is_match(&repo.s3_path) {
            c.push(at("s3Path"), rules::S3_PATH_MSG);
        }
        c.length(&at("fileSystemPath"), &repo.file_system_path, 1, 4096);
        if repo.file_system_path != "/" && !p.fs_path.is_match(&repo.file_system_path) {
            c.push(at("fileSystemPath"), rules::FS_PATH_MSG);
        }
        for (field, events) in [
            ("autoImport", &repo.auto_import),
            ("autoExport", &repo.auto_export),
        ] {
            c.max_items(&at(field), events.len(), 3);
            let mut seen = BTreeSet::new();
            for (j, e) in events.iter().enumerate() {
                if !seen.insert(*e) {
                    c.push(
                        format!("{}[{j}]", at(field)),
                        messages::duplicate(format!("\"{}\"", e.as_str())),
                    );
                }
            }
        }
        if let Some(chunk) = repo.imported_file_chunk_size_mib {
            c.range(
                &at("importedFileChunkSizeMiB"),
                chunk.into(),
                Some(1),
                Some(limits::MAX_IMPORTED_FILE_CHUNK_MIB.into()),
            );
        }
    }

    let paths: Vec<&str> = repos.iter().map(|r| r.file_system_path.as_str()).collect();
    let field = "spec.dataRepositories";
    if paths
        .iter()
        .any(|a| paths.iter().filter(|b| *b == a).count() != 1)
    {
        c.push(field, rules::FS_PATH_UNIQUE_MSG);
    }
    let nested = paths.iter().any(|a| {
        *a != "/"
            && paths
                .iter()
                .any(|b| b != a && b.starts_with(&format!("{a}/")))
    });
    if nested {
        c.push(field, rules::FS_PATH_NESTED_MSG);
    }
    if paths.len() > 1 && paths.contains(&"/") {
        c.push(field, rules::FS_PATH_ROOT_ALONE_MSG);
    }
    if repos.iter().any(|r| r.export_on_delete == Some(true))
        && repos.iter().any(|r| !r.auto_export.is_empty())
    {
        c.push(field, rules::EXPORT_NOT_AUTO_MSG);
    }
}
