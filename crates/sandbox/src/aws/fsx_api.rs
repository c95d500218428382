//! The FSx JSON 1.1 API (`X-Amz-Target: AWSSimbaAPIService_v20180301.<Operation>`) for the
//! operations the operator uses, with the validation and errors FSx documents.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::state::{
    Association, Backup, FileSystem, Lifecycle, State, Timing, epoch_seconds, jittered,
};

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
    if let Some(d) = fs.automatic_backup_retention_days {
        lustre["AutomaticBackupRetentionDays"] = json!(d);
    }
    let mut out = json!({
        "OwnerId": "123456789012",
        "CreationTime": fs.creation_time,
        "FileSystemId": fs.id,
        "FileSystemType": "LUSTRE",
        "Lifecycle": fs.lifecycle.as_str(),
        "StorageCapacity": fs.storage_capacity,
        "StorageType": "SSD",
        "VpcId": fs.vpc_id,
        "SubnetIds": [fs.subnet_id],
        "NetworkInterfaceIds": fs.network_interface_ids,
        "DNSName": fs.dns_name,
        "ResourceARN": fs.arn,
        "Tags": tags_json(&fs.tags),
        "LustreConfiguration": lustre,
        "FileSystemTypeVersion": fs.file_system_type_version,
    });
    if let Some(k) = &fs.kms_key_id {
        out["KmsKeyId"] = json!(k);
    }
    if let Some(m) = &fs.failure_message {
        out["FailureDetails"] = json!({"Message": m});
    }
    if fs.lifecycle == Lifecycle::Updating {
        let mut target = json!({});
        if let Some(c) = fs.pending_capacity {
            target["StorageCapacity"] = json!(c);
        }
        if let Some(t) = fs.pending_throughput {
            target["LustreConfiguration"] = json!({"PerUnitStorageThroughput": t});
        }
        out["AdministrativeActions"] = json!([{
            "AdministrativeActionType": "FILE_SYSTEM_UPDATE",
            "Status": "IN_PROGRESS",
            "RequestTime": epoch_seconds(),
            "TargetFileSystemValues": target,
        }]);
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

/// The sizes FSx accepts for a deployment type at create.
fn valid_capacity(deployment: &str, gib: i64) -> bool {
    match deployment {
        "SCRATCH_1" => gib == 1200 || gib == 2400 || (gib > 0 && gib % 3600 == 0),
        _ => gib == 1200 || (gib >= 2400 && gib % 2400 == 0),
    }
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

pub fn create_file_system(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(t) = &token
        && let Some(id) = s.tokens.get(t)
    {
        return match s.file_systems.get(id) {
            Some(fs) if fs.fingerprint == print => Ok(json!({"FileSystem": file_system_json(fs)})),
            Some(_) => Err(token_mismatch()),
            // The file system made with this token is gone; FSx does not reuse it.
            None => Err(ApiError::new(
                400,
                "IncompatibleParameterError",
                "The client request token was already used.",
            )
            .with("Parameter", "ClientRequestToken")),
        };
    }
    if str_field(req, "FileSystemType") != Some("LUSTRE") {
        return Err(bad_request(
            "This simulated account supports FileSystemType LUSTRE only.",
        ));
    }
    let subnets: Vec<&str> = req
        .get("SubnetIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let [subnet_id] = subnets.as_slice() else {
        return Err(ApiError::new(
            400,
            "InvalidNetworkSettings",
            "Lustre file systems take exactly one subnet ID.",
        ));
    };
    let Some(subnet) = s.subnets.get(*subnet_id).cloned() else {
        return Err(ApiError::new(
            400,
            "InvalidNetworkSettings",
            format!("The subnet ID '{subnet_id}' does not exist"),
        )
        .with("InvalidSubnetId", *subnet_id));
    };
    let groups: Vec<String> = req
        .get("SecurityGroupIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if groups.len() > 50 {
        return Err(bad_request("At most 50 security groups."));
    }
    for g in &groups {
        match s.security_groups.get(g) {
            None => {
                return Err(ApiError::new(
                    400,
                    "InvalidNetworkSettings",
                    format!("The security group '{g}' does not exist"),
                )
                .with("InvalidSecurityGroupId", g.as_str()));
            }
            Some(sg) if sg.vpc_id != subnet.vpc_id => {
                return Err(ApiError::new(
                    400,
                    "InvalidNetworkSettings",
                    format!(
                        "The security group '{g}' is not in the subnet's VPC '{}'",
                        subnet.vpc_id
                    ),
                )
                .with("InvalidSecurityGroupId", g.as_str()));
            }
            _ => {}
        }
    }
    let lustre = req.get("LustreConfiguration").cloned().unwrap_or(json!({}));
    let deployment = str_field(&lustre, "DeploymentType")
        .unwrap_or("SCRATCH_1")
        .to_string();
    if !matches!(
        deployment.as_str(),
        "SCRATCH_1" | "SCRATCH_2" | "PERSISTENT_1" | "PERSISTENT_2"
    ) {
        return Err(bad_request(format!(
            "Unsupported DeploymentType '{deployment}'."
        )));
    }
    let capacity = req
        .get("StorageCapacity")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if !valid_capacity(&deployment, capacity) {
        return Err(bad_request(format!(
            "Invalid storage capacity {capacity} GiB for {deployment}: use 1200, 2400 or increments of {} GiB.",
            if deployment == "SCRATCH_1" {
                3600
            } else {
                2400
            }
        )));
    }
    let throughput = lustre
        .get("PerUnitStorageThroughput")
        .and_then(Value::as_i64);
    match (deployment.as_str(), throughput) {
        ("PERSISTENT_2", None) => {
            return Err(ApiError::new(
                400,
                "InvalidPerUnitStorageThroughput",
                "PerUnitStorageThroughput is required for PERSISTENT_2.",
            ));
        }
        ("PERSISTENT_2", Some(t)) if ![125, 250, 500, 1000].contains(&t) => {
            return Err(ApiError::new(
                400,
                "InvalidPerUnitStorageThroughput",
                format!(
                    "PerUnitStorageThroughput {t} is not valid for PERSISTENT_2: use 125, 250, 500 or 1000."
                ),
            ));
        }
        ("PERSISTENT_1", Some(t)) if ![50, 100, 200].contains(&t) => {
            return Err(ApiError::new(
                400,
                "InvalidPerUnitStorageThroughput",
                format!("PerUnitStorageThroughput {t} is not valid for PERSISTENT_1."),
            ));
        }
        ("SCRATCH_1" | "SCRATCH_2", Some(_)) => {
            return Err(bad_request(
                "PerUnitStorageThroughput is only for persistent deployment types.",
            ));
        }
        _ => {}
    }
    let version = str_field(req, "FileSystemTypeVersion")
        .unwrap_or(if deployment == "PERSISTENT_2" {
            "2.12"
        } else {
            "2.10"
        })
        .to_string();
    if !matches!(version.as_str(), "2.10" | "2.12" | "2.15") {
        return Err(bad_request(format!(
            "Unsupported FileSystemTypeVersion '{version}'."
        )));
    }
    if deployment == "PERSISTENT_2" && version == "2.10" {
        return Err(bad_request(
            "PERSISTENT_2 file systems need Lustre 2.12 or later.",
        ));
    }
    let tags = tags_from(req)?;

    let id = s.new_id("fs");
    let eni = [s.new_id("eni"), s.new_id("eni")];
    let mount_name = s.new_mount_name();
    let fail_with = (!s.fail_next_creates.is_empty()).then(|| s.fail_next_creates.remove(0));
    let until = ctx.after(ctx.timing.create_ms);
    let fs = FileSystem {
        arn: s.arn("file-system", &id),
        dns_name: format!("{id}.fsx.{}.amazonaws.com", s.region),
        id: id.clone(),
        token: token.clone(),
        fingerprint: print,
        deployment_type: deployment,
        storage_capacity: capacity,
        per_unit_storage_throughput: throughput,
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        security_group_ids: groups,
        network_interface_ids: eni.to_vec(),
        kms_key_id: str_field(req, "KmsKeyId").map(str::to_string),
        data_compression_type: str_field(&lustre, "DataCompressionType")
            .unwrap_or("NONE")
            .to_string(),
        file_system_type_version: version,
        weekly_maintenance_start_time: str_field(&lustre, "WeeklyMaintenanceStartTime")
            .map(str::to_string),
        automatic_backup_retention_days: lustre
            .get("AutomaticBackupRetentionDays")
            .and_then(Value::as_i64),
        tags,
        lifecycle: Lifecycle::Creating,
        failure_message: None,
        mount_name,
        creation_time: epoch_seconds(),
        until: Some(until),
        pending_capacity: None,
        pending_throughput: None,
        fail_with,
        available_at: None,
        seen_available_at: None,
    };
    let out = json!({"FileSystem": file_system_json(&fs)});
    if let Some(t) = token {
        s.tokens.insert(t, id.clone());
    }
    s.file_systems.insert(id, fs);
    Ok(out)
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

pub fn describe_file_systems(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let ids: Vec<&str> = req
        .get("FileSystemIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if ids.len() > 50 {
        return Err(bad_request("FileSystemIds takes at most 50 IDs."));
    }
    let found: Vec<Value> = if ids.is_empty() {
        s.file_systems.values().map(file_system_json).collect()
    } else {
        let mut out = Vec::new();
        for id in ids {
            out.push(file_system_json(
                s.file_systems.get(id).ok_or_else(|| fs_not_found(id))?,
            ));
        }
        out
    };
    let out = page(found, req, ctx.page_size, "FileSystems")?;
    // The first answer that shows a file system AVAILABLE (the benchmark measures from here:
    // the moment a poll can see it).
    let now = ctx.now;
    for f in out["FileSystems"].as_array().into_iter().flatten() {
        if let Some(fs) = f["FileSystemId"]
            .as_str()
            .and_then(|id| s.file_systems.get_mut(id))
            && fs.lifecycle == Lifecycle::Available
            && fs.seen_available_at.is_none()
        {
            fs.seen_available_at = Some(now);
        }
    }
    Ok(out)
}

pub fn update_file_system(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "FileSystemId")
        .unwrap_or_default()
        .to_string();
    let until = ctx.after(ctx.timing.update_ms);
    let fs = s
        .file_systems
        .get_mut(&id)
        .ok_or_else(|| fs_not_found(&id))?;
    if fs.lifecycle != Lifecycle::Available {
        return Err(bad_request(format!(
            "Unable to update file system {id}: it is {}; wait until it is AVAILABLE (an update may already be in progress).",
            fs.lifecycle.as_str()
        )));
    }
    let capacity = req.get("StorageCapacity").and_then(Value::as_i64);
    let throughput = req
        .get("LustreConfiguration")
        .and_then(|l| l.get("PerUnitStorageThroughput"))
        .and_then(Value::as_i64);
    if capacity.is_none() && throughput.is_none() {
        return Err(bad_request("Nothing to update."));
    }
    if let Some(c) = capacity {
        if fs.deployment_type == "SCRATCH_1" {
            return Err(ApiError::new(
                400,
                "UnsupportedOperation",
                "SCRATCH_1 file systems cannot grow.",
            ));
        }
        if c <= fs.storage_capacity || c % 2400 != 0 {
            return Err(bad_request(format!(
                "New storage capacity {c} GiB must be greater than the current {} GiB and a multiple of 2400 GiB.",
                fs.storage_capacity
            )));
        }
    }
    if let Some(t) = throughput
        && (fs.deployment_type != "PERSISTENT_2" || ![125, 250, 500, 1000].contains(&t))
    {
        return Err(ApiError::new(
            400,
            "InvalidPerUnitStorageThroughput",
            format!(
                "PerUnitStorageThroughput {t} is not valid for {}.",
                fs.deployment_type
            ),
        ));
    }
    fs.pending_capacity = capacity;
    fs.pending_throughput = throughput;
    fs.lifecycle = Lifecycle::Updating;
    fs.until = Some(until);
    Ok(json!({"FileSystem": file_system_json(fs)}))
}

pub fn delete_file_system(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "FileSystemId")
        .unwrap_or_default()
        .to_string();
    let until = ctx.after(ctx.timing.delete_ms);
    let backup_id = s.new_id("backup");
    let fs = s
        .file_systems
        .get_mut(&id)
        .ok_or_else(|| fs_not_found(&id))?;
    if fs.lifecycle == Lifecycle::Deleting {
        return Ok(json!({"FileSystemId": id, "Lifecycle": "DELETING"}));
    }
    if fs.lifecycle == Lifecycle::Creating {
        return Err(bad_request(format!(
            "File system {id} is CREATING; it can be deleted once it is AVAILABLE or FAILED."
        )));
    }
    let lustre = req.get("LustreConfiguration").cloned().unwrap_or(json!({}));
    let skip = lustre
        .get("SkipFinalBackup")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut response = json!({"FileSystemId": id, "Lifecycle": "DELETING"});
    if !skip {
        if fs.deployment_type.starts_with("SCRATCH") {
            return Err(bad_request(
                "Scratch file systems have no backups: set SkipFinalBackup to true.",
            ));
        }
        let tags = tags_from(
            &lustre
                .get("FinalBackupTags")
                .map(|t| json!({"Tags": t}))
                .unwrap_or(json!({})),
        )?;
        response["LustreResponse"] =
            json!({"FinalBackupId": backup_id, "FinalBackupTags": tags_json(&tags)});
        s.backups.push(Backup {
            id: backup_id,
            file_system_id: id.clone(),
            tags,
        });
    }
    let fs = s
        .file_systems
        .get_mut(&id)
        .ok_or_else(|| fs_not_found(&id))?;
    fs.lifecycle = Lifecycle::Deleting;
    fs.until = Some(until);
    for a in s
        .associations
        .values_mut()
        .filter(|a| a.file_system_id == id)
    {
        a.lifecycle = Lifecycle::Deleting;
    }
    Ok(response)
}

/// The tags of the file system or association the request's `ResourceARN` names.
fn tags_of<'a>(
    s: &'a mut State,
    req: &Value,
) -> Result<&'a mut BTreeMap<String, String>, ApiError> {
    let arn = str_field(req, "ResourceARN").unwrap_or_default();
    if let Some(fs) = s.file_systems.values_mut().find(|f| f.arn == arn) {
        return Ok(&mut fs.tags);
    }
    if let Some(a) = s.associations.values_mut().find(|a| a.arn == arn) {
        return Ok(&mut a.tags);
    }
    Err(ApiError::new(
        400,
        "ResourceNotFound",
        format!("Resource '{arn}' does not exist."),
    )
    .with("ResourceARN", arn))
}

pub fn tag_resource(s: &mut State, _ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let tags = tags_from(req)?;
    let target = tags_of(s, req)?;
    target.extend(tags);
    if target.len() > 50 {
        return Err(bad_request("A resource can have at most 50 tags."));
    }
    Ok(json!({}))
}

pub fn untag_resource(s: &mut State, _ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let keys: Vec<String> = req
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    if keys.is_empty() {
        return Err(bad_request("TagKeys must name at least one tag key."));
    }
    let target = tags_of(s, req)?;
    for k in &keys {
        target.remove(k);
    }
    Ok(json!({}))
}

fn paths_overlap(a: &str, b: &str) -> bool {
    let norm = |p: &str| format!("{}/", p.trim_end_matches('/'));
    let (a, b) = (norm(a), norm(b));
    a == "/" || b == "/" || a.starts_with(&b) || b.starts_with(&a)
}

pub fn create_association(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(t) = &token
        && let Some(id) = s.tokens.get(t)
        && let Some(a) = s.associations.get(id)
    {
        return if a.fingerprint == print {
            Ok(json!({"Association": association_json(a)}))
        } else {
            Err(token_mismatch())
        };
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
        req.get("S3")
            .and_then(|s3| s3.get(policy))
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
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
    let ids: Vec<&str> = req
        .get("AssociationIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut fs_filter: Option<Vec<String>> = None;
    for f in req
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let values: Vec<String> = f
            .get("Values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if values.len() > 20 {
            return Err(bad_request("A filter takes at most 20 values."));
        }
        match str_field(f, "Name") {
            Some("file-system-id") => {
                if let Some(missing) = values.iter().find(|v| !s.file_systems.contains_key(*v)) {
                    return Err(fs_not_found(missing));
                }
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
            let a = s.associations.get(id).ok_or_else(|| {
                ApiError::new(
                    400,
                    "DataRepositoryAssociationNotFound",
                    format!("Association '{id}' does not exist."),
                )
            })?;
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
    let a = s.associations.get_mut(&id).ok_or_else(|| {
        ApiError::new(
            400,
            "DataRepositoryAssociationNotFound",
            format!("Association '{id}' does not exist."),
        )
    })?;
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
