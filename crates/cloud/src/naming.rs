//! Names, idempotency tokens and tags derived from a workspace's identity. They depend only on
//! the workspace's UID (and, for associations, on what is asked for), so a restarted operator
//! derives the same ones and AWS's idempotency finds the resource it already made.

use lustre_api::constants::tags as keys;

use crate::types::Tags;

/// The workspace a resource belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Namespace of the workspace.
    pub namespace: String,
    /// Name of the workspace.
    pub name: String,
    /// UID of the workspace: the identity every token and tag carries.
    pub uid: String,
    /// Class the workspace is provisioned with.
    pub class: String,
}

/// AWS caps ClientRequestToken at 63 characters.
pub const MAX_TOKEN_LEN: usize = 63;

/// 64-bit FNV-1a: a small, stable (across builds and platforms) hash for token suffixes.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn token(prefix: &str, uid: &str) -> String {
    let mut t = format!("{prefix}-{uid}");
    t.retain(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    t.truncate(MAX_TOKEN_LEN);
    t
}

/// ClientRequestToken for the workspace's file system.
pub fn file_system_token(uid: &str) -> String {
    token("lws-fs", uid)
}

/// ClientRequestToken for one data repository association: the UID plus a hash of what is
/// linked where, so a changed entry is a new association.
pub fn association_token(
    uid: &str,
    file_system_id: &str,
    file_system_path: &str,
    s3_path: &str,
) -> String {
    let h = fnv1a(&[file_system_id, file_system_path, s3_path]);
    token(&format!("lws-dra-{h:016x}"), uid)
}

/// Which attempt of the export before deletion a retry annotation's value names: `0` without
/// one, else a hash of the value (a new value is a new attempt).
pub fn export_attempt(retry: Option<&str>) -> String {
    match retry {
        None => "0".into(),
        Some(value) => format!("{:016x}", fnv1a(&[value])),
    }
}

/// ClientRequestToken for one attempt of the export before deletion (a retried create after
/// a crash finds the task already started).
pub fn export_token(uid: &str, attempt: &str) -> String {
    token(&format!("lwsx-{attempt}"), uid)
}

/// Which attempt of the import on create covers these S3 paths, with the retry
/// annotation's value (a new set of links, or a new value, is a new attempt).
pub fn import_attempt(s3_paths: &[&str], retry: Option<&str>) -> String {
    let mut parts = s3_paths.to_vec();
    parts.sort_unstable();
    parts.push(retry.unwrap_or_default());
    format!("{:016x}", fnv1a(&parts))
}

/// ClientRequestToken for one attempt of the import on create.
pub fn import_token(uid: &str, attempt: &str) -> String {
    token(&format!("lwsi-{attempt}"), uid)
}

/// Name of the workspace's security group (unique per VPC, so a retried create finds it).
pub fn security_group_name(uid: &str) -> String {
    format!("lustre-workspace-{uid}")
}

/// The display name (`Name` tag) of the workspace's resources.
pub fn display_name(owner: &Owner) -> String {
    format!("lustre/{}/{}", owner.namespace, owner.name)
}

/// Tags for a resource of `owner`: the class's tags, the workspace's own, then the operator's
/// identity tags, which nobody can override.
pub fn owner_tags(owner: &Owner, class_tags: &Tags, workspace_tags: &Tags) -> Tags {
    let mut tags = class_tags.clone();
    tags.extend(workspace_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags.insert(keys::MANAGED.into(), "true".into());
    tags.insert(keys::NAMESPACE.into(), owner.namespace.clone());
    tags.insert(keys::NAME.into(), owner.name.clone());
    tags.insert(keys::UID.into(), owner.uid.clone());
    tags.insert(keys::CLASS.into(), owner.class.clone());
    tags.insert(keys::AWS_NAME.into(), display_name(owner));
    tags
}

/// The workspace UID a resource's tags name, if it is one of the operator's.
pub fn owner_uid(tags: &Tags) -> Option<&str> {
    (tags.get(keys::MANAGED).map(String::as_str) == Some("true"))
        .then(|| tags.get(keys::UID).map(String::as_str))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn owner() -> Owner {
        Owner {
            namespace: "ml".into(),
            name: "train".into(),
            uid: UID.into(),
            class: "standard".into(),
        }
    }

    fn valid_token(t: &str) -> bool {
        !t.is_empty()
            && t.len() <= MAX_TOKEN_LEN
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }

    #[test]
    fn tokens_are_stable_short_and_distinct() {
        let fs = file_system_token(UID);
        assert_eq!(fs, format!("lws-fs-{UID}"));
        let a = association_token(UID, "fs-1", "/datasets", "s3://b/p/");
        let b = association_token(UID, "fs-1", "/results", "s3://b/p/");
        assert_eq!(a, association_token(UID, "fs-1", "/datasets", "s3://b/p/"));
        assert_ne!(a, b);
        for t in [&fs, &a, &b] {
            assert!(valid_token(t), "{t} ({} chars)", t.len());
        }
        // A workspace with another UID never shares a token.
        assert_ne!(file_system_token("other"), fs);
    }

    #[test]
    fn operator_tags_cannot_be_overridden() {
        let class: Tags = [("team".to_string(), "a".to_string())].into();
        let ws: Tags = [
            ("team".to_string(), "b".to_string()),
            (keys::UID.to_string(), "forged".to_string()),
        ]
        .into();
        let tags = owner_tags(&owner(), &class, &ws);
        assert_eq!(tags["team"], "b");
        assert_eq!(tags[keys::UID], UID);
        assert_eq!(tags["Name"], "lustre/ml/train");
        assert_eq!(owner_uid(&tags), Some(UID));
        assert_eq!(owner_uid(&class), None);
    }
}
