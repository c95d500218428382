//! The rules of shares (`spec.shares` of a workspace) and of a `LustreWorkspaceGrant` (what
//! their schema and CEL rules check).

use super::{Checker, PATTERNS, Violation};
use crate::rules;
use crate::rules::patterns;
use crate::share::{LustreWorkspaceGrant, LustreWorkspaceGrantSpec, Share};

impl LustreWorkspaceGrant {
    /// Every violation of the API's own rules, comparing with `old` for the update rule.
    pub fn validate(&self, old: Option<&LustreWorkspaceGrant>) -> Vec<Violation> {
        validate_grant_spec(&self.spec, old.map(|o| &o.spec))
    }
}

/// The spec-level rules of [`LustreWorkspaceGrant::validate`].
pub fn validate_grant_spec(
    spec: &LustreWorkspaceGrantSpec,
    old: Option<&LustreWorkspaceGrantSpec>,
) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();
    for (field, value) in [
        ("spec.fromNamespace", &spec.from_namespace),
        ("spec.workspace", &spec.workspace),
    ] {
        c.length(field, value, 1, 63);
        c.pattern(field, value, &p.dns_label, patterns::DNS_LABEL);
    }
    if old.is_some_and(|o| o != spec) {
        c.push("spec", rules::GRANT_IMMUTABLE_MSG);
    }
    c.out
}

/// `spec.shares` of a workspace.
pub(super) fn share_rules(c: &mut Checker, shares: &[Share]) {
    let p = &*PATTERNS;
    c.max_items("spec.shares", shares.len(), 16);
    for (i, share) in shares.iter().enumerate() {
        let at = |f: &str| format!("spec.shares[{i}].{f}");
        c.length(&at("namespace"), &share.namespace, 1, 63);
        c.pattern(
            &at("namespace"),
            &share.namespace,
            &p.dns_label,
            patterns::DNS_LABEL,
        );
        if let Some(claim) = &share.claim_name {
            c.length(&at("claimName"), claim, 1, 253);
            c.pattern(
                &at("claimName"),
                claim,
                &p.dns_subdomain,
                patterns::DNS_SUBDOMAIN,
            );
        }
        if let Some(path) = &share.sub_path {
            c.length(&at("subPath"), path, 2, 1024);
            c.pattern(&at("subPath"), path, &p.fs_path, rules::FS_PATH_RE);
        }
    }
}
