//! Validation in Rust: the same rules the CRD schema and its CEL rules enforce at admission,
//! for API servers without CEL and for other tooling, plus the rules that need the class
//! (size cap, S3 allow-list, namespace selector). Every violation carries its field path in the
//! API server's spelling (`spec.dataRepositories[1].s3Path`) and the same message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::class::LustreWorkspaceClass;
use crate::constants::tags as tag_keys;
use crate::messages;
use crate::rules;
use crate::rules::patterns;
use crate::workspace::LustreWorkspace;

mod against_class;
mod backup;
mod class;
mod data_task;
mod share;
mod workspace;

pub use against_class::{
    effective_deployment_type, s3_under, selector_matches, validate_spec_against_class,
};
pub use backup::validate_backup_spec;
pub use class::validate_class_spec;
pub use data_task::{LinkedPath, is_read_only, task_paths, validate_data_task_spec};
pub use share::validate_grant_spec;
pub use workspace::{valid_capacity, validate_workspace_spec};

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
    duration: Regex,
    root_squash: Regex,
    lustre_nid: Regex,
    log_group_arn: Regex,
    availability_zone: Regex,
    daily_time: Regex,
    backup_id: Regex,
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
    duration: regex(crate::expiry::DURATION_PATTERN),
    root_squash: regex(patterns::ROOT_SQUASH),
    lustre_nid: regex(patterns::LUSTRE_NID),
    log_group_arn: regex(patterns::LOG_GROUP_ARN),
    availability_zone: regex(patterns::AVAILABILITY_ZONE),
    daily_time: regex(patterns::DAILY_TIME),
    backup_id: regex(patterns::BACKUP_ID),
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

    /// A duration field (see [`crate::expiry::DURATION_PATTERN`]).
    fn duration(&mut self, field: &str, value: &str) {
        self.length(field, value, 2, 32);
        let p = &*PATTERNS;
        self.pattern(field, value, &p.duration, crate::expiry::DURATION_PATTERN);
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
