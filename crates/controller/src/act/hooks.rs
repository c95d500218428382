//! The tasks the operator runs for a workspace itself (the export before deletion, the import
//! when links are made): started once per attempt (the token and tags find one again after a
//! crash), and an overdue export canceled. A file system busy with another task is waited
//! for; a request FSx refuses is an outcome (the plan decides what it means), not an error.

use std::sync::Arc;

use lustre_api::LustreWorkspace;
use lustre_cloud::{Cloud, DataTask, DataTaskRequest, ErrorKind, TaskLifecycle};

use super::Outcome;
use crate::context::Context;
use crate::error::Cause;
use crate::observe::Observed;
use crate::plan::Hook;

/// What a step did to a hook's task.
#[derive(Debug)]
pub(crate) enum HookStep {
    /// Started.
    Started(Box<DataTask>),
    /// FSx refused to start it: its words.
    Refused(String),
    /// The overdue task's cancel was accepted (its lifecycle now).
    Canceling(TaskLifecycle),
}

/// Writes what the step did into the observation (and this process's memory of the task,
/// which spares the next reconcile a describe).
pub(super) fn fold(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &mut Observed,
    hook: Hook,
    step: HookStep,
) {
    let uid = ws.metadata.uid.clone().unwrap_or_default();
    let seen = o.hook_mut(hook);
    match step {
        HookStep::Started(task) => {
            ctx.memory.saw_task(&uid, &task);
            seen.task = Some(*task);
        }
        HookStep::Refused(words) => seen.refused = Some(words),
        HookStep::Canceling(lifecycle) => {
            if let Some(task) = &mut seen.task {
                task.lifecycle = lifecycle;
                ctx.memory.saw_task(&uid, task);
            }
            seen.overdue = false;
        }
    }
}

pub(super) async fn start(
    cloud: &Arc<dyn Cloud>,
    hook: Hook,
    request: &DataTaskRequest,
) -> Result<Outcome, Cause> {
    match cloud.create_data_repository_task(request).await {
        Ok(task) => Ok(Outcome::Hook(hook, HookStep::Started(Box::new(task)))),
        // Another task of the file system runs (a LustreDataTask): this one waits its turn.
        Err(e) if e.kind == ErrorKind::DependencyViolation => Ok(Outcome::Nothing),
        Err(e) if matches!(e.kind, ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
            Ok(Outcome::Hook(hook, HookStep::Refused(e.message)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn cancel(cloud: &Arc<dyn Cloud>, hook: Hook, id: &str) -> Result<Outcome, Cause> {
    match cloud.cancel_data_repository_task(id).await {
        Ok(lifecycle) => Ok(Outcome::Hook(hook, HookStep::Canceling(lifecycle))),
        // It ended (or went) meanwhile: the next look sees how.
        Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::NotFound) => {
            Ok(Outcome::Nothing)
        }
        Err(e) => Err(e.into()),
    }
}
