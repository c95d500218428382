//! What this process remembers of each workspace ([`WorkspaceMemory`]): ids it knows, what it
//! just did to a claim or volume, the status it last wrote, back-off counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus};
use std::sync::Arc;

use crate::context::lock;

/// A workspace's security group and file system ids, as far as this process knows them:
/// created by it, or described by it and carrying the workspace's UID tag (the file system id
/// may also be one from status that this process looked for and found gone; every describe of
/// a file system checks its tag anyway). Unlike the ids in status (which anyone allowed to
/// write `lustreworkspaces/status` can change), the group id is proof of ownership.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownIds {
    pub security_group: Option<String>,
    pub file_system: Option<String>,
    /// The security group had every Lustre rule the class asks for when last seen.
    pub rules_confirmed: bool,
}

/// A change this process just made to a workspace's claim or volume, which the watch caches
/// may not show yet (a controller's "expectations"): a reconcile woken by the workspace's own
/// status write can run before the claim's watch delivers the claim just created. The
/// observation trusts the expectation over the cache until the cache shows it met, for
/// [`EXPECTED_FOR`] at most (a change undone meanwhile, say a claim deleted at once, is then
/// seen as the cache has it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expected<V> {
    /// Created (or applied) as this view.
    Made(V),
    /// Deleted, held by a finalizer.
    Deleting,
    /// Deleted and gone.
    Gone,
}

/// How long an expectation outlives the write it follows.
pub(crate) const EXPECTED_FOR: Duration = Duration::from_secs(30);

/// An expectation and when it was set (boxed: it is there only between a write and the
/// watch that shows it, and every workspace's entry has room for two).
type Expectation<V> = Option<Box<(Expected<V>, std::time::Instant)>>;

/// The open expectation, dropped when `met` says the cache shows it or it is too old.
fn open<V: Clone>(
    slot: &mut Expectation<V>,
    met: impl FnOnce(&Expected<V>) -> bool,
) -> Option<Expected<V>> {
    match slot.take() {
        Some(open) if open.1.elapsed() < EXPECTED_FOR && !met(&open.0) => {
            let e = open.0.clone();
            *slot = Some(open);
            Some(e)
        }
        _ => None,
    }
}

/// What this process remembers of one workspace.
#[derive(Debug, Default)]
struct Remembered {
    ids: KnownIds,
    /// The claim and the volume as this process last changed them.
    claim: Expectation<crate::plan::ClaimView>,
    volume: Expectation<crate::plan::VolumeView>,
    /// The status this process last wrote, and when.
    written: Option<Box<(LustreWorkspaceStatus, std::time::Instant)>>,
    /// Failed reconciles in a row (the back-off grows with them).
    failures: u32,
    /// Cleanup finished here; only the finalizer's removal is left.
    cleaned: bool,
    /// The file system's data repository tasks as last described here (with those started
    /// here since), and when: a reconcile woken by its own status write reads them instead
    /// of describing them again.
    tasks: Option<Box<(Vec<lustre_cloud::DataTask>, std::time::Instant)>>,
    /// The brief step the workspace is in, its status not written yet, and since when (see
    /// [`crate::write::unshown`]).
    brief: Option<Box<(crate::plan::Action, std::time::Instant)>>,
}

/// What this process remembers of each workspace, by UID, in one place.
///
/// Invariant: nothing here is needed for correctness after a restart. Every entry is a
/// shortcut past a call (a describe, a second identical status write, a second look at AWS
/// after cleanup finished) or a back-off count; losing it costs calls, never a wrong step.
/// An entry lives from the first thing kept of a workspace (reads make none) until
/// [`WorkspaceMemory::forget`] (its cleanup finished, or it was found gone).
#[derive(Debug, Default)]
pub struct WorkspaceMemory {
    by_uid: Mutex<HashMap<String, Remembered>>,
}

impl WorkspaceMemory {
    /// `f` on the workspace's entry, made if missing: for what keeps something.
    fn with<R>(&self, uid: &str, f: impl FnOnce(&mut Remembered) -> R) -> R {
        f(lock(&self.by_uid).entry(uid.to_owned()).or_default())
    }

    /// `f` on the workspace's entry if there is one: for what only reads or drops.
    fn with_existing<R>(&self, uid: &str, f: impl FnOnce(&mut Remembered) -> R) -> Option<R> {
        lock(&self.by_uid).get_mut(uid).map(f)
    }

    /// The ids this process knows for the workspace.
    pub(crate) fn ids(&self, uid: &str) -> KnownIds {
        lock(&self.by_uid)
            .get(uid)
            .map(|r| r.ids.clone())
            .unwrap_or_default()
    }

    /// Keeps ids this process just learnt.
    pub(crate) fn remember(&self, uid: &str, f: impl FnOnce(&mut KnownIds)) {
        self.with(uid, |r| f(&mut r.ids));
    }

    /// The tasks of file system `fs` as last described here, if that is younger than
    /// `fresh`.
    pub(crate) fn tasks_seen(
        &self,
        uid: &str,
        fs: &str,
        fresh: Duration,
    ) -> Option<Vec<lustre_cloud::DataTask>> {
        self.with_existing(uid, |r| {
            r.tasks
                .as_deref()
                .filter(|(tasks, at)| {
                    at.elapsed() < fresh && tasks.iter().all(|t| t.file_system_id == fs)
                })
                .map(|(tasks, _)| tasks.clone())
        })
        .flatten()
    }

    /// Keeps the tasks of a file system as just described.
    pub(crate) fn saw_tasks(&self, uid: &str, tasks: Vec<lustre_cloud::DataTask>) {
        self.with(uid, |r| {
            r.tasks = Some(Box::new((tasks, std::time::Instant::now())))
        });
    }

    /// Keeps a task just started or changed here beside the last described ones.
    pub(crate) fn saw_task(&self, uid: &str, task: &lustre_cloud::DataTask) {
        self.with(uid, |r| {
            let (tasks, _) = &mut **r
                .tasks
                .get_or_insert_with(|| Box::new((Vec::new(), std::time::Instant::now())));
            tasks.retain(|t| t.id != task.id);
            tasks.push(task.clone());
        });
    }

    /// Keeps the status just written, as the API server gives it back (its times to the
    /// second, `metav1.Time`): compared with the watch's copies, a status kept with the
    /// nanoseconds of the clock never matched one, and stayed for [`EXPECTED_FOR`].
    pub(crate) fn wrote(&self, uid: &str, status: LustreWorkspaceStatus) {
        let status = serde_json::to_value(&status)
            .and_then(serde_json::from_value)
            .unwrap_or(status);
        self.with(uid, |r| {
            r.written = Some(Box::new((status, std::time::Instant::now())))
        });
    }

    /// The workspace as this process last left it: the watch cache's copy, or, while that
    /// copy does not show the status this process last wrote (for [`EXPECTED_FOR`] at most
    /// after the write), the same with the status written. A reconcile woken before the
    /// cache sees the write (by the finalizer's patch, say, which the write did not build on)
    /// makes no second identical write and sends no second Ready Event. The written status
    /// is dropped once the cache shows it. (Dropping it as the watch delivers the copy that
    /// shows it was tried: a reconcile holds the copy the controller handed it, which can be
    /// older than the store by then, and wrote the same status again, 3 to 6 % of workspaces
    /// at 1,000.)
    pub fn freshen(&self, ws: Arc<LustreWorkspace>) -> Arc<LustreWorkspace> {
        let uid = ws.uid().unwrap_or_default();
        let mut all = lock(&self.by_uid);
        let Some(r) = all.get_mut(&uid) else {
            return ws;
        };
        match r.written.as_deref() {
            Some((status, at))
                if ws.status.as_ref() != Some(status) && at.elapsed() < EXPECTED_FOR =>
            {
                let mut fresh = (*ws).clone();
                fresh.status = Some(status.clone());
                Arc::new(fresh)
            }
            Some(_) => {
                r.written = None;
                ws
            }
            None => ws,
        }
    }

    /// Keeps what this process just did to the workspace's claim.
    pub(crate) fn expect_claim(&self, uid: &str, e: Expected<crate::plan::ClaimView>) {
        self.with(uid, |r| {
            r.claim = Some(Box::new((e, std::time::Instant::now())))
        });
    }

    /// Keeps what this process just did to the workspace's volume.
    pub(crate) fn expect_volume(&self, uid: &str, e: Expected<crate::plan::VolumeView>) {
        self.with(uid, |r| {
            r.volume = Some(Box::new((e, std::time::Instant::now())))
        });
    }

    /// The claim's open expectation (see [`Expected`]).
    pub(crate) fn claim_expected(
        &self,
        uid: &str,
        met: impl FnOnce(&Expected<crate::plan::ClaimView>) -> bool,
    ) -> Option<Expected<crate::plan::ClaimView>> {
        self.with_existing(uid, |r| open(&mut r.claim, met))
            .flatten()
    }

    /// The volume's open expectation (see [`Expected`]).
    pub(crate) fn volume_expected(
        &self,
        uid: &str,
        met: impl FnOnce(&Expected<crate::plan::VolumeView>) -> bool,
    ) -> Option<Expected<crate::plan::VolumeView>> {
        self.with_existing(uid, |r| open(&mut r.volume, met))
            .flatten()
    }

    /// Since when the workspace has been in the brief step `step` (now, when it was not), or
    /// `None` (forgetting the last) when it is not in one.
    pub(crate) fn brief_since(
        &self,
        uid: &str,
        step: Option<&crate::plan::Action>,
    ) -> Option<std::time::Instant> {
        let Some(step) = step else {
            self.with_existing(uid, |r| r.brief = None);
            return None;
        };
        self.with(uid, |r| match r.brief.as_deref() {
            Some((same, since)) if same == step => Some(*since),
            _ => {
                let now = std::time::Instant::now();
                r.brief = Some(Box::new((step.clone(), now)));
                Some(now)
            }
        })
    }

    /// How long the workspace has been in its current brief step (as last recorded by
    /// [`WorkspaceMemory::brief_since`]), if it is in one.
    pub(crate) fn brief_for(&self, uid: &str) -> Option<Duration> {
        lock(&self.by_uid)
            .get(uid)
            .and_then(|r| r.brief.as_deref().map(|(_, since)| since.elapsed()))
    }

    /// Counts one more failed reconcile; returns how many in a row.
    pub(crate) fn failed(&self, uid: &str) -> u32 {
        self.with(uid, |r| {
            r.failures += 1;
            r.failures
        })
    }

    /// A reconcile succeeded: the back-off starts over.
    pub(crate) fn succeeded(&self, uid: &str) {
        if let Some(r) = lock(&self.by_uid).get_mut(uid) {
            r.failures = 0;
        }
    }

    /// Whether cleanup finished here (only the finalizer is left).
    pub(crate) fn cleaned(&self, uid: &str) -> bool {
        lock(&self.by_uid).get(uid).is_some_and(|r| r.cleaned)
    }

    /// Marks cleanup finished, or not (the finalizer's removal went through, or must be
    /// tried again from a fresh look).
    pub(crate) fn set_cleaned(&self, uid: &str, cleaned: bool) {
        self.with(uid, |r| r.cleaned = cleaned);
    }

    /// Drops everything about the workspace.
    pub(crate) fn forget(&self, uid: &str) {
        lock(&self.by_uid).remove(uid);
    }

    /// Keeps only the workspaces whose UIDs are in `live`, and of those no status written
    /// longer than [`EXPECTED_FOR`] ago (kept, it would be a copy of every Ready workspace's
    /// status that no reconcile comes to drop).
    pub(crate) fn retain(&self, live: &std::collections::HashSet<String>) {
        lock(&self.by_uid).retain(|uid, r| {
            if r.written
                .as_deref()
                .is_some_and(|(_, at)| at.elapsed() >= EXPECTED_FOR)
            {
                r.written = None;
            }
            live.contains(uid)
        });
    }

    /// How many workspaces are remembered (for tests).
    pub fn len(&self) -> usize {
        lock(&self.by_uid).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClaimView;

    const MADE: ClaimView = ClaimView {
        bound: false,
        deleting: false,
        storage_class: None,
        selected_node: None,
    };

    /// A written status is served over the cache's older copy, and dropped once the cache's
    /// copy shows it: the API server gives times back to the second.
    #[test]
    fn a_written_status_goes_when_the_cache_shows_it() {
        let memory = WorkspaceMemory::default();
        let mut ws = LustreWorkspace::new("w", Default::default());
        ws.metadata.uid = Some("u".into());
        let at = jiff::Timestamp::from_nanosecond(1_780_000_000_123_456_789).expect("a time");
        let written = LustreWorkspaceStatus {
            file_system_id: Some("fs-1".into()),
            ready_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at)),
            ..Default::default()
        };
        memory.wrote("u", written.clone());
        // An older copy (the cache behind the write): the written status is served.
        let served = memory.freshen(Arc::new(ws.clone()));
        assert_eq!(
            served
                .status
                .as_ref()
                .and_then(|s| s.file_system_id.as_deref()),
            Some("fs-1")
        );
        assert!(memory.with("u", |r| r.written.is_some()));
        // The API server's copy: its times to the second.
        let shown = serde_json::to_value(&written).expect("json");
        ws.status = Some(serde_json::from_value(shown).expect("status"));
        assert_ne!(ws.status.as_ref(), Some(&written));
        memory.freshen(Arc::new(ws));
        assert!(memory.with("u", |r| r.written.is_none()));
    }

    #[test]
    fn an_expectation_holds_until_the_cache_shows_it_or_it_is_too_old() {
        let memory = WorkspaceMemory::default();
        memory.expect_claim("u", Expected::Made(MADE));
        // Not in the cache yet: trusted, and kept.
        assert_eq!(
            memory.claim_expected("u", |_| false),
            Some(Expected::Made(MADE))
        );
        assert_eq!(
            memory.claim_expected("u", |_| false),
            Some(Expected::Made(MADE))
        );
        // The cache shows it: dropped for good.
        assert_eq!(memory.claim_expected("u", |_| true), None);
        assert_eq!(memory.claim_expected("u", |_| false), None);
        // Too old: dropped, whatever the cache shows.
        memory.with("u", |r| {
            r.claim = Some(Box::new((
                Expected::Deleting,
                std::time::Instant::now() - EXPECTED_FOR,
            )))
        });
        assert_eq!(memory.claim_expected("u", |_| false), None);
    }
}
