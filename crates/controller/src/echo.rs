//! The operator's own writes heard back. A write's answer is the object at the
//! `resourceVersion` its watch event carries; that event wakes no reconcile when the reconcile
//! that wrote has acted on everything the version holds (the store still takes the event, and
//! the controllers beside this one still hear of it). At 1,000 workspaces on the real control
//! plane four of the eight wakes per workspace between the poll that saw the file system
//! AVAILABLE and the claim Bound were such echoes: the volume made, the claim made, two
//! statuses written (docs/benchmarks.md).
//!
//! What makes an echo safe to skip: every change of an object by someone else has a version,
//! and so an event, of its own. The version a write answers with holds that write's change
//! alone, unless the write changed nothing (an apply of what is stored): then it is the
//! version of the object's last change, perhaps someone else's the watch has not delivered
//! yet. So a write is recorded only when the reconcile acted on all its answer holds: a
//! claim or volume step reads its answer (created, applied or held by a finalizer) into what
//! the plan goes on with; a write of the workspace's status or finalizer is recorded when its
//! answer is the workspace the reconcile read, but for that status and finalizer
//! ([`acted_on`]).
//!
//! The watch may deliver the event before the write's answer arrives (on the sandbox, often
//! for a workspace's first write). So the writes are counted per workspace while they are in
//! flight ([`Echoes::writing`]), and an event that would wake a workspace with a write in
//! flight is held until the writes are answered: the echo of one of them is dropped then,
//! any other event wakes the workspace at that moment. Its reconcile is still running then
//! (it is the one writing), so the wake runs the same next reconcile it would have run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreWorkspace;
use lustre_api::constants::FINALIZER;
use prometheus::IntCounterVec;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::context::lock;
use crate::kept::Kept;

/// A workspace woken by a watch of `source` once the writes it waited for were answered.
pub(crate) type Released = (ObjectRef<Kept>, &'static str);

/// The operator's writes in flight and answered, by the workspace whose reconcile writes
/// them; the wakes held meanwhile go out on a channel ([`Echoes::released`]).
#[derive(Debug)]
pub(crate) struct Echoes {
    by_workspace: Mutex<HashMap<ObjectRef<Kept>, Ledger>>,
    release: UnboundedSender<Released>,
    released: Mutex<Option<UnboundedReceiver<Released>>>,
    /// `lustre_operator_own_writes_heard_total{source}`.
    heard: IntCounterVec,
}

/// An object's version: its UID and `resourceVersion`.
#[derive(Debug, PartialEq)]
struct Version(Box<str>, Box<str>);

impl Version {
    fn of(meta: &ObjectMeta) -> Option<Self> {
        Some(Self(
            meta.uid.as_deref()?.into(),
            meta.resource_version.as_deref()?.into(),
        ))
    }
}

/// One workspace's writes.
#[derive(Debug, Default)]
struct Ledger {
    /// Writes sent and not yet answered.
    writing: u16,
    /// The versions writes answered with, not yet heard back, and when.
    answered: Vec<(Version, Instant)>,
    /// Events heard while a write was in flight, not matched with an answer yet.
    held: Vec<(Option<Version>, &'static str)>,
}

/// What a watch event does to a workspace ([`Echoes::hear`]).
#[derive(Debug, PartialEq)]
pub(crate) enum Heard {
    /// Wakes it now.
    Wake,
    /// An echo of its own write: wakes nothing.
    Echo,
    /// Held while its writes are in flight.
    Held,
}

/// A write in flight for a workspace; answered with [`Writing::answered`], or dropped (the
/// write failed, or its answer is not to be heard back).
pub(crate) struct Writing<'a> {
    echoes: &'a Echoes,
    workspace: ObjectRef<Kept>,
}

impl Echoes {
    pub(crate) fn new(heard: IntCounterVec) -> Self {
        let (release, released) = unbounded_channel();
        Self {
            by_workspace: Mutex::default(),
            release,
            released: Mutex::new(Some(released)),
            heard,
        }
    }

    /// The wakes held while writes were in flight, once they are answered (taken once, by
    /// the controller).
    pub(crate) fn released(&self) -> Option<UnboundedReceiver<Released>> {
        lock(&self.released).take()
    }

    /// Counts a write for `ws` in flight until the [`Writing`] is answered or dropped.
    pub(crate) fn writing(&self, ws: &LustreWorkspace) -> Writing<'_> {
        let workspace = ObjectRef::new(&ws.name_any()).within(&ws.namespace().unwrap_or_default());
        lock(&self.by_workspace)
            .entry(workspace.clone())
            .or_default()
            .writing += 1;
        Writing {
            echoes: self,
            workspace,
        }
    }

    /// What a watch event of `source` (the object as the event has it) does to the
    /// workspace it would wake.
    pub(crate) fn hear(
        &self,
        workspace: &ObjectRef<Kept>,
        event: &ObjectMeta,
        source: &'static str,
    ) -> Heard {
        let mut all = lock(&self.by_workspace);
        let Some(ledger) = all.get_mut(workspace) else {
            return Heard::Wake;
        };
        let version = Version::of(event);
        let answered = version
            .as_ref()
            .and_then(|v| ledger.answered.iter().position(|(a, _)| a == v));
        if let Some(at) = answered {
            ledger.answered.remove(at);
            if ledger.is_empty() {
                all.remove(workspace);
            }
            self.heard.with_label_values(&[source]).inc();
            return Heard::Echo;
        }
        if ledger.writing > 0 {
            ledger.held.push((version, source));
            return Heard::Held;
        }
        Heard::Wake
    }

    /// Forgets a workspace that is gone.
    pub(crate) fn gone(&self, workspace: &ObjectRef<Kept>) {
        let mut all = lock(&self.by_workspace);
        if all.get(workspace).is_some_and(|l| l.writing == 0) {
            all.remove(workspace);
        }
    }

    /// Forgets the answers not heard back within `age`: an echo a watch filter dropped
    /// (nothing it keeps changed) or a relist passed over is never heard.
    pub(crate) fn prune(&self, age: Duration) {
        let mut all = lock(&self.by_workspace);
        for ledger in all.values_mut() {
            ledger.answered.retain(|(_, at)| at.elapsed() < age);
        }
        all.retain(|_, ledger| !ledger.is_empty());
    }
}

impl Ledger {
    fn is_empty(&self) -> bool {
        self.writing == 0 && self.answered.is_empty() && self.held.is_empty()
    }
}

impl Writing<'_> {
    /// The write's answer, whose watch event is its echo.
    pub(crate) fn answered(self, answer: &ObjectMeta) {
        let Some(version) = Version::of(answer) else {
            return;
        };
        let mut all = lock(&self.echoes.by_workspace);
        let ledger = all.entry(self.workspace.clone()).or_default();
        match ledger
            .held
            .iter()
            .position(|(v, _)| v.as_ref() == Some(&version))
        {
            Some(at) => {
                let (_, source) = ledger.held.remove(at);
                self.echoes.heard.with_label_values(&[source]).inc();
            }
            None => ledger.answered.push((version, Instant::now())),
        }
    }
}

impl Drop for Writing<'_> {
    /// The write is done: with none left in flight, what was held wakes the workspace.
    fn drop(&mut self) {
        let mut all = lock(&self.echoes.by_workspace);
        let Some(ledger) = all.get_mut(&self.workspace) else {
            return;
        };
        ledger.writing = ledger.writing.saturating_sub(1);
        if ledger.writing == 0 {
            // One wake is enough for any number of events (counted by its first source).
            if let Some((_, source)) = ledger.held.first() {
                let _ = self.echoes.release.send((self.workspace.clone(), source));
            }
            ledger.held.clear();
        }
        if ledger.is_empty() {
            all.remove(&self.workspace);
        }
    }
}

/// Whether `answer` (a write's of the workspace's status or of its finalizer) is the workspace
/// the reconcile read (`read`) but for its status and the operator's finalizer: the same
/// generation, spec, deletion, labels, annotations, owners and other finalizers. A change
/// someone made since the reconcile read the workspace fails this (its own event wakes the
/// workspace, but if the write changed nothing the answer is that event's version).
pub(crate) fn acted_on(read: &LustreWorkspace, answer: &LustreWorkspace) -> bool {
    let (r, a) = (&read.metadata, &answer.metadata);
    let others = |ws: &LustreWorkspace| -> Vec<String> {
        let mut f: Vec<String> = ws
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        f.sort();
        f
    };
    let annotations = |m: &ObjectMeta| {
        let mut a = m.annotations.clone().unwrap_or_default();
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a
    };
    r.uid == a.uid
        && r.generation == a.generation
        && read.spec == answer.spec
        && r.deletion_timestamp == a.deletion_timestamp
        && r.labels.clone().unwrap_or_default() == a.labels.clone().unwrap_or_default()
        && annotations(r) == annotations(a)
        && r.owner_references.clone().unwrap_or_default()
            == a.owner_references.clone().unwrap_or_default()
        && others(read) == others(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echoes() -> Echoes {
        let counter = IntCounterVec::new(prometheus::Opts::new("heard", "heard"), &["source"])
            .expect("a counter");
        Echoes::new(counter)
    }

    fn meta(uid: &str, version: &str) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            resource_version: Some(version.into()),
            ..ObjectMeta::default()
        }
    }

    fn ws(name: &str) -> LustreWorkspace {
        let mut ws = LustreWorkspace::new(name, Default::default());
        ws.metadata.namespace = Some("ml".into());
        ws
    }

    fn at(name: &str) -> ObjectRef<Kept> {
        ObjectRef::new(name).within("ml")
    }

    #[test]
    fn an_answered_write_is_heard_once_at_its_own_version_only() {
        let e = echoes();
        e.writing(&ws("a")).answered(&meta("claim", "7"));
        // Someone else's version, the same version of another object, another workspace.
        assert_eq!(e.hear(&at("a"), &meta("claim", "6"), "claim"), Heard::Wake);
        assert_eq!(
            e.hear(&at("a"), &meta("volume", "7"), "volume"),
            Heard::Wake
        );
        assert_eq!(e.hear(&at("b"), &meta("claim", "7"), "claim"), Heard::Wake);
        assert_eq!(e.hear(&at("a"), &meta("claim", "7"), "claim"), Heard::Echo);
        assert_eq!(e.hear(&at("a"), &meta("claim", "7"), "claim"), Heard::Wake);
        // Two writes before the watch reports the first: both heard.
        e.writing(&ws("a")).answered(&meta("ws", "8"));
        e.writing(&ws("a")).answered(&meta("ws", "9"));
        assert_eq!(e.hear(&at("a"), &meta("ws", "8"), "workspace"), Heard::Echo);
        assert_eq!(e.hear(&at("a"), &meta("ws", "9"), "workspace"), Heard::Echo);
        assert_eq!(e.heard.with_label_values(&["workspace"]).get(), 2);
        assert!(lock(&e.by_workspace).is_empty(), "nothing left");
    }

    #[test]
    fn events_during_a_write_are_held_and_only_others_wake_after_it() {
        let e = echoes();
        let mut released = e.released().expect("taken once");
        assert!(e.released().is_none());
        // The echo comes before the answer: held, then matched with it; nothing wakes.
        let w = e.writing(&ws("a"));
        assert_eq!(e.hear(&at("a"), &meta("ws", "5"), "workspace"), Heard::Held);
        w.answered(&meta("ws", "5"));
        assert!(released.try_recv().is_err());
        assert_eq!(e.heard.with_label_values(&["workspace"]).get(), 1);
        // Someone else's change while a write is in flight wakes the workspace once the
        // write is done, failed or not.
        let w = e.writing(&ws("a"));
        assert_eq!(e.hear(&at("a"), &meta("claim", "6"), "claim"), Heard::Held);
        assert_eq!(
            e.hear(&at("a"), &meta("volume", "7"), "volume"),
            Heard::Held
        );
        assert_eq!(e.hear(&at("b"), &meta("claim", "8"), "claim"), Heard::Wake);
        drop(w);
        assert_eq!(released.try_recv().ok(), Some((at("a"), "claim")));
        assert!(released.try_recv().is_err(), "one wake");
        // Two writes in flight: held until both are done.
        let (w1, w2) = (e.writing(&ws("a")), e.writing(&ws("a")));
        assert_eq!(e.hear(&at("a"), &meta("claim", "9"), "claim"), Heard::Held);
        w1.answered(&meta("ws", "10"));
        assert!(released.try_recv().is_err());
        drop(w2);
        assert_eq!(released.try_recv().ok(), Some((at("a"), "claim")));
        assert_eq!(
            e.hear(&at("a"), &meta("ws", "10"), "workspace"),
            Heard::Echo
        );
        assert!(lock(&e.by_workspace).is_empty(), "nothing left");
    }

    #[test]
    fn gone_and_unheard_answers_are_forgotten() {
        let e = echoes();
        e.writing(&ws("a")).answered(&meta("x", "1"));
        e.writing(&ws("b")).answered(&meta("y", "1"));
        e.gone(&at("a"));
        assert_eq!(e.hear(&at("a"), &meta("x", "1"), "claim"), Heard::Wake);
        e.prune(Duration::from_secs(3600));
        assert_eq!(lock(&e.by_workspace).len(), 1, "a recent answer is kept");
        e.prune(Duration::ZERO);
        assert!(lock(&e.by_workspace).is_empty());
    }

    fn workspace() -> LustreWorkspace {
        let mut ws: LustreWorkspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "workspaces.lustre.dev/v1alpha1",
            "kind": "LustreWorkspace",
            "metadata": {"name": "w", "namespace": "ml", "uid": "u", "generation": 1,
                         "resourceVersion": "5", "labels": {"team": "a"}},
            "spec": {"storageCapacityGiB": 1200}
        }))
        .expect("a workspace");
        ws.metadata.finalizers = Some(vec!["example.com/keep".into()]);
        ws
    }

    #[test]
    fn a_workspace_write_is_acted_on_when_only_its_status_and_finalizer_differ() {
        let read = workspace();
        let mut answer = read.clone();
        answer.metadata.resource_version = Some("6".into());
        answer.metadata.finalizers = Some(vec![FINALIZER.into(), "example.com/keep".into()]);
        answer.metadata.annotations = Some(
            [(
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            )]
            .into(),
        );
        answer.status = Some(Default::default());
        assert!(acted_on(&read, &answer));
        // Whatever else changed is someone else's, which the reconcile did not see.
        let changed: [fn(&mut LustreWorkspace); 5] = [
            |ws| ws.spec.storage_capacity_gib = Some(2400),
            |ws| ws.metadata.generation = Some(2),
            |ws| {
                ws.labels_mut().insert("team".into(), "b".into());
            },
            |ws| ws.metadata.finalizers = Some(vec![FINALIZER.into()]),
            |ws| {
                ws.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        jiff::Timestamp::UNIX_EPOCH,
                    ))
            },
        ];
        for change in changed {
            let mut other = answer.clone();
            change(&mut other);
            assert!(!acted_on(&read, &other), "{other:?}");
        }
    }
}
