//! The file system: create, update, delete (with a final backup when asked), and the tags
//! that mark it as kept (`Retain`) or as adopted by one workspace.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::events::EventType;
use lustre_api::LustreWorkspace;
use lustre_api::constants::tags as tag_keys;
use lustre_cloud::{Cloud, ErrorKind, FileSystemDeletion, FileSystemRequest, FileSystemUpdate};

use super::Outcome;
use crate::context::Context;
use crate::error::Cause;
use crate::observe::Observed;
use crate::plan::event_reason;

pub(super) async fn create(
    cloud: &Arc<dyn Cloud>,
    request: &FileSystemRequest,
) -> Result<Outcome, Cause> {
    Ok(Outcome::FileSystemChanged(
        cloud.create_file_system(request).await?,
    ))
}

pub(super) async fn update(
    cloud: &Arc<dyn Cloud>,
    id: &str,
    update: &FileSystemUpdate,
) -> Result<Outcome, Cause> {
    Ok(Outcome::FileSystemChanged(
        cloud.update_file_system(id, update).await?,
    ))
}

/// Deletes the file system; a final backup is tagged as the workspace's resources are, and
/// gets its `LustreWorkspaceBackup` first.
pub(super) async fn delete(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    cloud: &Arc<dyn Cloud>,
    id: &str,
    final_backup: bool,
) -> Result<Outcome, Cause> {
    let final_backup_tags = match (final_backup, o.class()) {
        (false, _) => None,
        (true, class) => {
            // The class may be gone by now: the workspace's own tags and identity still go on.
            let tags = match class {
                Some(c) => crate::plan::resource_tags(ws, c),
                None => {
                    let recorded = ws.status.as_ref().and_then(|s| s.class_name.as_deref());
                    let owner = crate::plan::owner(ws, recorded.unwrap_or_default());
                    lustre_cloud::naming::owner_tags(&owner, &Default::default(), &ws.spec.tags)
                }
            };
            let region = class.and_then(|c| c.spec.region.as_deref());
            Some(crate::backups::final_backup::prepare(ctx, ws, tags, id, region).await)
        }
    };
    let deletion = FileSystemDeletion { final_backup_tags };
    match cloud.delete_file_system(id, &deletion).await {
        Err(e) if e.kind != ErrorKind::NotFound => Err(e.into()),
        Ok(()) | Err(_) => Ok(Outcome::FileSystemDeleting),
    }
}

/// Tags the kept file system as retained, and says in a Normal Event what was kept.
pub(super) async fn tag_retained(
    ctx: &Context,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    arn: &str,
    o: &Observed,
) -> Result<Outcome, Cause> {
    let tags = [(tag_keys::RETAINED.to_string(), "true".to_string())].into();
    cloud.tag_resource(arn, &tags).await?;
    let kept = format!(
        "kept file system {} and security group {} (deletionPolicy: Retain)",
        o.fs.as_ref().map(|f| f.id.as_str()).unwrap_or("-"),
        o.sg.as_ref().map(|g| g.id.as_str()).unwrap_or("-")
    );
    ctx.publish(ws, EventType::Normal, event_reason::RETAINED, kept)
        .await;
    Ok(Outcome::Tagged(tags))
}

/// Marks the file system as adopted by this workspace and reads the mark back: of two
/// workspaces marking at once, the one whose mark stayed adopts, the other is refused on
/// this look.
pub(super) async fn tag_adopted(
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    arn: &str,
    o: &Observed,
) -> Result<Outcome, Cause> {
    let mark = [(
        tag_keys::ADOPTED_BY.to_string(),
        ws.uid().unwrap_or_default(),
    )]
    .into();
    cloud.tag_resource(arn, &mark).await?;
    let id = o.fs.as_ref().map(|f| f.id.clone()).unwrap_or_default();
    let fs = cloud
        .describe_file_systems(std::slice::from_ref(&id))
        .await?
        .into_iter()
        .next();
    Ok(Outcome::Adopted(fs))
}

/// Takes this workspace's adopter mark off the file system it adopted.
pub(super) async fn untag_adopted(cloud: &Arc<dyn Cloud>, arn: &str) -> Result<Outcome, Cause> {
    cloud
        .untag_resource(arn, &[tag_keys::ADOPTED_BY.to_string()])
        .await?;
    Ok(Outcome::Released)
}
