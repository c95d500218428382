//! The AWS side of a workspace: its security group, its file system with associations, and
//! the tasks it runs itself (the import on create, the export before deletion).
//! The ids in status are hints, never proof: a group or file system is used only once it is
//! known to this process or described with this workspace's UID tag.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::ResourceExt;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::{
    Cloud, DataRepositoryAssociation, DataTask, FileSystem, Lifecycle, SecurityGroup, Tags,
    TaskLifecycle, naming,
};

use crate::context::Context;
use crate::error::{Error, Step};
use crate::plan::{self, Hook, export};
use crate::poller::Observation;

use super::ObservedHook;

/// What one reconcile's look at AWS is about.
#[derive(Clone, Copy)]
pub(super) struct Look<'a> {
    pub ctx: &'a Context,
    pub ws: &'a LustreWorkspace,
    pub class: Option<&'a LustreWorkspaceClass>,
    pub cloud: &'a Arc<dyn Cloud>,
    pub deleting: bool,
}

/// Whether an AWS resource with these tags is the workspace's (of this UID).
fn ours(tags: &Tags, uid: &str) -> bool {
    naming::owner_uid(tags) == Some(uid)
}

/// The workspace's own security group, when the class asks for one.
pub(super) async fn security_group(look: &Look<'_>) -> Result<Option<SecurityGroup>, Error> {
    let (ctx, ws, cloud) = (look.ctx, look.ws, look.cloud);
    let managed = ws.spec.file_system_id.is_none()
        && look.class.is_none_or(|c| c.spec.security_group.managed);
    if !managed {
        return Ok(None);
    }
    let uid = ws.uid().unwrap_or_default();
    let known = ctx.memory.ids(&uid);
    let hint = known
        .security_group
        .clone()
        .or_else(|| ws.status.as_ref()?.security_group_id.clone());
    let step = Step::ObserveSecurityGroup;
    let found = match (hint.as_ref(), look.class) {
        // Owned and with its rules, as this process saw it: no call in steady state.
        (Some(id), Some(class))
            if known.security_group.as_ref() == Some(id)
                && known.rules_confirmed
                && !look.deleting =>
        {
            Some(remembered_group(ws, id, &uid, class))
        }
        (Some(id), _) => cloud
            .describe_security_groups(std::slice::from_ref(id))
            .await
            .map_err(step.cloud())?
            .into_iter()
            .find(|g| ours(&g.tags, &uid)),
        (None, _) => None,
    };
    // A group this process knows and no longer finds is gone: nothing to look for. Not
    // recorded, recorded but lost (the status write after the create), or recorded as a group
    // that is not this workspace's: find its own by tag.
    let verified = hint.is_some() && hint == known.security_group;
    if found.is_some() || verified {
        return Ok(found);
    }
    Ok(cloud
        .find_security_groups_by_owner(&uid)
        .await
        .map_err(step.cloud())?
        .into_iter()
        .next())
}

/// The group as this process last confirmed it: its id, name and every rule the class asks
/// for (the fields the plan and status read).
fn remembered_group(
    ws: &LustreWorkspace,
    id: &str,
    uid: &str,
    class: &LustreWorkspaceClass,
) -> SecurityGroup {
    SecurityGroup {
        id: id.to_string(),
        name: naming::security_group_name(uid),
        vpc_id: String::new(),
        tags: Default::default(),
        ingress: plan::wanted_ingress(ws, class, id),
    }
}

/// The file system: the adopted one (the plan decides whether it may be adopted), or the
/// recorded one if it carries this workspace's UID tag. One that was created but not recorded
/// is found again by its client token when the create is retried. A class that adopts
/// nothing costs no look at the file system a workspace names (while deleting, the look still
/// happens: an earlier policy may have let it link and mark it).
pub(super) async fn file_system(look: &Look<'_>) -> Result<Option<Observation>, Error> {
    let (ctx, ws, cloud) = (look.ctx, look.ws, look.cloud);
    let uid = ws.uid().unwrap_or_default();
    let known = ctx.memory.ids(&uid).file_system;
    let adopted = ws
        .spec
        .file_system_id
        .clone()
        .filter(|_| look.deleting || look.class.is_some_and(|c| c.spec.adoption.is_some()));
    // An adopting workspace's file system is the one its spec names, whatever status says.
    let recorded = match ws.spec.file_system_id {
        Some(_) => None,
        None => known
            .clone()
            .or_else(|| ws.status.as_ref()?.file_system_id.clone()),
    };
    let is_adopted = adopted.is_some();
    if let Some(id) = adopted.or(recorded.clone())
        && let Some(seen) = described(ctx, cloud, &id, &uid, is_adopted).await?
    {
        return Ok(Some(seen));
    }
    if recorded.is_none() || recorded == known {
        return Ok(None);
    }
    // Recorded in status but gone, or not this workspace's (status changed outside the
    // operator): its own, if it has one, carries its UID tag. (One this process knew and no
    // longer finds is gone.)
    let found = cloud
        .find_file_systems_by_owner(&uid)
        .await
        .map_err(Step::ObserveFileSystem.cloud())?;
    let Some(fs) = found.into_iter().next() else {
        // Looked once: it stays unused (every describe checks the tag), and later reconciles
        // need not look again.
        ctx.memory.remember(&uid, |k| k.file_system = recorded);
        return Ok(None);
    };
    with_associations(cloud, fs).await.map(Some)
}

/// The file system with its associations, described.
async fn with_associations(cloud: &Arc<dyn Cloud>, fs: FileSystem) -> Result<Observation, Error> {
    let associations = cloud
        .describe_data_repository_associations(std::slice::from_ref(&fs.id))
        .await
        .map_err(Step::ObserveFileSystem.cloud())?;
    Ok(Observation {
        file_system: Some(fs),
        associations,
    })
}

/// The file system of this id with its associations: from the poller's cache, else
/// described (and cached). Only an adopted one or one carrying the workspace's UID tag counts
/// (the poller may hold another workspace's file system under this id).
async fn described(
    ctx: &Context,
    cloud: &Arc<dyn Cloud>,
    id: &str,
    uid: &str,
    adopted: bool,
) -> Result<Option<Observation>, Error> {
    let counts = |fs: &lustre_cloud::FileSystem| adopted || ours(&fs.tags, uid);
    if let Some(seen) = ctx.poller.cached(id) {
        let keep = adopted || seen.file_system.as_ref().is_some_and(counts);
        return Ok(keep.then_some(seen));
    }
    let described = cloud
        .describe_file_systems(&[id.to_string()])
        .await
        .map_err(Step::ObserveFileSystem.cloud())?;
    let Some(fs) = described.into_iter().next().filter(counts) else {
        return Ok(None);
    };
    let seen = with_associations(cloud, fs).await?;
    ctx.poller.store(id, seen.clone());
    Ok(Some(seen))
}

/// While the workspace is deleted: the export before deletion of the current attempt and
/// the other tasks still running on the file system (a `LustreDataTask`'s), looked for only
/// while links are still there on a file system that can run tasks (FSx runs none without a
/// link), at most once per pending interval.
pub(super) async fn deletion_tasks(
    look: &Look<'_>,
    fs: Option<&FileSystem>,
    dras: &[DataRepositoryAssociation],
) -> Result<(ObservedHook, Vec<String>), Error> {
    let ws = look.ws;
    let Some(fs) = fs.filter(|f| {
        matches!(
            f.lifecycle,
            Lifecycle::Available | Lifecycle::Updating | Lifecycle::Misconfigured
        )
    }) else {
        return Ok(Default::default());
    };
    let linked = dras
        .iter()
        .any(|a| a.file_system_id == fs.id && a.lifecycle != Lifecycle::Deleting);
    if !linked {
        return Ok(Default::default());
    }
    let tasks = fs_tasks(look, &fs.id).await?;
    let attempt = export::attempt(ws);
    let task = tasks
        .iter()
        .filter(|t| Hook::ExportOnDelete.owns(t, ws, &attempt))
        .max_by_key(|t| t.created_at)
        .cloned();
    let running = tasks
        .iter()
        .filter(|t| task.as_ref().is_none_or(|e| e.id != t.id))
        .filter(|t| {
            matches!(
                t.lifecycle,
                TaskLifecycle::Pending | TaskLifecycle::Executing | TaskLifecycle::Canceling
            )
        })
        .map(|t| t.id.clone())
        .collect();
    let limit = Duration::from_secs(60 * u64::from(export::timeout_minutes(ws).unsigned_abs()));
    let overdue = task.as_ref().is_some_and(|t| {
        !t.lifecycle.is_finished()
            && t.started_at
                .or(t.created_at)
                .and_then(|since| SystemTime::now().duration_since(since).ok())
                .is_some_and(|ran| ran > limit)
    });
    let export = ObservedHook {
        task,
        overdue,
        refused: None,
    };
    Ok((export, running))
}

/// The import on create of the links still to import, looked for only while there are some
/// (linked, marked, not recorded as imported): no look in steady state.
pub(super) async fn import(
    look: &Look<'_>,
    fs: Option<&FileSystem>,
    dras: &[DataRepositoryAssociation],
) -> Result<ObservedHook, Error> {
    let ws = look.ws;
    let Some(fs) = fs.filter(|f| f.lifecycle == Lifecycle::Available) else {
        return Ok(ObservedHook::default());
    };
    let aws = plan::AwsView {
        file_system: Some(fs),
        associations: dras,
        ..Default::default()
    };
    let links = plan::import::pending(ws, &aws);
    if links.is_empty() {
        return Ok(ObservedHook::default());
    }
    let attempt = plan::import::attempt(ws, &links);
    let task = fs_tasks(look, &fs.id)
        .await?
        .into_iter()
        .filter(|t| Hook::ImportOnCreate.owns(t, ws, &attempt))
        .max_by_key(|t| t.created_at);
    Ok(ObservedHook {
        task,
        ..Default::default()
    })
}

/// The file system's data repository tasks: this process's memory of them when younger than
/// the pending interval (the status writes they cause wake the workspace), else one
/// DescribeDataRepositoryTasks of the file system.
async fn fs_tasks(look: &Look<'_>, fs: &str) -> Result<Vec<DataTask>, Error> {
    let uid = look.ws.uid().unwrap_or_default();
    let fresh = look.ctx.config.intervals.pending;
    if let Some(tasks) = look.ctx.memory.tasks_seen(&uid, fs, fresh) {
        return Ok(tasks);
    }
    let tasks: Vec<DataTask> = look
        .cloud
        .data_repository_tasks_of(&[fs.to_string()])
        .await
        .map_err(Step::ObserveFileSystem.cloud())?
        .into_iter()
        .filter(|t| t.file_system_id == fs)
        .collect();
    look.ctx.memory.saw_tasks(&uid, tasks.clone());
    Ok(tasks)
}
