//! What a file system has beyond its size: the metadata IOPS the workspace asks for, and the
//! root squash and logging its class decides, each changed in place with UpdateFileSystem.

use std::ops::ControlFlow::{self, Break, Continue};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lustre_api::LustreWorkspaceClass;
use lustre_cloud::{
    DeploymentType, FileSystem, FileSystemUpdate, LogSettings, MetadataConfiguration, RootSquash,
};

use super::requests;
use super::{Action, Inputs};

type Plan<T> = ControlFlow<Action, T>;

/// FSx takes one change of a file system's metadata IOPS every 6 hours.
pub const METADATA_RAISE_SPACING: SignedDuration = SignedDuration::from_hours(6);

/// The metadata IOPS the spec asks for and the file system does not have yet, and when FSx
/// will take the raise; `None` when there is nothing to raise.
pub fn metadata_raise(i: &Inputs, fs: &FileSystem) -> Option<(i32, Timestamp)> {
    let ws = i.workspace;
    if ws.spec.file_system_id.is_some() || fs.deployment_type != DeploymentType::Persistent2 {
        return None;
    }
    let want = ws.spec.metadata.as_ref().and_then(|m| m.iops)?;
    let s = &fs.settings;
    // Nothing to raise: there already, or lower (refused, never sent).
    if s.metadata? == MetadataConfiguration::UserProvisioned(want)
        || s.metadata_iops.is_some_and(|have| want < have)
    {
        return None;
    }
    let earliest = s
        .metadata_changed_at
        .and_then(|t| Timestamp::from_second(t).ok())
        .and_then(|t| t.checked_add(METADATA_RAISE_SPACING).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Some((want, earliest))
}

/// A raise FSx will not take yet (`metadata_changed_at` less than 6 hours ago): the IOPS
/// asked for and when they go in. The workspace stays usable meanwhile.
pub fn deferred_raise(i: &Inputs) -> Option<(i32, Timestamp)> {
    let fs = i.aws.file_system?;
    metadata_raise(i, fs).filter(|(_, at)| *at > i.now)
}

/// What a Ready file system's condition adds while a raise waits (empty otherwise).
pub fn deferred_note(i: &Inputs) -> String {
    match deferred_raise(i) {
        Some((iops, at)) => format!(
            "; the raise to {iops} metadata IOPS goes in at {at} (FSx takes one every 6 hours)"
        ),
        None => String::new(),
    }
}

/// How long until a deferred raise can be sent (a look then: nothing else wakes the
/// workspace at that time).
pub fn next_look(i: &Inputs) -> Option<Duration> {
    let (_, at) = deferred_raise(i)?;
    Duration::try_from(at.duration_since(i.now))
        .ok()
        .map(|d| d + Duration::from_secs(1))
}

/// Metadata IOPS as the spec asks: raised in place, never lowered, one raise every 6 hours.
pub(super) fn metadata(i: &Inputs, fs: &FileSystem) -> Plan<()> {
    let ws = i.workspace;
    let Some(want) = ws.spec.metadata.as_ref().and_then(|m| m.iops) else {
        return Continue(());
    };
    if ws.spec.file_system_id.is_some() || fs.deployment_type != DeploymentType::Persistent2 {
        return Continue(());
    }
    let refuse = |message: String| Break(Action::invalid("spec.metadata.iops", message));
    if fs.settings.metadata.is_none() {
        return refuse(format!(
            "file system {} was created without a metadata configuration and FSx cannot add one: leave metadata out, or create a new workspace for provisioned metadata IOPS",
            fs.id
        ));
    }
    let have = fs.settings.metadata_iops.unwrap_or_default();
    if want < have {
        return refuse(format!(
            "metadata.iops {want} is below the {have} the file system has, and FSx cannot lower them: ask for {have} or more"
        ));
    }
    match metadata_raise(i, fs) {
        Some((iops, at)) if at <= i.now => Break(Action::UpdateFileSystem {
            id: fs.id.clone(),
            update: FileSystemUpdate {
                metadata: Some(MetadataConfiguration::UserProvisioned(iops)),
                ..FileSystemUpdate::default()
            },
        }),
        // Not yet (shown in FileSystemReady, looked at again then), or nothing to raise.
        _ => Continue(()),
    }
}

/// The class's root squash and logging on a file system the operator made (an adopted one
/// is taken as it is).
pub(super) fn guard_rails(i: &Inputs, class: &LustreWorkspaceClass, fs: &FileSystem) -> Plan<()> {
    if i.workspace.spec.file_system_id.is_some() {
        return Continue(());
    }
    let have = &fs.settings;
    let update = FileSystemUpdate {
        root_squash: requests::root_squash(class)
            .filter(|want| !same_root_squash(have.root_squash.as_ref(), want)),
        log: requests::log(class).filter(|want| !same_log(have.log.as_ref(), want)),
        ..FileSystemUpdate::default()
    };
    if update == FileSystemUpdate::default() {
        return Continue(());
    }
    Break(Action::UpdateFileSystem {
        id: fs.id.clone(),
        update,
    })
}

/// The same squash and exceptions, in any order; no configuration is squash off.
fn same_root_squash(have: Option<&RootSquash>, want: &RootSquash) -> bool {
    let off = RootSquash {
        uid_gid: "0:0".into(),
        no_squash_nids: Vec::new(),
    };
    let have = have.unwrap_or(&off);
    let sorted = |r: &RootSquash| {
        let mut n = r.no_squash_nids.clone();
        n.sort();
        n.dedup();
        n
    };
    have.uid_gid == want.uid_gid && sorted(have) == sorted(want)
}

/// The same level, and the same log group when the class names one (FSx's default otherwise;
/// a log group ARN may end in `:*`).
fn same_log(have: Option<&LogSettings>, want: &LogSettings) -> bool {
    let group = |arn: &str| arn.trim_end_matches(":*").to_string();
    have.is_some_and(|have| {
        have.level == want.level
            && want
                .destination
                .as_deref()
                .is_none_or(|d| have.destination.as_deref().map(group) == Some(group(d)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lustre_cloud::LogLevel;

    fn squash(uid_gid: &str, nids: &[&str]) -> RootSquash {
        RootSquash {
            uid_gid: uid_gid.into(),
            no_squash_nids: nids.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn root_squash_compares_exceptions_as_a_set_and_nothing_as_off() {
        let want = squash("65534:65534", &["10.0.1.6@tcp", "10.0.1.7@tcp"]);
        let reordered = squash("65534:65534", &["10.0.1.7@tcp", "10.0.1.6@tcp"]);
        assert!(same_root_squash(Some(&reordered), &want));
        assert!(!same_root_squash(None, &want));
        assert!(same_root_squash(None, &squash("0:0", &[])));
        assert!(!same_root_squash(
            Some(&squash("1000:1000", &[])),
            &squash("65534:65534", &[])
        ));
    }

    #[test]
    fn logging_without_a_group_takes_fsx_default_group() {
        let have = LogSettings {
            level: LogLevel::WarnError,
            destination: Some(
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/lustre:*".into(),
            ),
        };
        let level_only = LogSettings {
            level: LogLevel::WarnError,
            destination: None,
        };
        assert!(same_log(Some(&have), &level_only));
        let named = LogSettings {
            destination: Some(
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/lustre".into(),
            ),
            ..level_only.clone()
        };
        assert!(same_log(Some(&have), &named));
        let other_level = LogSettings {
            level: LogLevel::ErrorOnly,
            destination: None,
        };
        assert!(!same_log(Some(&have), &other_level));
        assert!(!same_log(None, &level_only));
    }
}
