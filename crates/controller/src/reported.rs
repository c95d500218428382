//! What status reports beside the conditions: each data repository, the last export before
//! deletion, and the monthly cost estimate.

use lustre_api::cost::CostStatus;
use lustre_api::{
    DataRepositoryStatus, DeploymentType, ExportStatus, LustreWorkspace, LustreWorkspaceClass,
};
use lustre_cloud::FileSystem;

use crate::plan::{Inputs, import};

/// The estimate: the spec's capacity and tier at the class's prices (an adopted file system's
/// as observed).
pub(crate) fn cost(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    fs: Option<&FileSystem>,
) -> CostStatus {
    let seen = fs.and_then(|f| {
        let t = match f.deployment_type {
            lustre_cloud::DeploymentType::Scratch2 => DeploymentType::Scratch2,
            lustre_cloud::DeploymentType::Persistent2 => DeploymentType::Persistent2,
            lustre_cloud::DeploymentType::Other => return None,
        };
        Some((
            i64::from(f.storage_capacity_gib),
            t,
            f.per_unit_storage_throughput,
        ))
    });
    lustre_api::cost::status(&ws.spec, class, seen)
}

/// The export before deletion as status shows it.
pub(crate) fn export_status(t: &lustre_cloud::DataTask) -> ExportStatus {
    let time = |at: Option<std::time::SystemTime>| at.and_then(crate::beside::time);
    let counted = t.total > 0 || t.lifecycle.is_finished();
    ExportStatus {
        task_id: t.id.clone(),
        lifecycle: t.lifecycle.as_str().to_string(),
        paths: t.paths.iter().map(|p| format!("/{p}")).collect(),
        total_files: counted.then_some(t.total),
        succeeded_files: counted.then_some(t.succeeded),
        failed_files: counted.then_some(t.failed),
        report_path: t.report_path.clone(),
        start_time: time(t.started_at.or(t.created_at)),
        completion_time: time(t.ended_at),
        message: t.failure_message.as_deref().map(lustre_cloud::redact),
    }
}

/// Each data repository the spec asks for, with its association as observed.
pub(crate) fn repository_statuses(i: &Inputs) -> Vec<DataRepositoryStatus> {
    let ws = i.workspace;
    ws.spec
        .data_repositories
        .iter()
        .map(|r| {
            let a = i.aws.association_for(r);
            DataRepositoryStatus {
                name: r.name.clone(),
                association_id: a.map(|a| a.id.clone()),
                lifecycle: a.map(|a| a.lifecycle.as_str().to_string()),
                message: a.and_then(|a| a.failure_message.as_deref().map(lustre_cloud::redact)),
                imported: (import::imported(ws, &r.name) || import::imported_now(i, r))
                    .then_some(true),
            }
        })
        .collect()
}
