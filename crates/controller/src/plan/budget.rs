//! The class's `namespaceLimits`: what a namespace's workspaces of one class may use together,
//! checked before a workspace gets anything and before it grows. Workspaces holding a file
//! system count first; then the waiting ones in the order they were created (then by name),
//! each counted if it fits, so with room for three exactly the first three go ahead, and a
//! waiting workspace goes ahead by itself once one before it is deleted. Workspaces being
//! deleted, and those whose spec is refused, do not count.

use lustre_api::cost::amount;
use lustre_api::validation::effective_deployment_type;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass, NamespaceLimits};

/// The budget a workspace is checked against: the limits that apply to its namespace (the
/// class's, with the namespace's own override) and what the others use before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    pub limits: NamespaceLimits,
    pub used: NamespaceUse,
}

/// The limits for a namespace: the class's, with the fields the namespace's annotation
/// (`limits.workspaces.lustre.dev/<class>`, JSON) sets in their place. `Err`: the annotation
/// does not read (the class's limits apply).
pub fn limits_for(
    class: Option<&NamespaceLimits>,
    annotation: Option<&str>,
) -> Result<Option<NamespaceLimits>, String> {
    let Some(text) = annotation else {
        return Ok(class.cloned());
    };
    let own: NamespaceLimits = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let base = class.cloned().unwrap_or_default();
    Ok(Some(NamespaceLimits {
        max_workspaces: own.max_workspaces.or(base.max_workspaces),
        max_storage_capacity_gib: own
            .max_storage_capacity_gib
            .or(base.max_storage_capacity_gib),
        max_monthly_cost: own.max_monthly_cost.or(base.max_monthly_cost),
    }))
}

/// What the namespace's other workspaces of the class use before this one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceUse {
    pub workspaces: i64,
    pub capacity_gib: i64,
    /// Their estimated monthly cost, in hundredths of the class's currency.
    pub cost_cents: i64,
    /// How many of them have no price (their cost cannot be counted).
    pub unpriced: i64,
}

/// The monthly estimate of `gib` of the workspace's tier at its class's prices, in
/// hundredths (`None`: no price).
pub fn monthly_cents(ws: &LustreWorkspace, class: &LustreWorkspaceClass, gib: i64) -> Option<i64> {
    lustre_api::cost::estimate(
        gib,
        effective_deployment_type(&ws.spec, &class.spec),
        ws.spec.per_unit_storage_throughput,
        class.spec.prices.as_ref(),
        class.spec.region.as_deref(),
    )
    .cents
}

/// The class's `maxMonthlyCost` in hundredths (one that does not read allows nothing).
fn max_cents(limits: &NamespaceLimits) -> Option<i64> {
    let max = limits.max_monthly_cost.as_deref()?;
    Some(lustre_api::cost::cents(max).unwrap_or(0))
}

/// Another workspace of the namespace and class, as the budget sees it.
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    pub workspace: &'a LustreWorkspace,
    /// The capacity its file system has (status), when it holds one.
    pub holds_gib: Option<i64>,
    /// Its spec is accepted (a refused one never provisions, so takes no room).
    pub admissible: bool,
    /// Its estimated monthly cost (of what it holds, else of what it asks), in hundredths.
    pub cost_cents: Option<i64>,
}

/// The order waiting workspaces go ahead in: creation time, then name.
fn order(ws: &LustreWorkspace) -> (Option<jiff::Timestamp>, String) {
    (
        ws.metadata.creation_timestamp.as_ref().map(|t| t.0),
        ws.metadata.name.clone().unwrap_or_default(),
    )
}

fn ask(ws: &LustreWorkspace) -> i64 {
    i64::from(ws.spec.capacity_gib())
}

/// Whether one more workspace of `ask` GiB costing `cents` fits beside `used` (a cost limit
/// needs every price).
fn fits(limits: &NamespaceLimits, used: NamespaceUse, ask: i64, cents: Option<i64>) -> bool {
    limits
        .max_workspaces
        .is_none_or(|max| used.workspaces < i64::from(max))
        && limits
            .max_storage_capacity_gib
            .is_none_or(|max| used.capacity_gib + ask <= max)
        && max_cents(limits).is_none_or(|max| {
            used.unpriced == 0 && cents.is_some_and(|c| used.cost_cents + c <= max)
        })
}

fn add(used: &mut NamespaceUse, gib: i64, cents: Option<i64>) {
    used.workspaces += 1;
    used.capacity_gib += gib;
    match cents {
        Some(c) => used.cost_cents += c,
        None => used.unpriced += 1,
    }
}

/// What the peers use before `me`: every holder, then the waiting ones created before it
/// that fit.
pub fn usage(me: &LustreWorkspace, peers: &[Peer], limits: &NamespaceLimits) -> NamespaceUse {
    let mut used = NamespaceUse::default();
    let others = peers
        .iter()
        .filter(|p| p.workspace.metadata.uid != me.metadata.uid);
    for p in others.clone() {
        if let Some(held) = p.holds_gib {
            add(&mut used, held, p.cost_cents);
        }
    }
    let mut waiting: Vec<&Peer> = others
        .filter(|p| p.holds_gib.is_none() && p.admissible)
        .filter(|p| order(p.workspace) < order(me))
        .collect();
    waiting.sort_by_key(|p| order(p.workspace));
    for p in waiting {
        if fits(limits, used, ask(p.workspace), p.cost_cents) {
            add(&mut used, ask(p.workspace), p.cost_cents);
        }
    }
    used
}

/// Why the budget holds `ws` back, if it does: a workspace without a file system needs room
/// for one more workspace, its capacity and its cost; one that holds `holds_gib` needs room
/// only to grow.
pub fn refusal(
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    limits: &NamespaceLimits,
    used: NamespaceUse,
    holds_gib: Option<i64>,
) -> Option<String> {
    let ns = ws.metadata.namespace.as_deref().unwrap_or_default();
    let name = class.metadata.name.as_deref().unwrap_or_default();
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
            "namespace {ns} may have {max} workspace(s) of class {name} (namespaceLimits.maxWorkspaces) and {} hold a file system or wait before this one: it goes ahead when one of them is deleted",
            used.workspaces
        ));
    }
    let growing = if grows {
        " (growing: it keeps its current size)"
    } else {
        ""
    };
    if let Some(max) = limits.max_storage_capacity_gib
        && used.capacity_gib + ask > max
    {
        return Some(format!(
            "namespace {ns} may use {max} GiB of class {name} (namespaceLimits.maxStorageCapacityGiB): the others use {} GiB and this workspace asks {ask} GiB{growing}",
            used.capacity_gib
        ));
    }
    let max = max_cents(limits)?;
    let limit = format!(
        "namespace {ns} may spend {} a month on class {name} (namespaceLimits.maxMonthlyCost)",
        amount(max)
    );
    match monthly_cents(ws, class, ask) {
        None => Some(format!(
            "{limit}, and class {name} has no price for this workspace's tier to check it against (spec.prices)"
        )),
        Some(_) if used.unpriced > 0 => Some(format!(
            "{limit}, and {} of its other workspaces have no price to count (spec.prices)",
            used.unpriced
        )),
        Some(c) if used.cost_cents + c > max => Some(format!(
            "{limit}: the others cost {} and this workspace {}{growing}",
            amount(used.cost_cents),
            amount(c)
        )),
        Some(_) => None,
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
        w.spec.storage_capacity_gib = Some(gib);
        w
    }

    /// A use at 0.14 a GiB-month, every peer priced.
    fn u(workspaces: i64, gib: i64) -> NamespaceUse {
        NamespaceUse {
            workspaces,
            capacity_gib: gib,
            cost_cents: 14 * gib,
            unpriced: 0,
        }
    }

    #[test]
    fn holders_count_first_then_the_waiting_in_creation_order_that_fit() {
        let limits = NamespaceLimits {
            max_workspaces: Some(3),
            max_storage_capacity_gib: Some(6000),
            max_monthly_cost: None,
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
            cost_cents: Some(14 * holds.unwrap_or(ask(w))),
        })
        .chain([Peer {
            workspace: &bad,
            holds_gib: None,
            admissible: false,
            cost_cents: None,
        }])
        .collect();
        let used = |me: &LustreWorkspace| usage(me, &peers, &limits);
        assert_eq!(used(&a), u(1, 1200));
        assert_eq!(used(&b), u(2, 3600));
        // a and b fit (old + a + b = 6000 GiB, 3 workspaces): c waits.
        assert_eq!(used(&c), u(3, 6000));
        let mut class = LustreWorkspaceClass::new("standard", Default::default());
        class.spec.namespace_limits = Some(limits.clone());
        assert!(refusal(&c, &class, &limits, used(&c), None).is_some());
        assert!(refusal(&b, &class, &limits, used(&b), None).is_none());
        // d is not counted behind c (c did not fit): d waits too, for the same reason.
        assert_eq!(used(&d), used(&c));
        // A holder is never counted against itself and never held back unless it grows: the
        // waiting ones made before it that fit take their room first.
        assert_eq!(used(&old), u(3, 6000));
        assert!(refusal(&old, &class, &limits, used(&old), Some(1200)).is_none());
        assert!(refusal(&old, &class, &limits, used(&old), Some(600)).is_some());
    }

    #[test]
    fn a_cost_limit_counts_every_price_and_refuses_what_it_cannot_count() {
        let limits = NamespaceLimits {
            max_monthly_cost: Some("504".into()),
            ..Default::default()
        };
        let mut class = LustreWorkspaceClass::new("standard", Default::default());
        class.spec.namespace_limits = Some(limits.clone());
        class.spec.prices = Some(lustre_api::cost::Prices {
            currency: None,
            source: None,
            per_gib_month: vec![lustre_api::cost::Rate {
                deployment_type: lustre_api::DeploymentType::Scratch2,
                throughput: None,
                price: "0.14".into(),
            }],
        });
        let mut me = ws("me", 5, 1200); // 1200 GiB x 0.14 = 168.00
        me.spec.deployment_type = Some(lustre_api::DeploymentType::Scratch2);
        // 336.00 + 168.00 fits in 504.00; 336.14 + 168.00 does not.
        assert_eq!(refusal(&me, &class, &limits, u(1, 2400), None), None);
        let over = refusal(&me, &class, &limits, u(2, 2401), None).expect("over");
        assert!(
            over.contains("the others cost 336.14 and this workspace 168.00"),
            "{over}"
        );
        let unpriced = NamespaceUse {
            unpriced: 1,
            ..u(1, 1200)
        };
        let why = refusal(&me, &class, &limits, unpriced, None).expect("cannot count");
        assert!(
            why.contains("1 of its other workspaces have no price"),
            "{why}"
        );
    }

    #[test]
    fn a_namespace_annotation_replaces_the_fields_it_sets() {
        let class = NamespaceLimits {
            max_workspaces: Some(3),
            max_storage_capacity_gib: Some(9600),
            max_monthly_cost: None,
        };
        assert_eq!(limits_for(Some(&class), None), Ok(Some(class.clone())));
        let own = limits_for(
            Some(&class),
            Some(r#"{"maxWorkspaces": 10, "maxMonthlyCost": "900"}"#),
        );
        assert_eq!(
            own,
            Ok(Some(NamespaceLimits {
                max_workspaces: Some(10),
                max_storage_capacity_gib: Some(9600),
                max_monthly_cost: Some("900".into()),
            }))
        );
        assert_eq!(
            limits_for(None, Some(r#"{"maxWorkspaces": 1}"#)),
            Ok(Some(NamespaceLimits {
                max_workspaces: Some(1),
                ..Default::default()
            }))
        );
        assert!(limits_for(Some(&class), Some("ten")).is_err());
    }
}
