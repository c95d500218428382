//! Validation in Rust: the same rules the CRD schema and its CEL rules enforce at admission,
//! for API servers without CEL and for other tooling, plus the rules that need the class
//! (size cap, S3 allow-list, namespace selector). Every violation carries its field path in the
//! API server's spelling (`spec.dataRepositories[1].s3Path`) and the same message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use regex::Regex;

use crate::class::{LustreWorkspaceClass, LustreWorkspaceClassSpec};
use crate::constants::{limits, tags as tag_keys};
use crate::messages;
use crate::rules;
use crate::rules::patterns;
use crate::workspace::{DeploymentType, LustreWorkspace, LustreWorkspaceSpec};

/// One broken rule: where, and what a person should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Field path as the API server writes it, e.g. `spec.dataRepositories[0].s3Path`.
    pub field: String,
    /// What is wrong, in words a user understands.
    pub message: String,
}

impl Violation {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins violations into the single message a status condition carries.
pub fn summarize(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern} must compile: {e}"))
}

struct Patterns {
    dns_label: Regex,
    dns_subdomain: Regex,
    file_system_id: Regex,
    subnet_id: Regex,
    security_group_id: Regex,
    cidr: Regex,
    region: Regex,
    maintenance_time: Regex,
    s3_path: Regex,
    s3_prefix: Regex,
    fs_path: Regex,
    tag_chars: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    dns_label: regex(patterns::DNS_LABEL),
    dns_subdomain: regex(patterns::DNS_SUBDOMAIN),
    file_system_id: regex(patterns::FILE_SYSTEM_ID),
    subnet_id: regex(patterns::SUBNET_ID),
    security_group_id: regex(patterns::SECURITY_GROUP_ID),
    cidr: regex(patterns::CIDR),
    region: regex(patterns::REGION),
    maintenance_time: regex(patterns::MAINTENANCE_TIME),
    s3_path: regex(rules::S3_PATH_RE),
    s3_prefix: regex(rules::S3_PREFIX_RE),
    fs_path: regex(rules::FS_PATH_RE),
    tag_chars: regex(rules::TAG_CHARS_RE),
});

/// Collects violations with small helpers for the schema's keyword checks.
#[derive(Default)]
struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Violation::new(field, message));
    }

    fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value.len() < min {
            self.push(field, messages::too_short(field, min));
        }
        if value.len() > max {
            self.push(field, messages::too_long(max));
        }
    }

    fn pattern(&mut self, field: &str, value: &str, re: &Regex, pattern: &str) {
        if !re.is_match(value) {
            self.push(field, messages::no_match(field, pattern));
        }
    }

    fn range(&mut self, field: &str, value: i64, min: Option<i64>, max: Option<i64>) {
        if let Some(min) = min.filter(|m| value < *m) {
            self.push(field, messages::below_minimum(field, min));
        }
        if let Some(max) = max.filter(|m| value > *m) {
            self.push(field, messages::above_maximum(field, max));
        }
    }

    fn max_items(&mut self, field: &str, count: usize, max: usize) {
        if count > max {
            self.push(field, messages::too_many(count, max));
        }
    }

    fn tags(&mut self, field: &str, tags: &BTreeMap<String, String>, max: usize) {
        self.max_items(field, tags.len(), max);
        // AWS reserves `aws:` in any case (the CEL rule sees only the lower-case spelling: a
        // case-folding call over every map key would not fit the cost budget).
        let reserved = |k: &String| {
            k.to_ascii_lowercase()
                .starts_with(tag_keys::AWS_RESERVED_PREFIX)
                || k.starts_with(tag_keys::PREFIX)
                || k == tag_keys::AWS_NAME
        };
        if tags.keys().any(reserved) {
            self.push(field, rules::TAG_KEYS_MSG);
        }
        if tags
            .keys()
            .any(|k| k.is_empty() || k.chars().count() > tag_keys::MAX_KEY_LENGTH)
        {
            self.push(field, rules::TAG_SIZES_MSG);
        }
        for (k, v) in tags {
            if v.chars().count() > tag_keys::MAX_VALUE_LENGTH {
                self.push(
                    format!("{field}.{k}"),
                    messages::too_long(tag_keys::MAX_VALUE_LENGTH),
                );
            }
        }
        // Keys are checked here only: no CEL rule can afford a regex over map keys (see
        // rules::TAG_CHARS).
        let chars = &PATTERNS.tag_chars;
        if tags
            .iter()
            .any(|(k, v)| !chars.is_match(k) || !chars.is_match(v))
        {
            self.push(field, rules::TAG_CHARS_MSG);
        }
    }
}

/// [`rules::NAME_LENGTH`]: at most 63 characters (reported on the object, as CEL does).
fn name_length(out: &mut Vec<Violation>, name: &Option<String>, message: &str) {
    if name.as_deref().is_some_and(|n| n.chars().count() > 63) {
        out.push(Violation {
            field: crate::messages::ROOT_FIELD.into(),
            message: message.into(),
        });
    }
}

impl LustreWorkspace {
    /// Every violation of the API's own rules (the ones the CRD schema and CEL enforce),
    /// comparing with `old` for the update rules when given.
    pub fn validate(&self, old: Option<&LustreWorkspace>) -> Vec<Violation> {
        let mut out = Vec::new();
        name_length(
            &mut out,
            &self.metadata.name,
            rules::WORKSPACE_NAME_LENGTH_MSG,
        );
        out.extend(validate_workspace_spec(&self.spec, old.map(|o| &o.spec)));
        out
    }

    /// Violations of the class's rules: size cap, S3 allow-list, namespace selector (given the
    /// namespace's labels), and the rules that need the class's defaults to decide.
    pub fn validate_against_class(
        &self,
        class: &LustreWorkspaceClass,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Vec<Violation> {
        let class_name = class.metadata.name.as_deref().unwrap_or_default();
        let namespace = self.metadata.namespace.as_deref().unwrap_or_default();
        validate_spec_against_class(
            &self.spec,
            namespace,
            class_name,
            &class.spec,
            namespace_labels,
        )
    }
}

impl LustreWorkspaceClass {
    /// Every violation of the class's own rules.
    pub fn validate(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        name_length(&mut out, &self.metadata.name, rules::CLASS_NAME_LENGTH_MSG);
        out.extend(validate_class_spec(&self.spec));
        out
    }
}

/// The spec-level rules of [`LustreWorkspace::validate`].
pub fn validate_workspace_spec(
    spec: &LustreWorkspaceSpec,
    old: Option<&LustreWorkspaceSpec>,
) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();

    if let Some(name) = &spec.class_name {
        c.length("spec.className", name, 1, 253);
    }

    let capacity = spec.storage_capacity_gib;
    c.range(
        "spec.storageCapacityGiB",
        capacity.into(),
        Some(limits::MIN_CAPACITY_GIB.into()),
        None,
    );
    if !valid_capacity(capacity) {
        c.push("spec.storageCapacityGiB", rules::CAPACITY_MSG);
    }

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
    );
    if spec.final_backup_on_delete == Some(true)
        && spec
            .deployment_type
            .is_some_and(|t| t != DeploymentType::Persistent2)
    {
        c.push("spec.finalBackupOnDelete", rules::FINAL_BACKUP_MSG);
    }

    if let Some(id) = &spec.file_system_id {
        c.pattern(
            "spec.fileSystemId",
            id,
            &p.file_system_id,
            patterns::FILE_SYSTEM_ID,
        );
        if spec.per_unit_storage_throughput.is_some() || spec.data_compression_type.is_some() {
            c.push("spec.fileSystemId", rules::ADOPT_NO_CREATE_FIELDS_MSG);
        }
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

    data_repository_rules(&mut c, spec);

    if let Some(old) = old {
        if capacity < old.storage_capacity_gib {
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

/// Whether `gib` is a SCRATCH_2 / PERSISTENT_2 size.
pub fn valid_capacity(gib: i32) -> bool {
    gib == limits::MIN_CAPACITY_GIB
        || (gib >= limits::CAPACITY_STEP_GIB && gib % limits::CAPACITY_STEP_GIB == 0)
}

fn throughput_rules(c: &mut Checker, deployment: Option<DeploymentType>, throughput: Option<i32>) {
    match (deployment, throughput) {
        (Some(DeploymentType::Persistent2), None) => c.push(
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
}

/// The rules of [`LustreWorkspaceClass::validate`].
pub fn validate_class_spec(spec: &LustreWorkspaceClassSpec) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();
    if let Some(region) = &spec.region {
        c.pattern("spec.region", region, &p.region, patterns::REGION);
    }
    c.pattern(
        "spec.subnetId",
        &spec.subnet_id,
        &p.subnet_id,
        patterns::SUBNET_ID,
    );

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

/// The rules of [`LustreWorkspace::validate_against_class`].
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
    if let Some(max) = class.max_storage_capacity_gib
        && spec.storage_capacity_gib > max
    {
        c.push(
            "spec.storageCapacityGiB",
            format!(
                "storageCapacityGiB {} is above the limit of class {class_name}: at most {max} GiB",
                spec.storage_capacity_gib
            ),
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
        }
    }

    // Rules CEL skips when deploymentType is left to the class's default.
    if spec.deployment_type.is_none() && spec.file_system_id.is_none() {
        let effective = effective_deployment_type(spec, class);
        throughput_rules(&mut c, Some(effective), spec.per_unit_storage_throughput);
        if spec.final_backup_on_delete == Some(true) && effective != DeploymentType::Persistent2 {
            c.push("spec.finalBackupOnDelete", rules::FINAL_BACKUP_MSG);
        }
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
