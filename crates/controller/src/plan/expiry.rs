//! Expiry: when a workspace deletes itself. The terms come from its `spec.expiry` (or the
//! class's default for its deployment type) and the class's `maxLifetime`; the idle clock from
//! the pods that use its claim. Everything the clock needs across a restart is in status
//! (`idleSince`, and `readyTime` where the idle clock starts): after a restart the same
//! deadline comes out.

use std::ops::ControlFlow::{self, Break, Continue};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lustre_api::LustreWorkspace;
use lustre_api::constants::reason;
use lustre_api::expiry::{ClassExpiry, ExpiryAction, parse_duration, show_duration};
use lustre_api::validation::effective_deployment_type;

use super::{Action, Inputs};
use crate::pods::ClaimUse;

/// What the operator knows of the pods that use a workspace's claim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pods {
    /// This operator does not watch pods (`--watch-pods=false`).
    NotWatched,
    /// The pod watch has not listed everything yet.
    #[default]
    Unknown,
    /// As counted.
    Seen(ClaimUse),
}

/// The deadline that comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// `spec.expiry.at`.
    At,
    /// Idle for `afterIdle` (the workspace's or the class's default).
    Idle(Duration),
    /// The class's `maxLifetime` for the deployment type.
    MaxLifetime(Duration),
}

/// A workspace's expiry terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Terms {
    pub after_idle: Option<Duration>,
    pub at: Option<Timestamp>,
    pub max_lifetime: Option<Duration>,
    pub action: ExpiryAction,
    pub warn_before: Duration,
}

/// Where a workspace's expiry stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    pub terms: Terms,
    /// Since when no unfinished pod uses the claim (with an idle term only).
    pub idle_since: Option<Timestamp>,
    /// The first deadline, and which it is.
    pub expires_at: Option<(Timestamp, Why)>,
    /// The first deadline that may be acted on now: an idle deadline only once the pod watch
    /// has counted the claim's pods (after a restart, a pod may have started meanwhile).
    pub due: Option<(Timestamp, Why)>,
}

/// The workspace's terms: its own expiry, else its class's default for the deployment type,
/// with the class's longest lifetime; `None` when nothing expires it.
pub fn terms(i: &Inputs) -> Option<Terms> {
    let ws = i.workspace;
    let class = i.class.found();
    let class_expiry = class.and_then(|c| c.spec.expiry.as_ref());
    let policy = class.zip(class_expiry).and_then(|(c, e)| {
        let t = ws
            .status
            .as_ref()
            .and_then(|s| s.deployment_type)
            .unwrap_or_else(|| effective_deployment_type(&ws.spec, &c.spec));
        e.policy(t)
    });
    let (after_idle, at, action) = match (
        &ws.spec.expiry,
        policy.and_then(|p| p.default_expiry.as_ref()),
    ) {
        (Some(e), _) => (
            e.after_idle.as_deref(),
            e.at.as_ref().map(|t| t.0),
            e.action,
        ),
        (None, Some(d)) => (Some(d.after_idle.as_str()), None, d.action),
        (None, None) => (None, None, None),
    };
    let terms = Terms {
        after_idle: after_idle.and_then(parse_duration),
        at,
        max_lifetime: policy
            .and_then(|p| p.max_lifetime.as_deref())
            .and_then(parse_duration),
        action: action.unwrap_or_default(),
        warn_before: class_expiry
            .map_or(ClassExpiry::DEFAULT_WARN_BEFORE, ClassExpiry::warn_before),
    };
    (terms.after_idle.is_some() || terms.at.is_some() || terms.max_lifetime.is_some())
        .then_some(terms)
}

/// `now`, to the second (what status shows).
pub fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Where the expiry stands; `ready` is when the workspace became Ready (the idle clock starts
/// there at the earliest).
/// `status.idleSince` and `status.expiresAt`: as the clock stands, else (while deleting) as
/// last shown.
pub fn shown_times(
    i: &Inputs,
    action: &Action,
    previous: &lustre_api::LustreWorkspaceStatus,
    deleting: bool,
) -> (Option<Time>, Option<Time>) {
    if deleting {
        return (previous.idle_since.clone(), previous.expires_at.clone());
    }
    let c = clock(i, ready_at(i, action));
    (
        c.and_then(|c| c.idle_since).map(Time),
        c.and_then(|c| c.expires_at).map(|(t, _)| Time(t)),
    )
}

pub fn clock(i: &Inputs, ready: Option<Timestamp>) -> Option<Clock> {
    let terms = terms(i)?;
    let ws = i.workspace;
    let previous = ws
        .status
        .as_ref()
        .and_then(|s| s.idle_since.as_ref())
        .map(|t| t.0);
    let now = seconds(i.now);
    let idle_since = match (terms.after_idle, i.pods) {
        (None, _) | (Some(_), Pods::NotWatched) => None,
        (Some(_), Pods::Unknown) => previous,
        (Some(_), Pods::Seen(u)) if u.active > 0 => None,
        (Some(_), Pods::Seen(u)) => ready.map(|ready| {
            let start = previous.or(u.last_active).unwrap_or(now);
            start
                .max(u.last_active.unwrap_or(start))
                .max(seconds(ready))
                .min(now)
        }),
    };
    let created = ws.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let deadlines = [
        terms.at.map(|t| (t, Why::At)),
        terms
            .after_idle
            .zip(idle_since)
            .map(|(d, since)| (after(since, d), Why::Idle(d))),
        terms
            .max_lifetime
            .zip(created)
            .map(|(d, c)| (after(c, d), Why::MaxLifetime(d))),
    ];
    let first = |idle: bool| {
        deadlines
            .into_iter()
            .flatten()
            .filter(|(_, why)| idle || !matches!(why, Why::Idle(_)))
            .min_by_key(|(t, _)| *t)
    };
    Some(Clock {
        terms,
        idle_since,
        expires_at: first(true),
        due: first(i.pods != Pods::Unknown),
    })
}

/// When the workspace became Ready: as status keeps it, or now when this step makes it so.
pub fn ready_at(i: &Inputs, action: &Action) -> Option<Timestamp> {
    ready_time(i.workspace).or_else(|| matches!(action, Action::Ready).then(|| seconds(i.now)))
}

/// When the workspace became Ready, as status keeps it.
fn ready_time(ws: &LustreWorkspace) -> Option<Timestamp> {
    ws.status.as_ref()?.ready_time.as_ref().map(|t| t.0)
}

/// The create planner's first gate: an expired workspace is deleted, whatever else it waits
/// for.
pub(super) fn gate(i: &Inputs) -> ControlFlow<Action> {
    match clock(i, ready_time(i.workspace)).and_then(|c| c.due) {
        Some((at, why)) if at <= i.now => Break(Action::Expire(expired(at, why))),
        _ => Continue(()),
    }
}

/// Why it expired, for the Event and the condition.
fn expired(at: Timestamp, why: Why) -> String {
    format!("expired at {at} ({}): deleting the workspace", because(why))
}

fn because(why: Why) -> String {
    match why {
        Why::At => "spec.expiry.at".into(),
        Why::Idle(d) => format!("idle for {} (afterIdle)", show_duration(d)),
        Why::MaxLifetime(d) => format!("the class's maxLifetime of {}", show_duration(d)),
    }
}

/// The `Expiring` condition: (status, reason, message); `None` without an expiry.
pub fn condition(i: &Inputs, clock: &Clock) -> (bool, &'static str, String) {
    let now = i.now;
    let in_use = match i.pods {
        Pods::Seen(u) if u.active > 0 => Some(u.active),
        _ => None,
    };
    let idle_unknown = clock.terms.after_idle.is_some() && i.pods == Pods::NotWatched;
    if let Some((at, why)) = clock.due.filter(|(at, _)| *at <= now) {
        return (true, reason::EXPIRED, expired(at, why));
    }
    match clock.expires_at {
        Some((at, why)) if at <= after(now, clock.terms.warn_before) => (
            true,
            reason::EXPIRES_SOON,
            format!(
                "expires at {at} ({}): the workspace is then deleted{}",
                because(why),
                exports(clock.terms.action)
            ),
        ),
        _ if idle_unknown => (
            false,
            reason::PODS_NOT_WATCHED,
            "expiry.afterIdle needs the operator's pod watch, which is off (expiry.watchPods): only a time or the class's maxLifetime applies".into(),
        ),
        Some((at, why)) => (
            false,
            reason::EXPIRY_SCHEDULED,
            format!("expires at {at} ({}){}", because(why), exports(clock.terms.action)),
        ),
        None => match in_use {
            Some(_) => (
                false,
                reason::IN_USE,
                format!(
                    "pods use the claim: the idle clock starts when the last one ends{}",
                    exports(clock.terms.action)
                ),
            ),
            None => (
                false,
                reason::EXPIRY_SCHEDULED,
                "the idle clock starts when the workspace is Ready and no pod uses its claim".into(),
            ),
        },
    }
}

fn exports(action: ExpiryAction) -> &'static str {
    match action {
        ExpiryAction::Delete => "",
        ExpiryAction::ExportThenDelete => " (its links are exported to S3 first)",
    }
}

/// How long until the workspace should be looked at again for its expiry: the warning, then
/// the deadline (`None`: nothing scheduled; pods and spec changes wake it).
pub fn next_look(i: &Inputs) -> Option<Duration> {
    let clock = clock(i, ready_time(i.workspace))?;
    let (at, _) = clock.expires_at?;
    // An idle deadline passed while the pods are not read yet (just after a restart): looked
    // at again shortly, as the first list of pods flips no claim and so wakes nothing.
    if at <= i.now && clock.due != clock.expires_at {
        return Some(Duration::from_secs(2));
    }
    let warn = at
        .checked_sub(SignedDuration::try_from(clock.terms.warn_before).ok()?)
        .ok()?;
    let next = [warn, at].into_iter().find(|t| *t > i.now)?;
    let wait = next.duration_since(i.now);
    // A whole second past the deadline, so the look finds it passed (status shows seconds).
    Some(Duration::try_from(wait).ok()? + Duration::from_secs(1))
}

/// While deleting: whether an expiry with ExportThenDelete exports every link, the deletion
/// having come at or after the deadline (an automatic export anywhere leaves nothing to
/// export).
pub fn exports_every_link(i: &Inputs) -> bool {
    let ws = i.workspace;
    let Some(deleted) = ws.metadata.deletion_timestamp.as_ref().map(|t| t.0) else {
        return false;
    };
    let Some(clock) = clock(i, ready_time(ws)) else {
        return false;
    };
    clock.terms.action == ExpiryAction::ExportThenDelete
        && clock.expires_at.is_some_and(|(at, _)| at <= deleted)
        && ws
            .spec
            .data_repositories
            .iter()
            .all(|r| r.auto_export.is_empty())
}
