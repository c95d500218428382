//! `RootSquashConfiguration`, `LogConfiguration` and changes of `MetadataConfiguration`, checked
//! as FSx checks them (patterns and rules of the API model, FSX_FACTS part 2 §3 and §6).

use serde_json::{Value, json};

use super::super::state::{FileSystem, Peer, State};
use super::*;

/// FSx takes one metadata change every 6 hours.
pub const METADATA_CHANGE_SPACING_SECS: f64 = 6.0 * 3600.0;

/// The metadata IOPS FSx takes on SSD, at creation and in a change: 1500, 3000, 6000, 12000,
/// then multiples of 12000 up to 192000.
pub fn listed_iops(n: i64) -> bool {
    [1500, 3000, 6000].contains(&n) || (n % 12000 == 0 && (12000..=192000).contains(&n))
}

fn id_in_range(s: &str) -> bool {
    s.len() <= 10
        && s.chars().all(|c| c.is_ascii_digit())
        && !s.is_empty()
        && s.parse::<u64>().is_ok_and(|n| n <= 4_294_967_294)
}

/// `RootSquashConfiguration`: `UID:GID` (3-21 characters, each 0-4294967294), at most 64
/// NIDs of the form `a.b.c.d@tcp` (ranges in brackets allowed).
pub fn root_squash(v: &Value) -> Result<Value, ApiError> {
    let squash = str_field(v, "RootSquash").unwrap_or_default();
    let valid = (3..=21).contains(&squash.len())
        && squash
            .split_once(':')
            .is_some_and(|(u, g)| id_in_range(u) && id_in_range(g));
    if !valid {
        return Err(bad_request(format!(
            "RootSquash '{squash}' is not valid: use UID:GID, each from 0 to 4294967294."
        )));
    }
    let nids = strings(v.get("NoSquashNids"));
    if nids.len() > 64 {
        return Err(bad_request("NoSquashNids takes at most 64 NIDs."));
    }
    for nid in &nids {
        let Some(address) = nid.strip_suffix("@tcp") else {
            return Err(bad_request(format!("NoSquashNid '{nid}' is not valid.")));
        };
        let parts: Vec<&str> = address.split('.').collect();
        let valid = (11..=43).contains(&nid.len())
            && parts.len() == 4
            && parts
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_digit() || "[]-".contains(c)));
        if !valid {
            return Err(bad_request(format!("NoSquashNid '{nid}' is not valid.")));
        }
    }
    let mut out = json!({"RootSquash": squash});
    if !nids.is_empty() {
        out["NoSquashNids"] = json!(nids);
    }
    Ok(out)
}

/// `LogConfiguration`: a level, and a CloudWatch Logs group under `/aws/fsx` in this account
/// and region (FSx's `/aws/fsx/lustre` when none is named); none with DISABLED.
pub fn log(v: &Value, region: &str, account: &str) -> Result<Value, ApiError> {
    let level = str_field(v, "Level").unwrap_or_default();
    if !matches!(
        level,
        "DISABLED" | "WARN_ONLY" | "ERROR_ONLY" | "WARN_ERROR"
    ) {
        return Err(bad_request(format!("Unsupported log level '{level}'.")));
    }
    let destination = str_field(v, "Destination");
    if level == "DISABLED" {
        if destination.is_some() {
            return Err(bad_request(
                "A log Destination cannot be given when the Level is DISABLED.",
            ));
        }
        return Ok(json!({"Level": level}));
    }
    let prefix = format!("arn:aws:logs:{region}:{account}:log-group:");
    let group = match destination {
        None => "/aws/fsx/lustre".to_string(),
        Some(arn) => match arn.strip_prefix(&prefix) {
            Some(group) if group.starts_with("/aws/fsx") => {
                group.trim_end_matches(":*").to_string()
            }
            _ => {
                return Err(bad_request(format!(
                    "The log destination '{arn}' must be a CloudWatch Logs log group in this account and region whose name begins with /aws/fsx."
                )));
            }
        },
    };
    Ok(json!({"Level": level, "Destination": format!("{prefix}{group}")}))
}

/// An `UpdateFileSystem` `MetadataConfiguration`: only on a file system created with one,
/// IOPS from the list and never fewer than now (nor than AUTOMATIC gives), one change every 6
/// hours.
pub fn metadata_change(fs: &FileSystem, v: &Value, now: f64) -> Result<Value, ApiError> {
    let Some(current) = &fs.metadata_configuration else {
        return Err(bad_request(format!(
            "File system {} has no metadata configuration; one can only be given when the file system is created.",
            fs.id
        )));
    };
    if let Some(last) = fs.metadata_changed_at
        && now - last < METADATA_CHANGE_SPACING_SECS
    {
        return Err(bad_request(
            "The metadata configuration was changed less than 6 hours ago; try again later.",
        ));
    }
    let have = current
        .get("Iops")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    let automatic = i64::from(lustre_api::lustre_settings::automatic_metadata_iops(
        i32::try_from(fs.storage_capacity).unwrap_or(i32::MAX),
    ));
    let iops = v.get("Iops").and_then(Value::as_i64);
    match (str_field(v, "Mode"), iops) {
        (Some("USER_PROVISIONED"), Some(n)) => {
            if !listed_iops(n) || n < have || n < automatic {
                return Err(bad_request(format!(
                    "Iops {n} is not valid: use 1500, 3000, 6000, 12000 or a multiple of 12000 up to 192000, at least the {} the file system has.",
                    have.max(automatic)
                )));
            }
            Ok(json!({"Mode": "USER_PROVISIONED", "Iops": n}))
        }
        (Some("AUTOMATIC"), None) if have <= automatic => {
            Ok(json!({"Mode": "AUTOMATIC", "Iops": automatic}))
        }
        (Some("AUTOMATIC"), None) => Err(bad_request(format!(
            "The file system has {have} metadata IOPS, more than AUTOMATIC mode provisions ({automatic})."
        ))),
        (Some("AUTOMATIC"), Some(_)) => Err(bad_request(
            "Iops cannot be specified when the metadata configuration mode is AUTOMATIC.",
        )),
        (mode, _) => Err(bad_request(format!(
            "Unsupported metadata configuration mode '{}'.",
            mode.unwrap_or_default()
        ))),
    }
}

/// `StorageType: INTELLIGENT_TIERING` at creation, with the rules of the model the SDK in
/// Cargo.lock ships (FSX_FACTS part 2 §5, [crate]): PERSISTENT_2, no StorageCapacity nor
/// PerUnitStorageThroughput, ThroughputCapacity 4000 or a multiple of 4000, and a
/// DataReadCacheConfiguration (32-131072 GiB per 4000 MBps when USER_PROVISIONED). `None` for
/// SSD.
pub fn tiering(
    req: &Value,
    lustre: &Value,
    deployment: &str,
) -> Result<Option<(i64, Value)>, ApiError> {
    match str_field(req, "StorageType").unwrap_or("SSD") {
        "SSD" => return Ok(None),
        "INTELLIGENT_TIERING" => {}
        other => return Err(bad_request(format!("Unsupported StorageType '{other}'."))),
    }
    if deployment != "PERSISTENT_2" {
        return Err(bad_request(
            "Intelligent-Tiering is only available for PERSISTENT_2 file systems.",
        ));
    }
    if req.get("StorageCapacity").is_some() || lustre.get("PerUnitStorageThroughput").is_some() {
        return Err(bad_request(
            "StorageCapacity and PerUnitStorageThroughput are not supported with Intelligent-Tiering.",
        ));
    }
    let throughput = lustre.get("ThroughputCapacity").and_then(Value::as_i64);
    let Some(t) = throughput.filter(|t| *t >= 4000 && t % 4000 == 0) else {
        return Err(bad_request(
            "ThroughputCapacity is required for Intelligent-Tiering: 4000 MBps or a multiple of 4000 MBps.",
        ));
    };
    let Some(cache) = lustre.get("DataReadCacheConfiguration") else {
        return Err(bad_request(
            "DataReadCacheConfiguration is required when StorageType is INTELLIGENT_TIERING.",
        ));
    };
    let size = cache.get("SizeGiB").and_then(Value::as_i64);
    let units = t / 4000;
    match (str_field(cache, "SizingMode"), size) {
        (Some("USER_PROVISIONED"), Some(n)) if (32 * units..=131_072 * units).contains(&n) => {}
        (Some("NO_CACHE" | "PROPORTIONAL_TO_THROUGHPUT_CAPACITY"), None) => {}
        (mode, _) => {
            return Err(bad_request(format!(
                "DataReadCacheConfiguration is not valid (SizingMode {}): SizeGiB only with USER_PROVISIONED, 32 to 131072 GiB for every 4000 MBps.",
                mode.unwrap_or_default()
            )));
        }
    }
    Ok(Some((t, cache.clone())))
}

/// `EfaEnabled` at creation: PERSISTENT_2 with a metadata configuration, and a security
/// group that lets all traffic in from itself (a new group lets all traffic out already).
pub fn efa(s: &State, deployment: &str, metadata: bool, groups: &[String]) -> Result<(), ApiError> {
    if deployment != "PERSISTENT_2" || !metadata {
        return Err(bad_request(
            "EFA is only supported for PERSISTENT_2 file systems with a metadata configuration.",
        ));
    }
    let open_to_itself = groups.iter().any(|g| {
        s.security_groups.get(g).is_some_and(|sg| {
            sg.ingress
                .iter()
                .any(|r| r.protocol == "-1" && r.peer == Peer::Group(g.clone()))
        })
    });
    if !open_to_itself {
        return Err(bad_request(
            "Insufficient security group permissions to create an EFA-enabled file system. Update security group to allow all internal inbound and outbound traffic.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_squash_is_checked_as_fsx_checks_it() {
        assert!(root_squash(&json!({"RootSquash": "65534:65534"})).is_ok());
        assert!(root_squash(&json!({"RootSquash": "4294967295:1"})).is_err());
        assert!(root_squash(&json!({"RootSquash": "nobody"})).is_err());
        let nids = json!({"RootSquash": "1:1", "NoSquashNids": ["10.0.[2-10].[1-255]@tcp"]});
        assert!(root_squash(&nids).is_ok());
        let bad = json!({"RootSquash": "1:1", "NoSquashNids": ["10.0.1.6@o2ib"]});
        assert!(root_squash(&bad).is_err());
    }

    #[test]
    fn logging_needs_an_fsx_group_of_this_account_and_none_when_disabled() {
        let ok = log(&json!({"Level": "WARN_ERROR"}), "us-east-1", "123456789012").expect("ok");
        assert_eq!(
            ok["Destination"],
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/lustre"
        );
        let other = json!({"Level": "ERROR_ONLY", "Destination": "arn:aws:logs:us-east-1:123456789012:log-group:/app"});
        assert!(log(&other, "us-east-1", "123456789012").is_err());
        let disabled = json!({"Level": "DISABLED", "Destination": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/x"});
        assert!(log(&disabled, "us-east-1", "123456789012").is_err());
    }
}
