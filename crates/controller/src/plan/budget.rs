//! The class's `namespaceLimits`: what a namespace's workspaces of one class may use together,
//! checked before a workspace gets anything and before it grows. Workspaces holding a file
//! system count first; then the waiting ones in the order they were created (then by name),
//! each counted if it fits, so with room for three exactly the first three go ahead, and a
//! waiting workspace goes ahead by itself once one before it is deleted. Workspaces being
//! deleted, and those whose spec is refused, do not count.

use lustre_api::{LustreWorkspace, NamespaceLimits};

/// What the namespace's other workspaces of the class use before this one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceUse {
    pub workspaces: i64,
    pub capacity_gib: i64,
}

/// Another workspace of the namespace and class, as the budget sees it.
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    pub workspace: &'a LustreWorkspace,
    /// The capacity its file system has (status), when it holds one.
    pub holds_gib: Option<i64>,
    /// Its spec is accepted (a refused one never provisions, so takes no room).
    pub admissible: bool,
}

/// The order waiting workspaces go ahead in: creation time, then name.
fn order(ws: &LustreWorkspace) -> (Option<jiff::Timestamp>, String) {
    (
        ws.metadata.creation_timestamp.as_ref().map(|t| t.0),
        ws.metadata.name.clone().unwrap_or_default(),
    )
}

fn ask(ws: &LustreWorkspace) -> i64 {
    i64::from(ws.spec.storage_capacity_gib)
}

/// Whether `ask` more GiB and one more workspace fit beside `used`.
fn fits(limits: &NamespaceLimits, used: NamespaceUse, ask: i64, one_more: bool) -> bool {
    limits
        .max_workspaces
        .is_none_or(|max| used.workspaces + i64::from(one_more) <= i64::from(max))
        && limits
            .max_storage_capacity_gib
            .is_none_or(|max| used.capacity_gib + ask <= max)
}

/// What the peers use before `me`: every holder, then the waiting ones created before it
/// that fit.
pub fn usage(me: &LustreWorkspace, peers: &[Peer], limits: &NamespaceLimits) -> NamespaceUse {
    let mut used = NamespaceUse::default();
    let others = peers
        .iter()
        .filter(|p| p.workspace.metadata.uid != me.metadata.uid);
    for held in others.clone().filter_map(|p| p.holds_gib) {
        used.workspaces += 1;
        used.capacity_gib += held;
    }
    let mut waiting: Vec<&Peer> = others
        .filter(|p| p.holds_gib.is_none() && p.admissible)
        .filter(|p| order(p.workspace) < order(me))
        .collect();
    waiting.sort_by_key(|p| order(p.workspace));
    for p in waiting {
        if fits(limits, used, ask(p.workspace), true) {
            used.workspaces += 1;
            used.capacity_gib += ask(p.workspace);
        }
    }
    used
}

/// Why the budget holds `ws` back, if it does: a workspace without a file system needs room
/// for one more workspace and its capacity; one that holds `holds_gib` needs room only to
/// grow.
pub fn refusal(
    ws: &LustreWorkspace,
    class: &str,
    limits: &NamespaceLimits,
    used: NamespaceUse,
    holds_gib: Option<i64>,
) -> Option<String> {
    let ns = ws.metadata.namespace.as_deref().unwrap_or_default();
    let ask = ask(ws);
    let grows = holds_gib.is_some_and(|held| ask > held);
    if holds_gib.is_some() && !grows {
        return None;
    }
    if holds_gib.is_none()
        && let Some(max) = limits.max_workspaces
        && used.workspaces + 1 > i64::from(max)
    {
        return Some(format!(
            "namespace {ns} may have {max} workspace(s) of class {class} (namespaceLimits.maxWorkspaces) and {} hold a file system or wait before this one: it goes ahead when one of them is deleted",
            used.workspaces
        ));
    }
    match limits.max_storage_capacity_gib {
        Some(max) if used.capacity_gib + ask > max => Some(format!(
            "namespace {ns} may use {max} GiB of class {class} (namespaceLimits.maxStorageCapacityGiB): the others use {} GiB and this workspace asks {ask} GiB{}",
            used.capacity_gib,
            if grows {
                " (growing: it keeps its current size)"
            } else {
                ""
            }
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(name: &str, second: i64, gib: i32) -> LustreWorkspace {
        let mut w = LustreWorkspace::new(name, Default::default());
        w.metadata.namespace = Some("ml".into());
        w.metadata.uid = Some(format!("uid-{name}"));
        w.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_second(1_700_000_000 + second).expect("time"),
        ));
        w.spec.storage_capacity_gib = gib;
        w
    }

    #[test]
    fn holders_count_first_then_the_waiting_in_creation_order_that_fit() {
        let limits = NamespaceLimits {
            max_workspaces: Some(3),
            max_storage_capacity_gib: Some(6000),
        };
        // Created in this order; "old" holds a file system although it was made last.
        let a = ws("a", 1, 2400);
        let b = ws("b", 1, 2400); // same second as a: after it by name
        let c = ws("c", 2, 1200);
        let d = ws("d", 3, 1200);
        let bad = ws("bad", 0, 1200); // first, but refused: takes no room
        let old = ws("old", 9, 1200);
        let peers: Vec<Peer> = [
            (&a, None),
            (&b, None),
            (&c, None),
            (&d, None),
            (&old, Some(1200)),
        ]
        .into_iter()
        .map(|(w, holds)| Peer {
            workspace: w,
            holds_gib: holds,
            admissible: true,
        })
        .chain([Peer {
            workspace: &bad,
            holds_gib: None,
            admissible: false,
        }])
        .collect();
        let used = |me: &LustreWorkspace| usage(me, &peers, &limits);
        assert_eq!(
            used(&a),
            NamespaceUse {
                workspaces: 1,
                capacity_gib: 1200
            }
        );
        assert_eq!(
            used(&b),
            NamespaceUse {
                workspaces: 2,
                capacity_gib: 3600
            }
        );
        // a and b fit (old + a + b = 6000 GiB, 3 workspaces): c waits.
        assert_eq!(
            used(&c),
            NamespaceUse {
                workspaces: 3,
                capacity_gib: 6000
            }
        );
        assert!(refusal(&c, "standard", &limits, used(&c), None).is_some());
        assert!(refusal(&b, "standard", &limits, used(&b), None).is_none());
        // d is not counted behind c (c did not fit): d waits too, for the same reason.
        assert_eq!(used(&d), used(&c));
        // A holder is never counted against itself and never held back unless it grows: the
        // waiting ones made before it that fit take their room first.
        assert_eq!(
            used(&old),
            NamespaceUse {
                workspaces: 3,
                capacity_gib: 6000
            }
        );
        assert!(refusal(&old, "standard", &limits, used(&old), Some(1200)).is_none());
        assert!(refusal(&old, "standard", &limits, used(&old), Some(600)).is_some());
    }
}
