//! One reconcile: observe (Kubernetes, the poller's cache, AWS only where needed), decide
//! with [`crate::plan`], act, and again while the step's result is known locally (VPC →
//! group → rules → file system); then write status with server-side apply when it changed and
//! publish Events. Everything that waits on AWS is woken by the poller.

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use lustre_api::constants::FINALIZER;
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus, Phase};
use lustre_cloud::Cloud;

use crate::act::{act, kill_point};
use crate::context::Context;
use crate::error::Error;
use crate::observe::{Observed, observe, remember, resolve_class};
use crate::plan::{self, Action, Kind, Poll, Recheck, event_reason};
use crate::write::{set_finalizer, unshown, write_status};

/// The top-level reconcile: the finalizer, then apply or cleanup, with its duration and
/// outcome in the metrics. The finalizer is removed only when cleanup reports nothing left
/// (kube-runtime's helper removes it on any successful cleanup pass, which would drop the
/// wait for pods).
pub async fn reconcile(ws: Arc<LustreWorkspace>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let ns = ws.namespace().unwrap_or_default();
    if !ctx.config.namespaces.is_empty() && !ctx.config.namespaces.contains(&ns) {
        // Another operator's (or nobody's) namespace: leave it alone entirely.
        return Ok(Requeue::await_change());
    }
    // Every read below is from the watch caches: none is read before its first full list.
    if !ctx.caches.ready().await {
        // Their watches have stopped: the controller is shutting down.
        return Ok(Requeue::await_change());
    }
    let started = Instant::now();
    if let Some(waited) = ctx.poller.wake_taken(&ws.uid().unwrap_or_default()) {
        ctx.metrics.wake_wait.observe(waited.as_secs_f64());
    }
    let ws = ctx.memory.freshen(ws);
    let result = if ws.metadata.deletion_timestamp.is_some() {
        delete(&ws, &ctx).await
    } else {
        // The finalizer goes on just before the first step that creates something (see
        // run_steps): a workspace refused before that (invalid spec, missing class) deletes
        // at once, with no AWS call.
        apply(&ws, &ctx).await
    };
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    if result.is_ok() {
        ctx.memory.succeeded(&ws.uid().unwrap_or_default());
    }
    result
}

async fn apply(ws: &LustreWorkspace, ctx: &Context) -> Result<Requeue, Error> {
    let (action, o, cloud) = run_steps(ctx, ws, false).await?;
    follow(ctx, ws, &o, &cloud, &action);
    // An expired workspace without a finalizer is gone already: nothing to write to.
    if matches!(action, Action::Expire(_)) && !ws.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    if let Some(left) = unshown(ctx, ws, &action) {
        return Ok(requeue(ctx, ws, &action, Some(left)));
    }
    let before = ws.status.as_ref();
    let after = write_status(ctx, ws, &o, &action, None, false).await?;
    announce(ctx, ws, before, &after).await;
    if matches!(action, Action::Ready) && before.is_none_or(|s| s.phase != Some(Phase::Ready)) {
        let note = format!(
            "claim {} is bound: mount it in your pods",
            plan::claim_name(ws)
        );
        ctx.publish(ws, EventType::Normal, event_reason::READY, note)
            .await;
    }
    // A step that needs a person is a Warning named by the Ready condition's reason (so
    // `kubectl get events --field-selector reason=NamespaceNotAllowed` finds them), once per
    // change of the Ready condition, not once per look.
    if let Some(stopped) = action.stopped() {
        let ready = |s: Option<&LustreWorkspaceStatus>| {
            s.and_then(|s| s.conditions.first())
                .map(|c| (c.reason.clone(), c.message.clone()))
        };
        if ready(before) != ready(Some(&after)) {
            ctx.publish(ws, EventType::Warning, stopped.reason, action.describe())
                .await;
        }
    }
    // The expiry's warning and deadline come with no watch: looked at again then.
    // Nor do they for a metadata raise FSx takes only 6 hours after the last.
    let inputs = o.inputs(ws);
    let later = plan::expiry::next_look(&inputs)
        .into_iter()
        .chain(plan::settings::next_look(&inputs))
        .min();
    Ok(requeue(ctx, ws, &action, later))
}

/// Cleanup, then the finalizer's removal once nothing is left.
async fn delete(ws: &LustreWorkspace, ctx: &Context) -> Result<Requeue, Error> {
    if !ws.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    // Cleanup this process saw finish needs no second look at AWS: only the finalizer is left
    // (its patch may have been refused, e.g. by a conflict).
    let uid = ws.uid().unwrap_or_default();
    if !ctx.memory.cleaned(&uid) {
        let (done, requeue) = cleanup(ws, ctx).await?;
        if !done {
            return Ok(requeue);
        }
        ctx.memory.set_cleaned(&uid, true);
    }
    set_finalizer(ctx, ws, false).await?;
    ctx.memory.forget(&uid);
    Ok(Requeue::await_change())
}

/// Returns whether nothing is left (the finalizer may go) and when to look again.
async fn cleanup(ws: &LustreWorkspace, ctx: &Context) -> Result<(bool, Requeue), Error> {
    // A workspace being deleted takes no room in its namespace's budget any more: the ones
    // waiting for room look again.
    wake_over_budget(ctx, ws);
    let (action, o, cloud) = run_steps(ctx, ws, true).await?;
    if matches!(action, Action::Finished) {
        if let Some(id) = ws
            .spec
            .file_system_id
            .clone()
            .or(ws.status.as_ref().and_then(|s| s.file_system_id.clone()))
        {
            ctx.poller.forget(&id, &ObjectRef::from_obj(ws));
        }
        ctx.metrics.set_phase(&ws.uid().unwrap_or_default(), None);
        ctx.metrics.usage.set(&ws.uid().unwrap_or_default(), None);
        let note = "cleanup finished".to_string();
        ctx.publish(ws, EventType::Normal, event_reason::DELETED, note)
            .await;
        return Ok((true, Requeue::await_change()));
    }
    follow(ctx, ws, &o, &cloud, &action);
    if let Some(left) = unshown(ctx, ws, &action) {
        return Ok((false, requeue(ctx, ws, &action, Some(left))));
    }
    let after = write_status(ctx, ws, &o, &action, None, true).await?;
    announce(ctx, ws, ws.status.as_ref(), &after).await;
    Ok((false, requeue(ctx, ws, &action, None)))
}

/// Wakes the workspaces of `ws`'s namespace that wait for room in a budget.
fn wake_over_budget(ctx: &Context, ws: &LustreWorkspace) {
    let Some(store) = ctx.workspaces.get() else {
        return;
    };
    let ns = ws.namespace();
    for peer in store.kept() {
        if peer.facts.over_budget && peer.namespace() == ns && peer.uid() != ws.uid() {
            ctx.poller
                .wake(ObjectRef::new(&peer.name_any()).within(&ns.clone().unwrap_or_default()));
        }
    }
}

/// News in the conditions, once, as a condition changes: the export before deletion's end (a
/// Normal Event when it exported everything, a Warning when it failed: with Block the deletion
/// waits, with Continue it goes on without it), and the warning before an expiry.
async fn announce(
    ctx: &Context,
    ws: &LustreWorkspace,
    before: Option<&LustreWorkspaceStatus>,
    after: &LustreWorkspaceStatus,
) {
    use lustre_api::constants::{condition, reason};
    for kind in [condition::DATA_EXPORTED, condition::EXPIRING] {
        let shown = |s: Option<&LustreWorkspaceStatus>| {
            s?.conditions
                .iter()
                .find(|c| c.type_ == kind)
                .map(|c| (c.reason.clone(), c.message.clone()))
        };
        let Some((why, message)) = shown(Some(after)).filter(|n| shown(before).as_ref() != Some(n))
        else {
            continue;
        };
        let (type_, reason) = match why.as_str() {
            reason::EXPORTED => (EventType::Normal, reason::EXPORTED),
            reason::EXPORT_FAILED => (EventType::Warning, reason::EXPORT_FAILED),
            // Once per warning: its message counts down only when the deadline moves.
            reason::EXPIRES_SOON
                if shown(before).is_none_or(|(r, _)| r != reason::EXPIRES_SOON) =>
            {
                (EventType::Warning, reason::EXPIRES_SOON)
            }
            _ => continue,
        };
        ctx.publish(ws, type_, reason, message).await;
    }
}

/// Has the poller follow the file system as the step calls for.
fn follow(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    cloud: &Arc<dyn Cloud>,
    action: &Action,
) {
    let Some(fs) = &o.fs else { return };
    match action.after().poll {
        Poll::EveryInterval => ctx.poller.watch(&fs.id, o.follower(ws, cloud)),
        Poll::DriftOnly => ctx.poller.settle(&fs.id, o.follower(ws, cloud)),
        Poll::AsBefore => {}
    }
}

/// Observes once, then plans and acts until a step waits or the plan does not move.
async fn run_steps(
    ctx: &Context,
    ws: &LustreWorkspace,
    deleting: bool,
) -> Result<(Action, Observed, Arc<dyn Cloud>), Error> {
    let class = resolve_class(ctx, ws);
    let cloud = ctx.cloud_for(class.get()).await;
    let mut o = observe(ctx, ws, class, &cloud, deleting).await?;
    let mut last = Action::Finished;
    let mut finalized = ws.finalizers().iter().any(|f| f == FINALIZER);
    for _ in 0..12 {
        let inputs = o.inputs(ws);
        let action = if deleting {
            plan::next_cleanup_action(&inputs)
        } else {
            plan::next_action(&inputs)
        };
        // A step that did not move anything (e.g. a volume still held) waits for a watch.
        if action == last {
            break;
        }
        tracing::debug!(
            workspace.namespace = ws.namespace().unwrap_or_default(),
            workspace.name = ws.name_any(),
            step = action.step(),
            "{}",
            action.describe()
        );
        if !deleting && !finalized && action.changes() {
            set_finalizer(ctx, ws, true).await?;
            finalized = true;
        }
        let acted = act(ctx, ws, &cloud, &mut o, &action).await;
        remember(ctx, ws, &o);
        if let Err(e) = acted {
            if let Some(ce) = e.cloud() {
                write_status(ctx, ws, &o, &action, Some(ce), deleting).await?;
                let note = format!("{}: {}", action.describe(), ce.for_tenants());
                ctx.publish(ws, EventType::Warning, action.event_reason(), note)
                    .await;
            }
            return Err(e);
        }
        kill_point(action.step());
        // A step that changed AWS moved the workspace on: a failure after it starts the
        // back-off over, as if each step were its own reconcile. Failures on several steps
        // in a row (throttling draws them) are not a workspace stuck, and once added up to
        // minutes of back-off; a step done is not done again, so this cannot loop.
        if matches!(action.kind(), Kind::Aws { .. }) {
            ctx.memory.succeeded(&ws.uid().unwrap_or_default());
        }
        if let Action::CreateFileSystem(r) = &action
            && r.backup_id.is_some()
        {
            kill_point("CreateFileSystemFromBackup");
        }
        if action.announced() {
            ctx.publish(
                ws,
                EventType::Normal,
                action.event_reason(),
                action.describe(),
            )
            .await;
        }
        let more = action.continues();
        last = action;
        if !more {
            break;
        }
    }
    Ok((last, o, cloud))
}

/// How many re-check intervals a long wait on Kubernetes grows to at most.
const RECHECK_GROWTH: u32 = 8;

/// What to do after a reconcile that ended on `action`: look again when its step asks, or at
/// `also` (an expiry's warning or deadline), whichever comes first.
///
/// A wait on Kubernetes that has lasted longer than its re-check interval (a binder that
/// lags minutes behind on a loaded cluster) is looked at again after as long as it has
/// lasted, up to [`RECHECK_GROWTH`] intervals: the claims' and volumes' watches wake the
/// workspace when the wait ends; the re-check is only the net under them.
fn requeue(
    ctx: &Context,
    ws: &LustreWorkspace,
    action: &Action,
    also: Option<std::time::Duration>,
) -> Requeue {
    let recheck = match action.after().recheck {
        Some(Recheck::Claim(n)) => {
            let base = ctx.config.claim_recheck * n;
            let waited = ctx
                .memory
                .brief_for(&ws.uid().unwrap_or_default())
                .unwrap_or_default();
            Some(waited.clamp(base, base * RECHECK_GROWTH))
        }
        Some(Recheck::Tasks) => Some(ctx.config.intervals.pending),
        None => None,
    };
    match recheck.into_iter().chain(also).min() {
        Some(wait) => Requeue::requeue(wait),
        None => Requeue::await_change(),
    }
}

/// Terminal AWS errors wait for a change; everything else backs off per object, growing
/// and jittered, capped. The log line names the step that failed.
pub fn error_policy<K: kube::Resource>(ws: Arc<K>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(
        workspace.namespace = ws.namespace().unwrap_or_default(),
        workspace.name = ws.name_any(),
        step = %error.step,
        error = error as &dyn std::error::Error,
        "reconcile failed"
    );
    match ctx.retry_delay(&ws.uid().unwrap_or_default(), error) {
        Some(delay) => Requeue::requeue(delay),
        None => Requeue::await_change(),
    }
}
