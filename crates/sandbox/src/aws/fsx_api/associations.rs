//! Data repository associations: create, describe (by id or by file system filter), update
//! in place, delete.

use serde_json::{Value, json};

use super::super::state::{Association, Lifecycle, State, epoch_seconds};
use super::*;

fn paths_overlap(a: &str, b: &str) -> bool {
    let norm = |p: &str| format!("{}/", p.trim_end_matches('/'));
    let (a, b) = (norm(a), norm(b));
    a == "/" || b == "/" || a.starts_with(&b) || b.starts_with(&a)
}

pub fn create_association(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(done) = replay(&s.tokens, &s.associations, token.as_ref(), &print, |a| {
        &a.fingerprint
    }) {
        return done.map(|a| json!({"Association": association_json(a)}));
    }
    let fs_id = str_field(req, "FileSystemId")
        .unwrap_or_default()
        .to_string();
    let fs = s
        .file_systems
        .get(&fs_id)
        .ok_or_else(|| fs_not_found(&fs_id))?;
    if !matches!(fs.lifecycle, Lifecycle::Available | Lifecycle::Updating) {
        return Err(bad_request(format!(
            "File system {fs_id} is {}; it must be AVAILABLE.",
            fs.lifecycle.as_str()
        )));
    }
    if fs.storage_type == "INTELLIGENT_TIERING" {
        return Err(bad_request(
            "Data repository associations are not supported on Intelligent-Tiering file systems.",
        ));
    }
    if fs.deployment_type == "SCRATCH_1" || fs.file_system_type_version == "2.10" {
        return Err(ApiError::new(
            400,
            "UnsupportedOperation",
            "Data repository associations are supported on Lustre 2.12 and 2.15 file systems, except SCRATCH_1.",
        ));
    }
    let path = str_field(req, "FileSystemPath")
        .unwrap_or_default()
        .to_string();
    if !path.starts_with('/') {
        return Err(bad_request("FileSystemPath must start with /."));
    }
    let repo = str_field(req, "DataRepositoryPath")
        .unwrap_or_default()
        .to_string();
    if !repo.starts_with("s3://") || repo.len() < 8 {
        return Err(ApiError::new(
            400,
            "InvalidDataRepositoryType",
            format!("DataRepositoryPath '{repo}' is not an S3 path."),
        ));
    }
    let existing: Vec<&Association> = s
        .associations
        .values()
        .filter(|a| a.file_system_id == fs_id && a.lifecycle != Lifecycle::Deleting)
        .collect();
    if existing.len() >= 8 {
        return Err(bad_request(
            "A file system can have at most 8 data repository associations.",
        ));
    }
    if let Some(other) = existing
        .iter()
        .find(|a| paths_overlap(&a.file_system_path, &path))
    {
        return Err(bad_request(format!(
            "FileSystemPath {path} overlaps {} of association {}.",
            other.file_system_path, other.id
        )));
    }
    let events = |policy: &str| -> Vec<String> {
        let at = req
            .get("S3")
            .and_then(|s3| s3.get(policy))
            .and_then(|p| p.get("Events"));
        strings(at).into_iter().map(str::to_string).collect()
    };
    let tags = tags_from(req)?;
    let id = s.new_id("dra");
    let until = ctx.after(ctx.timing.association_create_ms);
    let a = Association {
        arn: s.arn("association", &format!("{fs_id}/{id}")),
        id: id.clone(),
        token: token.clone(),
        fingerprint: print,
        file_system_id: fs_id,
        file_system_path: path,
        data_repository_path: repo,
        auto_import: events("AutoImportPolicy"),
        auto_export: events("AutoExportPolicy"),
        batch_import_meta_data_on_create: req
            .get("BatchImportMetaDataOnCreate")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        imported_file_chunk_size: req
            .get("ImportedFileChunkSize")
            .and_then(Value::as_i64)
            .unwrap_or(1024),
        tags,
        lifecycle: Lifecycle::Creating,
        failure_message: None,
        creation_time: epoch_seconds(),
        until: Some(until),
    };
    let out = json!({"Association": association_json(&a)});
    if let Some(t) = token {
        s.tokens.insert(t, id.clone());
    }
    s.associations.insert(id, a);
    Ok(out)
}

pub fn describe_associations(
    s: &mut State,
    _ctx: &mut Ctx,
    req: &Value,
) -> Result<Value, ApiError> {
    let ids = strings(req.get("AssociationIds"));
    let mut fs_filter: Option<Vec<String>> = None;
    for f in req
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let values = filter_values(s, f)?;
        match str_field(f, "Name") {
            Some("file-system-id") => {
                fs_filter = Some(values);
            }
            Some("data-repository-type") => {}
            other => return Err(bad_request(format!("Unsupported filter {other:?}."))),
        }
    }
    if req
        .get("MaxResults")
        .and_then(Value::as_i64)
        .is_some_and(|m| m > 25)
    {
        return Err(bad_request("MaxResults is at most 25."));
    }
    let mut found = Vec::new();
    if ids.is_empty() {
        for a in s.associations.values() {
            if fs_filter
                .as_ref()
                .is_none_or(|f| f.contains(&a.file_system_id))
            {
                found.push(association_json(a));
            }
        }
    } else {
        for id in ids {
            let a = s.associations.get(id).ok_or_else(|| dra_not_found(id))?;
            found.push(association_json(a));
        }
    }
    page(found, req, 25, "Associations")
}

pub fn delete_association(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "AssociationId")
        .unwrap_or_default()
        .to_string();
    let until = ctx.after(ctx.timing.association_delete_ms);
    let a = s
        .associations
        .get_mut(&id)
        .ok_or_else(|| dra_not_found(&id))?;
    let keep = req
        .get("DeleteDataInFileSystem")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if a.lifecycle != Lifecycle::Deleting {
        a.lifecycle = Lifecycle::Deleting;
        a.until = Some(until);
    }
    Ok(json!({"AssociationId": id, "Lifecycle": "DELETING", "DeleteDataInFileSystem": keep}))
}

/// The import and export events of an association, changed in place (UPDATING, then
/// AVAILABLE); nothing else of it can change.
pub fn update_association(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    token_of(req)?;
    let id = str_field(req, "AssociationId")
        .unwrap_or_default()
        .to_string();
    let events = |policy: &str| -> Result<Option<Vec<String>>, ApiError> {
        let Some(p) = req.get("S3").and_then(|s3| s3.get(policy)) else {
            return Ok(None);
        };
        let events: Vec<String> = strings(p.get("Events"))
            .into_iter()
            .map(str::to_string)
            .collect();
        if events.len() > 3
            || events
                .iter()
                .any(|e| !matches!(e.as_str(), "NEW" | "CHANGED" | "DELETED"))
        {
            return Err(bad_request(format!(
                "{policy}.Events takes up to 3 of NEW, CHANGED, DELETED."
            )));
        }
        Ok(Some(events))
    };
    let (import, export) = (events("AutoImportPolicy")?, events("AutoExportPolicy")?);
    let chunk = match req.get("ImportedFileChunkSize").map(Value::as_i64) {
        None => None,
        Some(Some(n)) if (1..=512_000).contains(&n) => Some(n),
        _ => {
            return Err(bad_request(
                "ImportedFileChunkSize must be 1 to 512000 MiB.",
            ));
        }
    };
    let until = ctx.after(ctx.timing.association_update_ms);
    let a = s
        .associations
        .get_mut(&id)
        .ok_or_else(|| dra_not_found(&id))?;
    if a.lifecycle != Lifecycle::Available {
        return Err(bad_request(format!(
            "Association {id} is {}; it must be AVAILABLE to be updated.",
            a.lifecycle.as_str()
        )));
    }
    if let Some(e) = import {
        a.auto_import = e;
    }
    if let Some(e) = export {
        a.auto_export = e;
    }
    if let Some(n) = chunk {
        a.imported_file_chunk_size = n;
    }
    a.lifecycle = Lifecycle::Updating;
    a.until = Some(until);
    Ok(json!({"Association": association_json(a)}))
}
