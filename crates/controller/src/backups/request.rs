//! What FSx is asked for a backup: its token and tags; or why it cannot be asked at all (with
//! no AWS call): FSx backs up persistent file systems that are not linked to S3 only.

use std::sync::Arc;

use kube::ResourceExt;
use lustre_api::constants::tags as tag_keys;
use lustre_api::validation::effective_deployment_type;
use lustre_api::{DeploymentType, LustreWorkspace, LustreWorkspaceBackup, LustreWorkspaceClass};
use lustre_cloud::naming;
use lustre_cloud::{BackupRequest, Cloud};

use crate::error::{Error, Step};

/// ClientRequestToken of a backup: its object's UID, so a retry after a crash finds the
/// backup already started.
fn token(uid: &str) -> String {
    let mut t = format!("lwb-{uid}");
    t.truncate(naming::MAX_TOKEN_LEN);
    t
}

/// Why FSx would refuse to back up the workspace's file system, if it would.
pub(crate) fn backupable(ws: &LustreWorkspace, class: &LustreWorkspaceClass) -> Result<(), String> {
    // An adopted file system's type is FSx's to tell.
    let deployment = effective_deployment_type(&ws.spec, &class.spec);
    if ws.spec.file_system_id.is_none() && deployment != DeploymentType::Persistent2 {
        let kind = deployment.as_str();
        return Err(format!(
            "workspace {} is {kind}: FSx backs up PERSISTENT_2 file systems only (scratch file systems have no backups)",
            ws.name_any()
        ));
    }
    if !ws.spec.data_repositories.is_empty() {
        return Err(format!(
            "workspace {} is linked to S3 (dataRepositories): FSx backs up file systems that are not linked to a data repository only; export its data to S3 with a LustreDataTask instead",
            ws.name_any()
        ));
    }
    Ok(())
}

/// Whether FSx shows `fs` as the workspace's (made for it, or adopted by it): status names
/// it, and status alone proves nothing.
pub(crate) async fn file_system_is_workspaces(
    cloud: &Arc<dyn Cloud>,
    fs: &str,
    ws: &LustreWorkspace,
) -> Result<bool, Error> {
    let uid = ws.uid().unwrap_or_default();
    let found = cloud
        .describe_file_systems(&[fs.to_string()])
        .await
        .map_err(Step::Act("describing the file system to back up").cloud())?;
    Ok(found.iter().any(|f| {
        f.id == fs
            && (naming::owner_uid(&f.tags) == Some(uid.as_str())
                || f.tags.get(tag_keys::ADOPTED_BY) == Some(&uid))
    }))
}

/// The request for a backup of the workspace's file system `fs`: tagged as the workspace's
/// resources are, and with the backup object's UID (its proof of ownership).
pub(crate) fn request(
    b: &LustreWorkspaceBackup,
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: &str,
) -> BackupRequest {
    let mut tags = crate::plan::resource_tags(ws, class);
    tags.insert(tag_keys::BACKUP_UID.into(), b.uid().unwrap_or_default());
    BackupRequest {
        client_token: token(&b.uid().unwrap_or_default()),
        file_system_id: fs.to_string(),
        tags,
    }
}
