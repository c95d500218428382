//! The FSx JSON 1.1 API (`X-Amz-Target: AWSSimbaAPIService_v20180301.<Operation>`) for the
//! operations the operator uses, with the validation and errors FSx documents.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

mod associations;
mod backups;
mod file_systems;
mod lustre_settings;
mod tasks;

pub use associations::{
    create_association, delete_association, describe_associations, update_association,
};
pub use backups::{
    backup_json, create_backup, create_file_system_from_backup, delete_backup, describe_backups,
};
pub use file_systems::{
    create_file_system, delete_file_system, describe_file_systems, tag_resource, untag_resource,
    update_file_system,
};
pub use tasks::{cancel_task, create_task, describe_tasks, task_json};

use super::state::{Association, FileSystem, Lifecycle, Timing, epoch_seconds, jittered};

/// An AWS error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub extra: BTreeMap<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: BTreeMap::new(),
        }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "BadRequest", message)
}

fn fs_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "FileSystemNotFound",
        format!("File system '{id}' does not exist."),
    )
}

fn dra_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "DataRepositoryAssociationNotFound",
        format!("Association '{id}' does not exist."),
    )
}

/// What a call gets besides its body: the clock, delays, and a random source for jitter.
#[allow(missing_debug_implementations)] // holds a closure
pub struct Ctx<'a> {
    pub now: Instant,
    pub timing: &'a Timing,
    pub unit: &'a mut dyn FnMut() -> f64,
    /// Largest page DescribeFileSystems returns.
    pub page_size: usize,
}

impl Ctx<'_> {
    fn after(&mut self, ms: u64) -> Instant {
        let u = (self.unit)();
        self.now + jittered(ms, self.timing.jitter, u)
    }
}

/// The strings of an array field (none when it is missing or not an array).
fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn tags_from(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let tags: BTreeMap<String, String> = v
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            (
                str_field(t, "Key").unwrap_or_default().to_string(),
                str_field(t, "Value").unwrap_or_default().to_string(),
            )
        })
        .collect();
    if tags.len() > 50 {
        return Err(bad_request("A resource can have at most 50 tags."));
    }
    if let Some(k) = tags
        .keys()
        .find(|k| k.is_empty() || k.len() > 128 || k.starts_with("aws:"))
    {
        return Err(bad_request(format!("Invalid tag key '{k}'.")));
    }
    Ok(tags)
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

fn token_of(v: &Value) -> Result<Option<String>, ApiError> {
    match str_field(v, "ClientRequestToken") {
        None => Ok(None),
        Some(t)
            if !t.is_empty()
                && t.len() <= 63
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            Ok(Some(t.to_string()))
        }
        Some(t) => Err(bad_request(format!("Invalid ClientRequestToken '{t}'."))),
    }
}

/// The request without the token: what must match for a token to be reused.
fn fingerprint(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("ClientRequestToken");
    }
    v.to_string()
}

pub fn file_system_json(fs: &FileSystem) -> Value {
    let mut lustre = json!({
        "DeploymentType": fs.deployment_type,
        "MountName": fs.mount_name,
        "DataCompressionType": fs.data_compression_type,
        "WeeklyMaintenanceStartTime": fs.weekly_maintenance_start_time.clone().unwrap_or_else(|| "1:05:00".into()),
    });
    if let Some(t) = fs.per_unit_storage_throughput {
        lustre["PerUnitStorageThroughput"] = json!(t);
    }
    if fs.efa_enabled {
        lustre["EfaEnabled"] = json!(true);
    }
    if let Some(t) = fs.throughput_capacity {
        lustre["ThroughputCapacity"] = json!(t);
    }
    if let Some(c) = &fs.read_cache {
        lustre["DataReadCacheConfiguration"] = c.clone();
    }
    if let Some(d) = fs.automatic_backup_retention_days {
        lustre["AutomaticBackupRetentionDays"] = json!(d);
    }
    for (key, v) in [
        ("MetadataConfiguration", &fs.metadata_configuration),
        ("RootSquashConfiguration", &fs.root_squash_configuration),
        ("LogConfiguration", &fs.log_configuration),
    ] {
        if let Some(v) = v {
            lustre[key] = v.clone();
        }
    }
    let mut out = json!({
        "OwnerId": "123456789012",
        "CreationTime": fs.creation_time,
        "FileSystemId": fs.id,
        "FileSystemType": "LUSTRE",
        "Lifecycle": fs.lifecycle.as_str(),
        "StorageType": fs.storage_type,
        "VpcId": fs.vpc_id,
        "SubnetIds": [fs.subnet_id],
        "NetworkInterfaceIds": fs.network_interface_ids,
        "DNSName": fs.dns_name,
        "ResourceARN": fs.arn,
        "Tags": tags_json(&fs.tags),
        "LustreConfiguration": lustre,
        "FileSystemTypeVersion": fs.file_system_type_version,
    });
    // Intelligent-Tiering storage is elastic: no capacity is reported.
    if fs.storage_type != "INTELLIGENT_TIERING" {
        out["StorageCapacity"] = json!(fs.storage_capacity);
    }
    if let Some(k) = &fs.kms_key_id {
        out["KmsKeyId"] = json!(k);
    }
    if let Some(m) = &fs.failure_message {
        out["FailureDetails"] = json!({"Message": m});
    }
    let mut actions = Vec::new();
    if fs.lifecycle == Lifecycle::Updating {
        actions.push(json!({
            "AdministrativeActionType": "FILE_SYSTEM_UPDATE",
            "Status": "IN_PROGRESS",
            "RequestTime": fs.update_requested_at.unwrap_or_else(epoch_seconds),
            "TargetFileSystemValues": fs.update_target(),
        }));
    }
    actions.extend(fs.past_actions.iter().cloned());
    if !actions.is_empty() {
        out["AdministrativeActions"] = json!(actions);
    }
    out
}

pub fn association_json(a: &Association) -> Value {
    let mut out = json!({
        "AssociationId": a.id,
        "ResourceARN": a.arn,
        "FileSystemId": a.file_system_id,
        "Lifecycle": a.lifecycle.as_str(),
        "FileSystemPath": a.file_system_path,
        "DataRepositoryPath": a.data_repository_path,
        "BatchImportMetaDataOnCreate": a.batch_import_meta_data_on_create,
        "ImportedFileChunkSize": a.imported_file_chunk_size,
        "S3": {
            "AutoImportPolicy": {"Events": a.auto_import},
            "AutoExportPolicy": {"Events": a.auto_export},
        },
        "Tags": tags_json(&a.tags),
        "CreationTime": a.creation_time,
    });
    if let Some(m) = &a.failure_message {
        out["FailureDetails"] = json!({"Message": m});
    }
    out
}

/// A Describe filter's values (at most 20); for `file-system-id`, each must be a file
/// system of the account (FSx fails the call otherwise).
fn filter_values(s: &super::state::State, f: &Value) -> Result<Vec<String>, ApiError> {
    let values: Vec<String> = strings(f.get("Values"))
        .into_iter()
        .map(str::to_string)
        .collect();
    if values.len() > 20 {
        return Err(bad_request("A filter takes at most 20 values."));
    }
    if str_field(f, "Name") == Some("file-system-id")
        && let Some(missing) = values.iter().find(|v| !s.file_systems.contains_key(*v))
    {
        return Err(fs_not_found(missing));
    }
    Ok(values)
}

/// The resource a reused client token made, when the request is the same as then; a
/// refusal when it differs; `None` for a new token (or one whose resource is gone).
fn replay<'a, T>(
    tokens: &BTreeMap<String, String>,
    made: &'a BTreeMap<String, T>,
    token: Option<&String>,
    print: &str,
    fingerprint: impl Fn(&T) -> &str,
) -> Option<Result<&'a T, ApiError>> {
    let resource = made.get(tokens.get(token?)?)?;
    Some(if fingerprint(resource) == print {
        Ok(resource)
    } else {
        Err(token_mismatch())
    })
}

/// A client token reused with different parameters.
fn token_mismatch() -> ApiError {
    ApiError::new(
        400,
        "IncompatibleParameterError",
        "The request uses the same client request token as a previous, but non-identical request.",
    )
    .with("Parameter", "ClientRequestToken")
}

/// One page of `items` as `{key: [...], NextToken}`, honouring `MaxResults` (capped) and
/// `NextToken` (an offset).
fn page(items: Vec<Value>, req: &Value, cap: usize, key: &str) -> Result<Value, ApiError> {
    let max = match req.get("MaxResults") {
        None => cap,
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => (n as usize).min(cap),
            _ => return Err(bad_request("MaxResults must be a positive integer.")),
        },
    };
    let start = match str_field(req, "NextToken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad_request("Invalid NextToken."))?,
    };
    let total = items.len();
    let chunk: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let end = start + chunk.len();
    let mut out = json!({ key: chunk });
    if end < total {
        out["NextToken"] = json!(end.to_string());
    }
    Ok(out)
}
