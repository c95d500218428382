//! Backups: CreateBackup (persistent file systems without links, one at a time),
//! DescribeBackups (by id or file system, also after the file system is gone), DeleteBackup
//! (not while it is made or restored from), and CreateFileSystemFromBackup (at the backup's
//! capacity, with the backup's settings unless the request overrides them).

use serde_json::{Value, json};

use super::super::state::{Backup, Lifecycle, State, epoch_seconds};
use super::*;

fn backup_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "BackupNotFound",
        format!("Backup '{id}' does not exist."),
    )
}

/// A backup of file system `fs_id` starting now (PENDING), tagged with `tags`.
pub fn taken(
    s: &mut State,
    ctx: &mut Ctx,
    fs_id: &str,
    tags: BTreeMap<String, String>,
    token: Option<(String, String)>,
) -> Backup {
    let id = s.new_id("backup");
    let until = ctx.after(ctx.timing.backup_ms);
    let fs = s.file_systems.get(fs_id);
    let (token, fingerprint) = token.unzip();
    Backup {
        arn: s.arn("backup", &id),
        id,
        token,
        fingerprint: fingerprint.unwrap_or_default(),
        file_system_id: fs_id.to_string(),
        file_system: fs.map(file_system_json).unwrap_or(json!({})),
        storage_capacity: fs.map_or(0, |f| f.storage_capacity),
        tags,
        lifecycle: "PENDING".into(),
        progress_percent: 0,
        size_in_bytes: fs.map_or(0, |f| f.storage_capacity << 20),
        creation_time: epoch_seconds(),
        started: Some(ctx.now),
        until: Some(until),
    }
}

pub fn backup_json(b: &Backup) -> Value {
    json!({
        "BackupId": b.id,
        "Lifecycle": b.lifecycle,
        "Type": "USER_INITIATED",
        "ProgressPercent": b.progress_percent,
        "CreationTime": b.creation_time,
        "ResourceARN": b.arn,
        "Tags": tags_json(&b.tags),
        "FileSystem": b.file_system,
        "SizeInBytes": b.size_in_bytes,
        "ResourceType": "FILE_SYSTEM",
    })
}

pub fn create_backup(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(id) = token.as_ref().and_then(|t| {
        s.backups
            .values()
            .find(|b| b.token.as_ref() == Some(t))
            .map(|b| b.id.clone())
    }) {
        let b = &s.backups[&id];
        return match b.fingerprint == print {
            true => Ok(json!({"Backup": backup_json(b)})),
            false => Err(token_mismatch()),
        };
    }
    let fs_id = str_field(req, "FileSystemId").unwrap_or_default();
    let fs = s
        .file_systems
        .get(fs_id)
        .ok_or_else(|| fs_not_found(fs_id))?;
    if fs.deployment_type.starts_with("SCRATCH") {
        return Err(ApiError::new(
            400,
            "UnsupportedOperation",
            "Backups are not supported on scratch file systems.",
        ));
    }
    if s.associations
        .values()
        .any(|a| a.file_system_id == fs_id && a.lifecycle != Lifecycle::Deleting)
    {
        return Err(ApiError::new(
            400,
            "UnsupportedOperation",
            "Backups are not supported on file systems linked to a data repository.",
        ));
    }
    if fs.lifecycle != Lifecycle::Available {
        return Err(bad_request(format!(
            "File system {fs_id} is {}; a backup needs it AVAILABLE.",
            fs.lifecycle.as_str()
        )));
    }
    if let Some(b) = s
        .backups
        .values()
        .find(|b| b.file_system_id == fs_id && b.until.is_some())
    {
        return Err(ApiError::new(
            400,
            "BackupInProgress",
            format!("Another backup ({}) is already under way.", b.id),
        ));
    }
    let tags = tags_from(req)?;
    let fs_id = fs_id.to_string();
    let backup = taken(s, ctx, &fs_id, tags, token.map(|t| (t, print)));
    let out = json!({"Backup": backup_json(&backup)});
    s.backups.insert(backup.id.clone(), backup);
    Ok(out)
}

/// One `Filters` entry of DescribeBackups, as a test of a backup.
fn filter(f: &Value) -> Result<impl Fn(&Backup) -> bool + '_, ApiError> {
    let name = str_field(f, "Name").unwrap_or_default();
    let values = strings(f.get("Values"));
    if values.len() > 20 {
        return Err(bad_request("A filter takes at most 20 values."));
    }
    let name = match name {
        "file-system-id" | "backup-type" | "file-system-type" => name,
        other => return Err(bad_request(format!("Unsupported filter '{other}'."))),
    };
    Ok(move |b: &Backup| {
        let have = match name {
            "file-system-id" => b.file_system_id.as_str(),
            "backup-type" => "USER_INITIATED",
            _ => "LUSTRE",
        };
        values.contains(&have)
    })
}

pub fn describe_backups(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let ids = strings(req.get("BackupIds"));
    if ids.len() > 50 {
        return Err(bad_request("BackupIds takes at most 50 IDs."));
    }
    let found: Vec<Value> = if ids.is_empty() {
        let filters = req
            .get("Filters")
            .and_then(Value::as_array)
            .map(|fs| fs.iter().map(filter).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        s.backups
            .values()
            .filter(|b| filters.iter().all(|f| f(b)))
            .map(backup_json)
            .collect()
    } else {
        let mut out = Vec::new();
        for id in ids {
            out.push(backup_json(
                s.backups.get(id).ok_or_else(|| backup_not_found(id))?,
            ));
        }
        out
    };
    page(found, req, ctx.page_size, "Backups")
}

pub fn delete_backup(s: &mut State, _ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "BackupId").unwrap_or_default();
    let b = s.backups.get(id).ok_or_else(|| backup_not_found(id))?;
    if b.until.is_some() {
        return Err(ApiError::new(
            400,
            "BackupInProgress",
            format!(
                "Backup {id} is {}; wait until it is AVAILABLE.",
                b.lifecycle
            ),
        ));
    }
    if let Some(fs) = s
        .file_systems
        .values()
        .find(|f| f.restored_from.as_deref() == Some(id) && f.lifecycle == Lifecycle::Creating)
    {
        return Err(ApiError::new(
            400,
            "BackupRestoring",
            format!("File system {} is being restored from backup {id}.", fs.id),
        ));
    }
    s.backups.remove(id);
    Ok(json!({"BackupId": id, "Lifecycle": "DELETED"}))
}

/// CreateFileSystemFromBackup: the backup's capacity and deployment type (a request may
/// repeat them, not change them), then a create like CreateFileSystem's.
pub fn create_file_system_from_backup(
    s: &mut State,
    ctx: &mut Ctx,
    req: &Value,
) -> Result<Value, ApiError> {
    let id = str_field(req, "BackupId").unwrap_or_default().to_string();
    let b = s.backups.get(&id).ok_or_else(|| backup_not_found(&id))?;
    if b.lifecycle != "AVAILABLE" {
        return Err(bad_request(format!(
            "Backup {id} is {}; restore it once it is AVAILABLE.",
            b.lifecycle
        )));
    }
    let mut create = req.clone();
    match req.get("StorageCapacity").and_then(Value::as_i64) {
        Some(c) if c != b.storage_capacity => {
            return Err(bad_request(format!(
                "StorageCapacity {c} GiB does not match the backup's {} GiB: a Lustre file system is restored at the capacity of its backup.",
                b.storage_capacity
            )));
        }
        _ => create["StorageCapacity"] = json!(b.storage_capacity),
    }
    let backed_up = b.file_system["LustreConfiguration"].clone();
    let deployment = backed_up["DeploymentType"].clone();
    let lustre = create
        .as_object_mut()
        .map(|o| o.entry("LustreConfiguration").or_insert(json!({})))
        .filter(|l| l.is_object());
    let Some(lustre) = lustre else {
        return Err(bad_request("LustreConfiguration must be an object."));
    };
    match lustre.get("DeploymentType") {
        Some(d) if *d != deployment => {
            return Err(bad_request(format!(
                "DeploymentType {d} does not match the backup's {deployment}."
            )));
        }
        _ => lustre["DeploymentType"] = deployment,
    }
    for key in ["PerUnitStorageThroughput", "MetadataConfiguration"] {
        if lustre.get(key).is_none() && !backed_up[key].is_null() {
            lustre[key] = backed_up[key].clone();
        }
    }
    if let Some(m) = lustre.get_mut("MetadataConfiguration")
        && m["Mode"] == "AUTOMATIC"
        && let Some(o) = m.as_object_mut()
    {
        o.remove("Iops");
    }
    create["FileSystemType"] = json!("LUSTRE");
    if let Some(o) = create.as_object_mut() {
        o.remove("BackupId");
    }
    let out = super::create_file_system(s, ctx, &create)?;
    if let Some(fs) = out["FileSystem"]["FileSystemId"]
        .as_str()
        .and_then(|fs| s.file_systems.get_mut(fs))
    {
        fs.restored_from = Some(id);
    }
    Ok(out)
}
