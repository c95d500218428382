//! The rules of a workspace that need its class and namespace: size cap, S3 allow-list,
//! namespace selector, deployment type; with the helpers they share.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::workspace::{persistent_only_rules, throughput_rules};
use super::{Checker, Violation};
use crate::class::LustreWorkspaceClassSpec;
use crate::rules;
use crate::workspace::{DeploymentType, LustreWorkspaceSpec};

/// The rules of [`crate::LustreWorkspace::validate_against_class`].
pub fn validate_spec_against_class(
    spec: &LustreWorkspaceSpec,
    namespace: &str,
    class_name: &str,
    class: &LustreWorkspaceClassSpec,
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<Violation> {
    let mut c = Checker::default();

    if let Some(selector) = &class.allowed_namespaces
        && !selector_matches(selector, namespace_labels)
    {
        c.push(
            "metadata.namespace",
            format!("class {class_name} does not allow workspaces in this namespace (its allowedNamespaces selector does not match the namespace's labels)"),
        );
    }
    // A workspace adds tags; it may not replace the class's (a cost centre, an owner, a
    // compliance marker the platform team decided).
    let overridden: Vec<&str> = spec
        .tags
        .keys()
        .filter(|k| class.tags.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !overridden.is_empty() {
        c.push(
            "spec.tags",
            format!(
                "tag {} is set by class {class_name}: a workspace may add tags, not replace the class's",
                overridden.join(", ")
            ),
        );
    }
    if let (Some(max), Some(gib)) = (class.max_storage_capacity_gib, spec.storage_capacity_gib)
        && gib > max
    {
        c.push(
            "spec.storageCapacityGiB",
            format!(
                "storageCapacityGiB {gib} is above the limit of class {class_name}: at most {max} GiB"
            ),
        );
    }
    // Elastic storage has no capacity to count against a namespace's capacity or cost budget.
    let budgeted = class
        .namespace_limits
        .as_ref()
        .is_some_and(|l| l.max_storage_capacity_gib.is_some() || l.max_monthly_cost.is_some());
    if spec.is_tiering() && budgeted {
        c.push(
            "spec.storageType",
            format!("class {class_name} budgets each namespace's storage or cost: an INTELLIGENT_TIERING file system, whose storage is elastic, cannot be counted against it; use SSD"),
        );
    }
    if let Some(iops) = spec.metadata.as_ref().and_then(|m| m.iops)
        && let Some(max) = class.max_metadata_iops
        && iops > max
    {
        c.push(
            "spec.metadata.iops",
            format!("metadata.iops {iops} is above the limit of class {class_name}: at most {max}"),
        );
    }
    if spec.efa == Some(true) && !class.efa.as_ref().is_some_and(|e| e.allowed) {
        c.push(
            "spec.efa",
            format!("class {class_name} does not allow EFA (its efa.allowed is not true)"),
        );
    }
    for (i, repo) in spec.data_repositories.iter().enumerate() {
        let under = |prefixes: &[String]| {
            prefixes
                .iter()
                .any(|prefix| s3_under(&repo.s3_path, prefix, namespace))
        };
        let read_only = under(&class.read_only_data_repositories);
        if !read_only && !under(&class.allowed_data_repositories) {
            let lists = [
                &class.allowed_data_repositories,
                &class.read_only_data_repositories,
            ];
            let list = if lists.iter().all(|l| l.is_empty()) {
                "none: the class allows no S3 data repositories".to_string()
            } else {
                lists
                    .iter()
                    .flat_map(|l| l.iter())
                    .map(|p| p.replace(rules::NAMESPACE_PLACEHOLDER, namespace))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            c.push(
                format!("spec.dataRepositories[{i}].s3Path"),
                format!(
                    "{} is not allowed by class {class_name}; allowed prefixes: {list}",
                    repo.s3_path
                ),
            );
        } else if read_only && !repo.auto_export.is_empty() {
            c.push(
                format!("spec.dataRepositories[{i}].autoExport"),
                format!(
                    "{} is read-only in class {class_name} (readOnlyDataRepositories): link it with autoImport only, or write results to a read-write prefix",
                    repo.s3_path
                ),
            );
        } else if read_only && repo.export_on_delete == Some(true) {
            c.push(
                format!("spec.dataRepositories[{i}].exportOnDelete"),
                format!(
                    "{} is read-only in class {class_name} (readOnlyDataRepositories): nothing can be exported to it; write results to a read-write prefix",
                    repo.s3_path
                ),
            );
        }
    }

    // Rules CEL skips when deploymentType is left to the class's default.
    if spec.deployment_type.is_none() && spec.file_system_id.is_none() {
        let effective = effective_deployment_type(spec, class);
        throughput_rules(
            &mut c,
            Some(effective),
            spec.per_unit_storage_throughput,
            spec.is_tiering(),
        );
        persistent_only_rules(&mut c, spec, Some(effective));
    }

    c.out
}

/// Whether S3 URL `path` lies under the allowed `prefix` (with `{namespace}` replaced by
/// `namespace`), compared by bucket and key segments: `s3://data/team-a/` is not under
/// `s3://data/team/`, and `s3://` covers every bucket. Both are validated S3 paths (no `.` or
/// `..` segments), so no segment can climb out of the prefix.
pub fn s3_under(path: &str, prefix: &str, namespace: &str) -> bool {
    fn segments(url: &str) -> Option<Vec<&str>> {
        let rest = url.strip_prefix("s3://")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        Some(if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        })
    }
    let prefix = prefix.replace(rules::NAMESPACE_PLACEHOLDER, namespace);
    match (segments(path), segments(&prefix)) {
        (Some(path), Some(prefix)) => path.starts_with(&prefix),
        _ => false,
    }
}

/// The deployment type a workspace gets: its own, else the class's default, else SCRATCH_2.
pub fn effective_deployment_type(
    spec: &LustreWorkspaceSpec,
    class: &LustreWorkspaceClassSpec,
) -> DeploymentType {
    spec.deployment_type
        .or_else(|| class.defaults.as_ref().and_then(|d| d.deployment_type))
        .unwrap_or(DeploymentType::Scratch2)
}

/// Whether a label selector matches a set of labels (`matchLabels` and `matchExpressions`
/// with In, NotIn, Exists, DoesNotExist), as Kubernetes evaluates it.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}
