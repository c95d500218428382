//! The rules of a class's spec (what the CRD schema and its CEL rules check).

use super::{Checker, PATTERNS, Violation};
use crate::class::LustreWorkspaceClassSpec;
use crate::constants::{limits, tags as tag_keys};
use crate::messages;
use crate::rules;
use crate::rules::patterns;

/// The rules of [`crate::LustreWorkspaceClass::validate`].
pub fn validate_class_spec(spec: &LustreWorkspaceClassSpec) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();
    if let Some(region) = &spec.region {
        c.pattern("spec.region", region, &p.region, patterns::REGION);
    }
    if let Some(id) = &spec.subnet_id {
        c.pattern("spec.subnetId", id, &p.subnet_id, patterns::SUBNET_ID);
    }
    c.max_items("spec.subnetIds", spec.subnet_ids.len(), 16);
    for (i, id) in spec.subnet_ids.iter().enumerate() {
        let at = format!("spec.subnetIds[{i}]");
        c.pattern(&at, id, &p.subnet_id, patterns::SUBNET_ID);
        if spec.subnet_ids[..i].contains(id) {
            c.push(at, messages::duplicate(format!("\"{id}\"")));
        }
    }
    if spec.subnet_id.is_some() != spec.subnet_ids.is_empty() {
        c.push("spec.subnetIds", rules::SUBNETS_ONE_OF_MSG);
    }

    let sg = &spec.security_group;
    for (field, ids, max) in [
        ("clientSecurityGroupIds", &sg.client_security_group_ids, 20),
        (
            "additionalSecurityGroupIds",
            &sg.additional_security_group_ids,
            4,
        ),
    ] {
        c.max_items(&format!("spec.securityGroup.{field}"), ids.len(), max);
        for (i, id) in ids.iter().enumerate() {
            c.pattern(
                &format!("spec.securityGroup.{field}[{i}]"),
                id,
                &p.security_group_id,
                patterns::SECURITY_GROUP_ID,
            );
        }
    }
    c.max_items("spec.securityGroup.clientCidrs", sg.client_cidrs.len(), 20);
    for (i, cidr) in sg.client_cidrs.iter().enumerate() {
        c.pattern(
            &format!("spec.securityGroup.clientCidrs[{i}]"),
            cidr,
            &p.cidr,
            patterns::CIDR,
        );
    }
    if !sg.managed && sg.additional_security_group_ids.is_empty() {
        c.push(
            "spec.securityGroup.additionalSecurityGroupIds",
            rules::SG_NEEDED_MSG,
        );
    }
    if sg.managed && sg.client_security_group_ids.is_empty() && sg.client_cidrs.is_empty() {
        c.push(
            "spec.securityGroup.clientSecurityGroupIds",
            rules::SG_CLIENTS_MSG,
        );
    }

    if let Some(key) = &spec.kms_key_id {
        c.length("spec.kmsKeyId", key, 1, 2048);
    }
    c.tags("spec.tags", &spec.tags, tag_keys::MAX_CLASS_TAGS);

    for (field, prefixes, msg) in [
        (
            "spec.allowedDataRepositories",
            &spec.allowed_data_repositories,
            rules::S3_PREFIX_MSG,
        ),
        (
            "spec.readOnlyDataRepositories",
            &spec.read_only_data_repositories,
            rules::S3_READ_ONLY_PREFIX_MSG,
        ),
    ] {
        c.max_items(field, prefixes.len(), 100);
        for (i, prefix) in prefixes.iter().enumerate() {
            c.length(
                &format!("{field}[{i}]"),
                prefix,
                0,
                limits::MAX_S3_PATH_LENGTH,
            );
        }
        if prefixes.iter().any(|prefix| !p.s3_prefix.is_match(prefix)) {
            c.push(field, msg);
        }
    }
    if let Some(adoption) = &spec.adoption {
        let field = "spec.adoption.fileSystemTags";
        let tags = &adoption.file_system_tags;
        if tags.is_empty() {
            c.push(field, rules::ADOPTION_TAGS_MSG);
        }
        c.max_items(field, tags.len(), tag_keys::MAX_ADOPTION_TAGS);
        for (k, v) in tags {
            if v.chars().count() > tag_keys::MAX_VALUE_LENGTH {
                c.push(
                    format!("{field}.{k}"),
                    messages::too_long(tag_keys::MAX_VALUE_LENGTH),
                );
            }
        }
    }
    if let Some(max) = spec.max_storage_capacity_gib {
        c.range(
            "spec.maxStorageCapacityGiB",
            max.into(),
            Some(limits::MIN_CAPACITY_GIB.into()),
            None,
        );
    }
    if let Some(prices) = &spec.prices {
        let at = "spec.prices";
        if let Some(currency) = &prices.currency
            && !(currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()))
        {
            c.push(
                format!("{at}.currency"),
                messages::no_match(&format!("{at}.currency"), crate::cost::CURRENCY),
            );
        }
        if let Some(source) = &prices.source {
            c.length(&format!("{at}.source"), source, 0, 256);
        }
        c.max_items(&format!("{at}.perGiBMonth"), prices.per_gib_month.len(), 8);
        for (i, rate) in prices.per_gib_month.iter().enumerate() {
            let field = format!("{at}.perGiBMonth[{i}].price");
            c.length(&field, &rate.price, 1, 16);
            if crate::cost::micros(&rate.price).is_none() {
                c.push(
                    field.clone(),
                    messages::no_match(&field, crate::cost::PRICE),
                );
            }
            if let Some(t) = rate.throughput {
                c.range(
                    &format!("{at}.perGiBMonth[{i}].throughput"),
                    t.into(),
                    Some(1),
                    Some(1000),
                );
            }
        }
    }
    if let Some(budget) = &spec.namespace_limits {
        if let Some(n) = budget.max_workspaces {
            c.range(
                "spec.namespaceLimits.maxWorkspaces",
                n.into(),
                Some(0),
                Some(100_000),
            );
        }
        if let Some(gib) = budget.max_storage_capacity_gib {
            c.range(
                "spec.namespaceLimits.maxStorageCapacityGiB",
                gib,
                Some(0),
                None,
            );
        }
        if let Some(cost) = &budget.max_monthly_cost {
            let field = "spec.namespaceLimits.maxMonthlyCost";
            c.length(field, cost, 1, 16);
            if crate::cost::cents(cost).is_none() {
                c.push(field, messages::no_match(field, crate::cost::AMOUNT));
            }
        }
    }
    if let Some(expiry) = &spec.expiry {
        if let Some(w) = &expiry.warn_before {
            c.duration("spec.expiry.warnBefore", w);
        }
        let types = &expiry.deployment_types;
        c.max_items("spec.expiry.deploymentTypes", types.len(), 2);
        for (i, policy) in types.iter().enumerate() {
            let at = format!("spec.expiry.deploymentTypes[{i}]");
            if types[..i]
                .iter()
                .any(|p| p.deployment_type == policy.deployment_type)
            {
                c.push(
                    at.clone(),
                    messages::duplicate(policy.deployment_type.as_str()),
                );
            }
            if let Some(life) = &policy.max_lifetime {
                c.duration(&format!("{at}.maxLifetime"), life);
            }
            if let Some(d) = &policy.default_expiry {
                c.duration(&format!("{at}.defaultExpiry.afterIdle"), &d.after_idle);
            }
        }
    }
    lustre_settings_rules(&mut c, spec);
    if let Some(options) = &spec.mount_options {
        c.max_items("spec.mountOptions", options.len(), 16);
    }
    if let Some(days) = spec.automatic_backup_retention_days {
        c.range(
            "spec.automaticBackupRetentionDays",
            days.into(),
            Some(0),
            Some(90),
        );
    }
    if let Some(time) = &spec.daily_automatic_backup_start_time {
        c.length("spec.dailyAutomaticBackupStartTime", time, 5, 5);
        c.pattern(
            "spec.dailyAutomaticBackupStartTime",
            time,
            &p.daily_time,
            patterns::DAILY_TIME,
        );
    }
    if let Some(restore) = &spec.restore {
        c.max_items(
            "spec.restore.fromNamespaces",
            restore.from_namespaces.len(),
            64,
        );
        for (i, ns) in restore.from_namespaces.iter().enumerate() {
            c.length(&format!("spec.restore.fromNamespaces[{i}]"), ns, 1, 63);
        }
    }
    if let Some(time) = &spec.weekly_maintenance_start_time {
        c.pattern(
            "spec.weeklyMaintenanceStartTime",
            time,
            &p.maintenance_time,
            patterns::MAINTENANCE_TIME,
        );
    }
    c.out
}

/// `spec.maxMetadataIops`, `spec.rootSquash` and `spec.logging`.
fn lustre_settings_rules(c: &mut Checker, spec: &LustreWorkspaceClassSpec) {
    let p = &*PATTERNS;
    if spec.efa.as_ref().is_some_and(|e| e.allowed) && !spec.security_group.managed {
        c.push("spec.efa", rules::EFA_MANAGED_SG_MSG);
    }
    if let Some(max) = spec.max_metadata_iops {
        c.range(
            "spec.maxMetadataIops",
            max.into(),
            Some(1500),
            Some(192_000),
        );
    }
    if let Some(squash) = &spec.root_squash {
        let field = "spec.rootSquash.uidGid";
        c.length(field, &squash.uid_gid, 3, 21);
        c.pattern(
            field,
            &squash.uid_gid,
            &p.root_squash,
            patterns::ROOT_SQUASH,
        );
        let off = squash.uid_gid == "0:0";
        if !off && (squash.uid_gid.starts_with("0:") || squash.uid_gid.ends_with(":0")) {
            c.push(field, rules::ROOT_SQUASH_IDS_MSG);
        }
        let nids = &squash.no_squash_nids;
        c.max_items("spec.rootSquash.noSquashNids", nids.len(), 64);
        for (i, nid) in nids.iter().enumerate() {
            let at = format!("spec.rootSquash.noSquashNids[{i}]");
            c.length(&at, nid, 11, 43);
            c.pattern(&at, nid, &p.lustre_nid, patterns::LUSTRE_NID);
        }
        if off && !nids.is_empty() {
            c.push("spec.rootSquash.noSquashNids", rules::ROOT_SQUASH_NIDS_MSG);
        }
    }
    if let Some(logging) = &spec.logging
        && let Some(arn) = &logging.destination
    {
        let field = "spec.logging.destination";
        c.length(field, arn, 8, 1024);
        c.pattern(field, arn, &p.log_group_arn, patterns::LOG_GROUP_ARN);
        if logging.level == crate::lustre_settings::LogLevel::Disabled {
            c.push(field, rules::LOG_DISABLED_MSG);
        }
    }
}
