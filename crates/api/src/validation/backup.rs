//! The rules of a `LustreWorkspaceBackup`'s spec (what its CRD schema and CEL rule check).

use super::{Checker, PATTERNS, Violation};
use crate::backup::{LustreWorkspaceBackup, LustreWorkspaceBackupSpec};
use crate::rules;
use crate::rules::patterns;

impl LustreWorkspaceBackup {
    /// Every violation of the API's own rules, comparing with `old` for the update rule.
    pub fn validate(&self, old: Option<&LustreWorkspaceBackup>) -> Vec<Violation> {
        validate_backup_spec(&self.spec, old.map(|o| &o.spec))
    }
}

/// The spec-level rules of [`LustreWorkspaceBackup::validate`].
pub fn validate_backup_spec(
    spec: &LustreWorkspaceBackupSpec,
    old: Option<&LustreWorkspaceBackupSpec>,
) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();
    c.length("spec.workspace", &spec.workspace, 1, 63);
    c.pattern(
        "spec.workspace",
        &spec.workspace,
        &p.dns_label,
        patterns::DNS_LABEL,
    );
    if let Some(old) = old
        && (old.workspace != spec.workspace || old.final_backup != spec.final_backup)
    {
        c.push("spec", rules::BACKUP_IMMUTABLE_MSG);
    }
    c.out
}
