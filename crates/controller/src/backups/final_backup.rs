//! The final backup a workspace's deletion takes (`finalBackupOnDelete`) as a
//! `LustreWorkspaceBackup` the user can restore from: the object is made first (so its UID
//! can tag the backup), then the file system is deleted with the backup tagged with it.
//!
//! The object is the operator's: `finalBackup: true` (it starts no backup), kept by default
//! (`deletionPolicy: Retain`), named `<workspace>-final-<first 8 of the workspace's UID>`,
//! labelled with the workspace's UID. Where it cannot be made (the namespace is being
//! deleted, the name is taken), the backup is still taken and tagged with the namespace, so
//! `source.backupId` restores it.

use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use lustre_api::constants::{FINAL_BACKUP_FILE_SYSTEM_ANNOTATION, labels, tags as tag_keys};
use lustre_api::{
    DeletionPolicy, LustreWorkspace, LustreWorkspaceBackup, LustreWorkspaceBackupSpec,
};
use lustre_cloud::Tags;

use super::REGION_ANNOTATION;
use crate::context::Context;

/// The name of the object of a workspace's final backup.
pub fn object_name(ws: &LustreWorkspace) -> String {
    let uid = ws.uid().unwrap_or_default();
    format!("{}-final-{}", ws.name_any(), &uid[..uid.len().min(8)])
}

/// Makes (or finds) the object of the workspace's final backup of file system `fs` and
/// returns the tags the backup gets: the workspace's, what it is the final backup of, and the
/// object's UID when there is an object.
pub(crate) async fn prepare(
    ctx: &Context,
    ws: &LustreWorkspace,
    mut tags: Tags,
    fs: &str,
    region: Option<&str>,
) -> Tags {
    let namespace = ws.namespace().unwrap_or_default();
    tags.insert(
        tag_keys::FINAL_BACKUP_OF.into(),
        format!("{namespace}/{}", ws.name_any()),
    );
    match object(ctx, ws, fs, region).await {
        Ok(Some(uid)) => {
            tags.insert(tag_keys::BACKUP_UID.into(), uid);
        }
        Ok(None) => tracing::warn!(
            workspace.namespace = namespace,
            workspace.name = ws.name_any(),
            "the final backup's object name is taken; the backup is restorable by its id"
        ),
        Err(e) => tracing::warn!(
            workspace.namespace = namespace,
            workspace.name = ws.name_any(),
            error = &e as &dyn std::error::Error,
            "no object for the final backup (restorable by its id)"
        ),
    }
    tags
}

/// The UID of the final backup's object, made now or earlier for this workspace (`None`: the
/// name is another object's).
async fn object(
    ctx: &Context,
    ws: &LustreWorkspace,
    fs: &str,
    region: Option<&str>,
) -> Result<Option<String>, kube::Error> {
    let api: Api<LustreWorkspaceBackup> =
        Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let uid = ws.uid().unwrap_or_default();
    let mut annotations = std::collections::BTreeMap::from([(
        FINAL_BACKUP_FILE_SYSTEM_ANNOTATION.to_string(),
        fs.to_string(),
    )]);
    if let Some(r) = region {
        annotations.insert(REGION_ANNOTATION.to_string(), r.to_string());
    }
    let wanted = LustreWorkspaceBackup {
        metadata: ObjectMeta {
            name: Some(object_name(ws)),
            labels: Some(
                [
                    (
                        labels::MANAGED_BY_KEY.to_string(),
                        labels::MANAGED_BY_VALUE.to_string(),
                    ),
                    (labels::WORKSPACE_NAME.to_string(), ws.name_any()),
                    (labels::WORKSPACE_UID.to_string(), uid.clone()),
                ]
                .into(),
            ),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: LustreWorkspaceBackupSpec {
            workspace: ws.name_any(),
            deletion_policy: Some(DeletionPolicy::Retain),
            final_backup: Some(true),
        },
        status: None,
    };
    let made = match api.create(&PostParams::default(), &wanted).await {
        Ok(made) => made,
        Err(kube::Error::Api(e)) if e.code == 409 => api.get(&object_name(ws)).await?,
        Err(e) => return Err(e),
    };
    let mine = made.labels().get(labels::WORKSPACE_UID) == Some(&uid)
        && made.spec.final_backup == Some(true)
        && made.meta().deletion_timestamp.is_none();
    Ok(mine.then(|| made.uid()).flatten())
}
