//! A backup object's status: its phase from FSx's lifecycle, its progress and size, and the
//! `Ready` / `Failed` conditions (a condition keeps its transition time while its status
//! holds).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use lustre_api::{BackupPhase, LustreWorkspaceBackup, LustreWorkspaceBackupStatus};
use lustre_cloud::{Backup, BackupLifecycle};

use crate::beside::{conditions_of, time};

fn prior(b: &LustreWorkspaceBackup) -> LustreWorkspaceBackupStatus {
    b.status.clone().unwrap_or_default()
}

/// `phase` for `reason`, saying `note`.
pub(crate) fn at(
    b: &LustreWorkspaceBackup,
    phase: BackupPhase,
    reason: &str,
    note: String,
) -> LustreWorkspaceBackupStatus {
    let mut s = prior(b);
    s.phase = Some(phase);
    s.conditions = conditions(b, phase, reason, &note);
    s.message = Some(note);
    s
}

/// The status what FSx shows of the backup calls for.
pub(crate) fn observed(b: &LustreWorkspaceBackup, seen: &Backup) -> LustreWorkspaceBackupStatus {
    let (phase, reason, note) = match &seen.lifecycle {
        BackupLifecycle::Available => (
            BackupPhase::Available,
            "Available",
            format!(
                "{} holds {} GiB of file system {}: restore it with source.backupName",
                seen.id, seen.storage_capacity_gib, seen.file_system_id
            ),
        ),
        BackupLifecycle::Failed => (
            BackupPhase::Failed,
            "BackupFailed",
            format!(
                "FSx failed backup {}: {}",
                seen.id,
                seen.failure_message
                    .as_deref()
                    .unwrap_or("no details given")
            ),
        ),
        BackupLifecycle::Deleted => (
            BackupPhase::Failed,
            "BackupDeleted",
            format!("backup {} was deleted", seen.id),
        ),
        other => (
            BackupPhase::Creating,
            "Creating",
            format!(
                "FSx backup {} is {} ({}%)",
                seen.id,
                other.as_str(),
                seen.progress_percent.unwrap_or(0)
            ),
        ),
    };
    let mut s = at(b, phase, reason, note);
    s.backup_id = Some(seen.id.clone());
    s.file_system_id = Some(seen.file_system_id.clone());
    s.lifecycle = Some(seen.lifecycle.as_str().to_string());
    let percent = match seen.lifecycle {
        BackupLifecycle::Available => Some(100),
        _ => seen.progress_percent,
    };
    s.progress_percent = percent;
    s.progress = percent.map(|p| format!("{p}%"));
    s.size_bytes = seen.size_bytes;
    s.storage_capacity_gib = Some(seen.storage_capacity_gib);
    s.creation_time = seen.created_at.and_then(time);
    s
}

/// `Ready` (True once restorable) and `Failed`.
fn conditions(
    b: &LustreWorkspaceBackup,
    phase: BackupPhase,
    reason: &str,
    note: &str,
) -> Vec<Condition> {
    let old = b.status.as_ref().map(|s| s.conditions.as_slice());
    let which = [
        ("Ready", phase == BackupPhase::Available),
        ("Failed", phase == BackupPhase::Failed),
    ];
    conditions_of(
        old.unwrap_or_default(),
        b.metadata.generation,
        which,
        reason,
        note,
    )
}
