//! The backup a workspace restores (`spec.source`), looked up before its file system is made
//! (and never after): a `LustreWorkspaceBackup` by name, in a namespace the class lets it
//! restore from, whose FSx backup is tagged with that object's UID; or an FSx backup by id
//! that this install took for such a namespace. Status and ids prove nothing on their own.

use std::sync::Arc;

use ::kube::ResourceExt;
use ::kube::api::Api;
use lustre_api::constants::tags;
use lustre_api::{LustreWorkspace, LustreWorkspaceBackup, LustreWorkspaceClass, RestorePolicy};
use lustre_cloud::{Backup, Cloud};

use crate::context::Context;
use crate::error::{Error, Step};
use crate::plan::restore::SourceBackup::{self, Found, Refused, Waiting};

/// What the workspace's source names, as far as it can be proven.
pub(super) async fn look(
    ctx: &Context,
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    cloud: &Arc<dyn Cloud>,
) -> Result<Option<SourceBackup>, Error> {
    let Some(source) = &ws.spec.source else {
        return Ok(None);
    };
    let own = ws.namespace().unwrap_or_default();
    let policy = class.spec.restore.as_ref();
    let refused_from = |from: &str| {
        Refused(format!(
            "class {} does not let its workspaces restore backups of namespace {from} (restore.fromNamespaces)",
            class.name_any()
        ))
    };
    if let Some(name) = &source.backup_name {
        let from = source.backup_namespace.clone().unwrap_or(own.clone());
        if !RestorePolicy::allows(policy, &own, &from) {
            return Ok(Some(refused_from(&from)));
        }
        return by_name(ctx, cloud, &from, name).await.map(Some);
    }
    let Some(id) = &source.backup_id else {
        return Ok(None);
    };
    let Some(backup) = describe(cloud, id).await? else {
        return Ok(Some(Refused(format!(
            "backup {id} does not exist in the class's region"
        ))));
    };
    let taken_for = backup.tags.get(tags::NAMESPACE).cloned();
    let ours = backup.tags.get(tags::MANAGED).map(String::as_str) == Some("true")
        && ctx
            .config
            .cluster_id
            .as_ref()
            .is_none_or(|c| backup.tags.get(tags::CLUSTER) == Some(c));
    Ok(Some(match taken_for {
        Some(from) if ours && RestorePolicy::allows(policy, &own, &from) => Found(backup),
        Some(from) if ours => refused_from(&from),
        _ => Refused(format!(
            "backup {id} was not taken by this operator for a namespace: restore it into a workspace by hand, or ask the platform team"
        )),
    }))
}

/// A `LustreWorkspaceBackup` in `from` and its FSx backup, tagged with the object's UID.
async fn by_name(
    ctx: &Context,
    cloud: &Arc<dyn Cloud>,
    from: &str,
    name: &str,
) -> Result<SourceBackup, Error> {
    let api: Api<LustreWorkspaceBackup> = Api::namespaced(ctx.client.clone(), from);
    let object = api
        .get_opt(name)
        .await
        .map_err(Step::ObserveKubernetes.kube())?;
    let Some(object) = object else {
        return Ok(Waiting(format!(
            "waiting for LustreWorkspaceBackup {from}/{name}"
        )));
    };
    let Some(id) = object.status.as_ref().and_then(|s| s.backup_id.clone()) else {
        return Ok(Waiting(format!(
            "waiting for LustreWorkspaceBackup {from}/{name} to start its backup"
        )));
    };
    let proven = describe(cloud, &id).await?.filter(|b| {
        b.tags.get(tags::BACKUP_UID) == object.uid().as_ref()
            && b.tags.get(tags::NAMESPACE).map(String::as_str) == Some(from)
    });
    Ok(match proven {
        Some(b) => Found(b),
        None => Refused(format!(
            "LustreWorkspaceBackup {from}/{name} names backup {id}, which is gone or not that object's"
        )),
    })
}

async fn describe(cloud: &Arc<dyn Cloud>, id: &str) -> Result<Option<Backup>, Error> {
    let found = cloud
        .describe_backups(&[id.to_string()])
        .await
        .map_err(Step::ObserveFileSystem.cloud())?;
    Ok(found.into_iter().find(|b| b.id == id))
}
