//! File systems: create (with FSx's checks of network and Lustre settings), describe, update,
//! delete, and the tags of any FSx resource.

use serde_json::{Value, json};

use super::super::state::{FileSystem, Lifecycle, State, Subnet, epoch_seconds};
use super::*;

/// The sizes FSx accepts for a deployment type at create.
fn valid_capacity(deployment: &str, gib: i64) -> bool {
    match deployment {
        "SCRATCH_1" => gib == 1200 || gib == 2400 || (gib > 0 && gib % 3600 == 0),
        _ => gib == 1200 || (gib >= 2400 && gib % 2400 == 0),
    }
}

/// The answer to a create that repeats a client token: the same file system for the same
/// request, an error for another request or a token whose file system is gone.
fn replayed(s: &State, token: Option<&String>, print: &str) -> Option<Result<Value, ApiError>> {
    let id = s.tokens.get(token?)?;
    Some(match s.file_systems.get(id) {
        Some(fs) if fs.fingerprint == print => Ok(json!({"FileSystem": file_system_json(fs)})),
        Some(_) => Err(token_mismatch()),
        // The file system made with this token is gone; FSx does not reuse it.
        None => Err(ApiError::new(
            400,
            "IncompatibleParameterError",
            "The client request token was already used.",
        )
        .with("Parameter", "ClientRequestToken")),
    })
}

/// The one subnet and the security groups of a create, checked as FSx checks them.
fn network(s: &State, req: &Value) -> Result<(Subnet, Vec<String>), ApiError> {
    let subnets = strings(req.get("SubnetIds"));
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
    let groups: Vec<String> = strings(req.get("SecurityGroupIds"))
        .into_iter()
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
    Ok((subnet, groups))
}

/// What a create asks of Lustre, checked as FSx checks it.
struct Settings {
    lustre: Value,
    deployment: String,
    capacity: i64,
    throughput: Option<i64>,
    version: String,
    metadata: Option<Value>,
    root_squash: Option<Value>,
    log: Option<Value>,
    tiering: Option<(i64, Value)>,
}

fn settings(s: &State, req: &Value) -> Result<Settings, ApiError> {
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
    let tiering = lustre_settings::tiering(req, &lustre, &deployment)?;
    if tiering.is_none() && !valid_capacity(&deployment, capacity) {
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
        ("PERSISTENT_2", None) if tiering.is_none() => {
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
    let metadata = metadata_configuration(&lustre, &deployment, capacity)?;
    if tiering.is_some()
        && !metadata.as_ref().is_some_and(|m| {
            m["Mode"] == "USER_PROVISIONED" && matches!(m["Iops"].as_i64(), Some(6000 | 12000))
        })
    {
        return Err(bad_request(
            "Intelligent-Tiering file systems need a USER_PROVISIONED metadata configuration of 6000 or 12000 IOPS; AUTOMATIC mode is not supported on them.",
        ));
    }
    let root_squash = lustre
        .get("RootSquashConfiguration")
        .map(lustre_settings::root_squash)
        .transpose()?;
    let log = lustre
        .get("LogConfiguration")
        .map(|l| lustre_settings::log(l, &s.region, &s.account_id))
        .transpose()?;
    // With a metadata configuration the default version is 2.15.
    let version = str_field(req, "FileSystemTypeVersion")
        .unwrap_or(match (deployment.as_str(), &metadata) {
            (_, Some(_)) => "2.15",
            ("PERSISTENT_2", None) => "2.12",
            _ => "2.10",
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
    if metadata.is_some() && version != "2.15" {
        return Err(bad_request(format!(
            "FileSystemTypeVersion {version} is not supported for PERSISTENT_2 with a metadata configuration mode: use 2.15."
        )));
    }
    Ok(Settings {
        lustre,
        deployment,
        capacity,
        throughput,
        version,
        metadata,
        root_squash,
        log,
        tiering,
    })
}

/// `LustreConfiguration.MetadataConfiguration` as FSx takes it at creation: PERSISTENT_2
/// only, a Mode, and Iops only (and always) in USER_PROVISIONED mode, from the SSD list.
fn metadata_configuration(
    lustre: &Value,
    deployment: &str,
    capacity: i64,
) -> Result<Option<Value>, ApiError> {
    let Some(m) = lustre.get("MetadataConfiguration") else {
        return Ok(None);
    };
    if deployment != "PERSISTENT_2" {
        return Err(bad_request(
            "MetadataConfiguration is only supported for PERSISTENT_2 file systems.",
        ));
    }
    let iops = m.get("Iops").and_then(Value::as_i64);
    match (str_field(m, "Mode"), iops) {
        (Some("AUTOMATIC"), None) => {
            let gib = i32::try_from(capacity).unwrap_or(i32::MAX);
            let iops = lustre_api::lustre_settings::automatic_metadata_iops(gib);
            Ok(Some(json!({"Mode": "AUTOMATIC", "Iops": iops})))
        }
        (Some("AUTOMATIC"), Some(_)) => Err(bad_request(
            "Iops cannot be specified when the metadata configuration mode is AUTOMATIC.",
        )),
        (Some("USER_PROVISIONED"), Some(n)) if lustre_settings::listed_iops(n) => {
            Ok(Some(json!({"Mode": "USER_PROVISIONED", "Iops": n})))
        }
        (Some("USER_PROVISIONED"), _) => Err(bad_request(
            "USER_PROVISIONED mode needs Iops of 1500, 3000, 6000, 12000 or a multiple of 12000 up to 192000.",
        )),
        (mode, _) => Err(bad_request(format!(
            "Unsupported metadata configuration mode '{}'.",
            mode.unwrap_or_default()
        ))),
    }
}

pub fn create_file_system(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let token = token_of(req)?;
    let print = fingerprint(req);
    if let Some(answer) = replayed(s, token.as_ref(), &print) {
        return answer;
    }
    if str_field(req, "FileSystemType") != Some("LUSTRE") {
        return Err(bad_request(
            "This simulated account supports FileSystemType LUSTRE only.",
        ));
    }
    let (subnet, groups) = network(s, req)?;
    let Settings {
        lustre,
        deployment,
        capacity,
        throughput,
        version,
        metadata,
        root_squash,
        log,
        tiering,
    } = settings(s, req)?;
    let tags = tags_from(req)?;
    let efa_enabled = lustre.get("EfaEnabled").and_then(Value::as_bool) == Some(true);
    if efa_enabled {
        lustre_settings::efa(s, &deployment, metadata.is_some(), &groups)?;
    }

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
        metadata_configuration: metadata,
        metadata_changed_at: None,
        root_squash_configuration: root_squash,
        log_configuration: log,
        efa_enabled,
        storage_type: if tiering.is_some() {
            "INTELLIGENT_TIERING".into()
        } else {
            "SSD".into()
        },
        throughput_capacity: tiering.as_ref().map(|(t, _)| *t),
        read_cache: tiering.map(|(_, c)| c),
        pending_lustre: None,
        update_requested_at: None,
        past_actions: Vec::new(),
        restored_from: None,
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

pub fn describe_file_systems(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let ids = strings(req.get("FileSystemIds"));
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
    let (region, account) = (s.region.clone(), s.account_id.clone());
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
    let lustre = req.get("LustreConfiguration").cloned().unwrap_or(json!({}));
    let throughput = lustre
        .get("PerUnitStorageThroughput")
        .and_then(Value::as_i64);
    let now = epoch_seconds();
    let mut pending = json!({});
    if let Some(t) = lustre.get("ThroughputCapacity").and_then(Value::as_i64) {
        let have = fs.throughput_capacity.ok_or_else(|| {
            bad_request("ThroughputCapacity is only for Intelligent-Tiering file systems.")
        })?;
        if t < have || t % 4000 != 0 {
            return Err(bad_request(format!(
                "ThroughputCapacity {t} is not valid: a multiple of 4000 MBps, at least the current {have}."
            )));
        }
        pending["ThroughputCapacity"] = json!(t);
    }
    if let Some(m) = lustre.get("MetadataConfiguration") {
        pending["MetadataConfiguration"] = lustre_settings::metadata_change(fs, m, now)?;
    }
    if let Some(r) = lustre.get("RootSquashConfiguration") {
        pending["RootSquashConfiguration"] = lustre_settings::root_squash(r)?;
    }
    if let Some(l) = lustre.get("LogConfiguration") {
        pending["LogConfiguration"] = lustre_settings::log(l, &region, &account)?;
    }
    let settings = pending.as_object().is_some_and(|o| !o.is_empty());
    if capacity.is_none() && throughput.is_none() && !settings {
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
    if throughput.is_some() && fs.efa_enabled {
        return Err(bad_request(
            "PerUnitStorageThroughput cannot be changed on an EFA-enabled file system.",
        ));
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
    if pending.get("MetadataConfiguration").is_some() {
        fs.metadata_changed_at = Some(now);
    }
    fs.pending_lustre = settings.then_some(pending);
    fs.update_requested_at = Some(now);
    fs.lifecycle = Lifecycle::Updating;
    fs.until = Some(until);
    Ok(json!({"FileSystem": file_system_json(fs)}))
}

pub fn delete_file_system(s: &mut State, ctx: &mut Ctx, req: &Value) -> Result<Value, ApiError> {
    let id = str_field(req, "FileSystemId")
        .unwrap_or_default()
        .to_string();
    let until = ctx.after(ctx.timing.delete_ms);
    if let Some(t) = s
        .tasks
        .values()
        .find(|t| t.file_system_id == id && t.lifecycle.running())
    {
        return Err(bad_request(format!(
            "File system {id} has data repository task {} {}; it cannot be deleted while a task is PENDING or EXECUTING.",
            t.id,
            t.lifecycle.as_str()
        )));
    }
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
        let backup = super::backups::taken(s, ctx, &id, tags.clone(), None);
        response["LustreResponse"] =
            json!({"FinalBackupId": backup.id, "FinalBackupTags": tags_json(&tags)});
        s.backups.insert(backup.id.clone(), backup);
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
