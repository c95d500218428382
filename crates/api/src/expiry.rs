//! When a workspace goes away by itself: the workspace's `spec.expiry` (after it has been idle,
//! at a time), the class's `expiry` (a default and a longest lifetime per deployment type, and
//! how long before the expiry a warning is published), and the durations they are written in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::workspace::DeploymentType;

/// A duration as written in these fields: whole numbers of days, hours, minutes and seconds,
/// largest first, such as `90s`, `30m`, `1h30m`, `7d`.
pub const DURATION_PATTERN: &str = "^([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$";

/// The duration `text` stands for (see [`DURATION_PATTERN`]); `None` when it is not one, or
/// is empty.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut seconds: u64 = 0;
    let mut number = String::new();
    let mut last_unit = 5;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (rank, unit) = match c {
            'd' => (1, 86_400),
            'h' => (2, 3_600),
            'm' => (3, 60),
            's' => (4, 1),
            _ => return None,
        };
        // Each unit once, largest first, each with a number.
        if number.is_empty() || (last_unit != 5 && rank <= last_unit) || number.len() > 6 {
            return None;
        }
        last_unit = rank;
        seconds += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    (number.is_empty() && last_unit != 5).then(|| std::time::Duration::from_secs(seconds))
}

/// A duration for people: `1h30m`, `20s`, `2d`.
pub fn show_duration(d: std::time::Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    out
}

/// When the workspace is deleted by itself: `afterIdle` this long after the last pod using its
/// claim ended, `at` this time, whichever comes first (and never later than the class's
/// `maxLifetime`). What happens to the file system then follows `deletionPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(rules::EXPIRY_WHEN).message(rules::EXPIRY_WHEN_MSG))]
pub struct Expiry {
    /// How long the workspace may stay idle (no pod that has not finished uses its claim),
    /// counted from the end of the last such pod, or from Ready if none ever used it: `30m`,
    /// `2h`, `1h30m`, `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = DURATION_PATTERN))]
    pub after_idle: Option<String>,
    /// When to delete the workspace, in RFC 3339 (`2026-12-24T18:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// Delete (default): delete the workspace. ExportThenDelete: first export every data
    /// repository link to S3 (as `exportOnDelete` would), then delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ExpiryAction>,
}

/// What happens at expiry.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
#[schemars(transform = crate::schema::drop_description)]
pub enum ExpiryAction {
    /// Delete the workspace.
    #[default]
    Delete,
    /// Export its data repository links to S3, then delete it.
    ExportThenDelete,
}

impl ExpiryAction {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "Delete",
            Self::ExportThenDelete => "ExportThenDelete",
        }
    }
}

/// The class's expiry policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassExpiry {
    /// How long before a workspace expires a Warning Event `ExpiresSoon` is published
    /// (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = DURATION_PATTERN))]
    pub warn_before: Option<String>,
    /// Per deployment type: the longest a workspace lives and what a workspace without
    /// `spec.expiry` gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["deploymentType"]))]
    pub deployment_types: Vec<ExpiryPolicy>,
}

/// The expiry policy of one deployment type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryPolicy {
    /// SCRATCH_2 or PERSISTENT_2.
    pub deployment_type: DeploymentType,
    /// The longest a workspace of this type lives, counted from its creation, whatever its
    /// `spec.expiry` says: `72h`, `30d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = DURATION_PATTERN))]
    pub max_lifetime: Option<String>,
    /// What a workspace of this type without `spec.expiry` gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_expiry: Option<DefaultExpiry>,
}

/// A class's default expiry: after idle only (a time is each workspace's own).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultExpiry {
    /// As the workspace's `expiry.afterIdle`.
    #[schemars(length(min = 2, max = 32), regex(pattern = DURATION_PATTERN))]
    pub after_idle: String,
    /// As the workspace's `expiry.action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ExpiryAction>,
}

impl ClassExpiry {
    /// Default of [`Self::warn_before`].
    pub const DEFAULT_WARN_BEFORE: std::time::Duration = std::time::Duration::from_secs(3600);

    /// The policy for a deployment type, if the class has one.
    pub fn policy(&self, t: DeploymentType) -> Option<&ExpiryPolicy> {
        self.deployment_types
            .iter()
            .find(|p| p.deployment_type == t)
    }

    /// How long before expiry the warning goes out.
    pub fn warn_before(&self) -> std::time::Duration {
        self.warn_before
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Self::DEFAULT_WARN_BEFORE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_written_and_nothing_else_is() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("20s"), Some(20));
        assert_eq!(d("1h30m"), Some(5400));
        assert_eq!(d("7d"), Some(604_800));
        assert_eq!(d("1d2h3m4s"), Some(93_784));
        assert_eq!(d("0s"), Some(0));
        let re = regex::Regex::new(DURATION_PATTERN).expect("pattern");
        for bad in [
            "", "s", "10", "1m1h", "1h1h", "1.5h", "-1s", "1w", "1234567s",
        ] {
            assert_eq!(d(bad), None, "{bad}");
            // The pattern refuses what the parser refuses (the empty string aside: minLength).
            if !bad.is_empty() {
                assert!(!re.is_match(bad), "{bad}");
            }
        }
        assert_eq!(
            show_duration(std::time::Duration::from_secs(93_784)),
            "1d2h3m4s"
        );
        assert_eq!(show_duration(std::time::Duration::from_secs(20)), "20s");
    }
}
