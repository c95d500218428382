//! The export before deletion: started once per attempt (its token and tags find it again
//! after a crash), and canceled when it runs longer than its timeout. A file system busy with
//! another task is waited for; a request FSx refuses is an outcome (the policy decides what
//! it does to the deletion), not an error.

use std::sync::Arc;

use lustre_api::LustreWorkspace;
use lustre_cloud::{Cloud, DataTask, DataTaskRequest, ErrorKind, TaskLifecycle};

use super::Outcome;
use crate::context::Context;
use crate::error::Cause;
use crate::observe::Observed;

/// What a step did to the export.
#[derive(Debug)]
pub(crate) enum Exported {
    /// Started.
    Started(Box<DataTask>),
    /// FSx refused to start it: its words.
    Refused(String),
    /// The overdue export's cancel was accepted (its lifecycle now).
    Canceling(TaskLifecycle),
}

/// Writes what the step did into the observation (and this process's memory of the task,
/// which spares the next reconcile a describe).
pub(super) fn fold(ctx: &Context, ws: &LustreWorkspace, o: &mut Observed, e: Exported) {
    let uid = ws.metadata.uid.clone().unwrap_or_default();
    match e {
        Exported::Started(task) => {
            ctx.memory.saw_export(&uid, &task);
            o.export.task = Some(*task);
        }
        Exported::Refused(words) => o.export.refused = Some(words),
        Exported::Canceling(lifecycle) => {
            if let Some(task) = &mut o.export.task {
                task.lifecycle = lifecycle;
                ctx.memory.saw_export(&uid, task);
            }
            o.export.overdue = false;
        }
    }
}

pub(super) async fn start(
    cloud: &Arc<dyn Cloud>,
    request: &DataTaskRequest,
) -> Result<Outcome, Cause> {
    match cloud.create_data_repository_task(request).await {
        Ok(task) => Ok(Outcome::Export(Exported::Started(Box::new(task)))),
        // Another task of the file system runs (a LustreDataTask started before the delete):
        // the export waits its turn.
        Err(e) if e.kind == ErrorKind::DependencyViolation => Ok(Outcome::Nothing),
        Err(e) if matches!(e.kind, ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
            Ok(Outcome::Export(Exported::Refused(e.message)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn cancel(cloud: &Arc<dyn Cloud>, id: &str) -> Result<Outcome, Cause> {
    match cloud.cancel_data_repository_task(id).await {
        Ok(lifecycle) => Ok(Outcome::Export(Exported::Canceling(lifecycle))),
        // It ended (or went) meanwhile: the next look sees how.
        Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::NotFound) => {
            Ok(Outcome::Nothing)
        }
        Err(e) => Err(e.into()),
    }
}
