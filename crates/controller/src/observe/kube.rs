//! The Kubernetes side of a workspace: its class, its namespace's labels, and the
//! StorageClass, PersistentVolume and claim the operator makes for it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lustre_api::constants::{DEFAULT_CLASS_ANNOTATION, labels};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};

use crate::builders;
use crate::context::{Context, Expected};
use crate::error::{Error, Step};
use crate::plan::budget::{self, Budget, Peer};
use crate::plan::{self, ClaimView, KubeView, VolumeView};

/// The workspace's class as found.
#[derive(Clone, Debug)]
pub(crate) enum Class {
    /// The class it names, or the default class.
    Found(Box<LustreWorkspaceClass>),
    /// `spec.className` names a class that does not exist.
    Missing(String),
    /// No class named and none marked default.
    NoDefault,
}

/// The class the workspace names, or the default one (of several marked default, the first
/// by name, as a list would give it), from the classes' watch.
pub(crate) fn resolve_class(ctx: &Context, ws: &LustreWorkspace) -> Class {
    let classes = &ctx.caches.classes;
    if let Some(name) = ws.spec.class_name.as_deref() {
        return match classes.get(&ObjectRef::new(name)) {
            Some(c) => Class::Found(Box::new((*c).clone())),
            None => Class::Missing(name.to_string()),
        };
    }
    let default = classes
        .state()
        .into_iter()
        .filter(|c| {
            c.annotations()
                .get(DEFAULT_CLASS_ANNOTATION)
                .map(String::as_str)
                == Some("true")
        })
        .min_by(|a, b| a.name_any().cmp(&b.name_any()));
    default.map_or(Class::NoDefault, |c| Class::Found(Box::new((*c).clone())))
}

/// The labels of the workspace's namespace: from the watch, or (a namespace created a moment
/// before its first workspace, not seen by the watch yet) from the API server.
pub(super) async fn namespace_labels(
    ctx: &Context,
    ws: &LustreWorkspace,
) -> Result<BTreeMap<String, String>, Error> {
    let ns = ws.namespace().unwrap_or_default();
    if let Some(n) = ctx.caches.namespaces.get(&ObjectRef::new(&ns)) {
        return Ok(n.labels().clone());
    }
    Ok(Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(Step::ReadNamespace.kube())?
        .map(|n| n.labels().clone())
        .unwrap_or_default())
}

/// The StorageClass, volume and claim, from the watches. A claim of the workspace's claim
/// name that is not the workspace's (no owner reference to it) is seen as taken, never as its
/// own. The one read: a claim of the workspace's whose operator label someone removed (its
/// phase is not in the managed claims' watch).
pub(super) async fn objects(
    ctx: &Context,
    ws: &LustreWorkspace,
    class: Option<&LustreWorkspaceClass>,
) -> Result<KubeView, Error> {
    let caches = &ctx.caches;
    let uid = ws.uid().unwrap_or_default();
    let exists = |name: fn(&str) -> String| {
        class.is_some_and(|c| {
            let name = name(&c.name_any());
            caches.storage_classes.get(&ObjectRef::new(&name)).is_some()
        })
    };
    let storage_class = exists(builders::storage_class_name);
    let first_pod_storage_class = exists(builders::first_pod_storage_class_name);
    let volume = volume_of(ctx, ws, &uid);
    let (claim_taken, claim) = claim_of(ctx, ws, &uid).await?;
    Ok(KubeView {
        storage_class,
        volume,
        claim_taken,
        claim,
        first_pod_storage_class,
        first_pod_zone: None,
        shares: shares_of(ctx, ws, &uid),
        shared: Vec::new(),
    })
}

/// The shares the spec offers: accepted by a grant in their namespace (from the grants'
/// cache), and bound (the claim made for it, from the operator's claims).
fn shares_of(ctx: &Context, ws: &LustreWorkspace, uid: &str) -> Vec<lustre_api::ShareStatus> {
    let Some(grants) = ctx.grants.get() else {
        return Vec::new();
    };
    let (ns, name) = (ws.namespace().unwrap_or_default(), ws.name_any());
    ws.spec
        .shares
        .iter()
        .map(|share| {
            let grant = grants.state().into_iter().find(|g| {
                g.namespace().as_deref() == Some(share.namespace.as_str())
                    && g.spec.from_namespace == ns
                    && g.spec.workspace == name
                    && g.metadata.deletion_timestamp.is_none()
            });
            let claim_name = share.claim_name.clone().unwrap_or_else(|| name.clone());
            let claim = ctx
                .caches
                .managed_claims
                .get(&ObjectRef::new(&claim_name).within(&share.namespace));
            let bound = claim.is_some_and(|c| {
                c.labels.get(labels::WORKSPACE_UID) == Some(uid)
                    && grant.as_ref().and_then(|g| g.uid()).as_deref()
                        == c.labels.get(crate::shares::GRANT_UID_LABEL)
                    && c.status.phase.as_deref() == Some("Bound")
            });
            lustre_api::ShareStatus {
                namespace: share.namespace.clone(),
                claim_name,
                granted: grant.is_some(),
                bound,
            }
        })
        .collect()
}

/// The claims (`namespace/name`) of this workspace's shares that still exist.
pub(super) fn shared_of(ctx: &Context, uid: &str) -> Vec<String> {
    ctx.caches
        .managed_claims
        .state()
        .iter()
        .filter(|c| c.labels.get(labels::WORKSPACE_UID) == Some(uid))
        .filter(|c| c.labels.get(crate::shares::GRANT_UID_LABEL).is_some())
        .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()))
        .collect()
}

/// The workspace's volume: the cache's, or what this process just did to it.
fn volume_of(ctx: &Context, ws: &LustreWorkspace, uid: &str) -> Option<VolumeView> {
    let cached = ctx
        .caches
        .volumes
        .get(&ObjectRef::new(&builders::volume_name(ws)))
        .map(|pv| volume_view(&pv));
    let expected = ctx.memory.volume_expected(uid, |e| match e {
        Expected::Made(_) => cached.is_some(),
        Expected::Gone => cached.is_none(),
        // Held by its finalizer (marked deleting below until the cache shows its deletion
        // mark); gone meets it here.
        Expected::Deleting => cached.is_none(),
    });
    match expected {
        Some(Expected::Made(v)) => Some(v),
        Some(Expected::Gone) => None,
        Some(Expected::Deleting) => cached.map(|v| VolumeView {
            deleting: true,
            ..v
        }),
        None => cached,
    }
}

/// Whether the claim is someone else's, and the workspace's own claim as observed: the
/// caches', or what this process just did to it.
async fn claim_of(
    ctx: &Context,
    ws: &LustreWorkspace,
    uid: &str,
) -> Result<(bool, Option<ClaimView>), Error> {
    let caches = &ctx.caches;
    let ns = ws.namespace().unwrap_or_default();
    let name = plan::claim_name(ws);
    let full = caches
        .managed_claims
        .get(&ObjectRef::new(&name).within(&ns));
    let seen = caches.claim_meta(&ns, &name, |m, managed| {
        (
            m.owner_references.iter().flatten().any(|r| r.uid == uid),
            managed,
            m.deletion_timestamp.is_some(),
        )
    });
    let Some((owned, managed, deleting)) = seen else {
        let expected = ctx
            .memory
            .claim_expected(uid, |e| !matches!(e, Expected::Made(_)));
        return Ok((
            false,
            match expected {
                Some(Expected::Made(made)) => Some(made),
                _ => None,
            },
        ));
    };
    if !owned {
        return Ok((true, None));
    }
    let claim = match full {
        Some(c) => Some(cached_claim_view(&c)),
        // Just made: its phase comes with the managed claims' watch, which wakes the
        // workspace then.
        None if managed => Some(ClaimView {
            bound: false,
            deleting,
            ..ClaimView::default()
        }),
        None => Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(Step::ObserveKubernetes.kube())?
            .map(|c| claim_view(&c)),
    };
    let expected = ctx.memory.claim_expected(uid, |e| match e {
        Expected::Made(_) => claim.is_some(),
        Expected::Deleting => claim.as_ref().is_none_or(|c| c.deleting),
        Expected::Gone => claim.is_none(),
    });
    let claim = match (expected, claim) {
        (Some(Expected::Made(made)), None) => Some(made),
        (Some(Expected::Deleting), Some(c)) => Some(ClaimView {
            deleting: true,
            ..c
        }),
        (Some(Expected::Gone), _) => None,
        (_, claim) => claim,
    };
    Ok((false, claim))
}

fn volume_view(pv: &crate::slim::Volume) -> VolumeView {
    let spec = &pv.spec;
    VolumeView {
        capacity_gib: spec
            .capacity
            .as_ref()
            .and_then(builders::parse_gib)
            .unwrap_or(0),
        zone: builders::affinity_zone(spec.node_affinity.as_deref()),
        file_system_id: spec
            .csi
            .as_ref()
            .map(|c| c.volume_handle.clone())
            .unwrap_or_default(),
        available: pv.seen_by_binder(),
        deleting: pv.meta().deletion_timestamp.is_some(),
    }
}

/// What matters of a claim the workspace owns (the API's answer).
pub(crate) fn claim_view(c: &PersistentVolumeClaim) -> ClaimView {
    view_of(
        c.meta(),
        c.status.as_ref().and_then(|s| s.phase.as_deref()),
        c.spec.as_ref().and_then(|s| s.storage_class_name.as_ref()),
    )
}

/// The same of the cached claim, read in place.
fn cached_claim_view(c: &crate::slim::Claim) -> ClaimView {
    view_of(
        &c.metadata,
        c.status.phase.as_deref(),
        c.spec.storage_class_name.as_ref(),
    )
}

fn view_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    phase: Option<&str>,
    storage_class: Option<&String>,
) -> ClaimView {
    ClaimView {
        bound: phase == Some("Bound"),
        deleting: meta.deletion_timestamp.is_some(),
        storage_class: storage_class.cloned(),
        selected_node: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(builders::SELECTED_NODE_ANNOTATION))
            .cloned(),
    }
}

/// The zone of the node the scheduler picked for a first-pod claim (one read of the Node).
pub(super) async fn node_zone(ctx: &Context, node: &str) -> Result<Option<String>, Error> {
    Ok(Api::<Node>::all(ctx.client.clone())
        .get_opt(node)
        .await
        .map_err(Step::ObserveKubernetes.kube())?
        .and_then(|n| n.labels().get(builders::ZONE_LABEL).cloned()))
}

/// The budget `ws` is checked against, when its class or its namespace sets limits: the
/// limits for its namespace and what the namespace's other workspaces of `class` use before
/// it (read from the watch caches: no API call).
pub(crate) fn budget_use(
    ctx: &Context,
    ws: &LustreWorkspace,
    class: &LustreWorkspaceClass,
    labels: &BTreeMap<String, String>,
) -> Option<Budget> {
    let ns = ws.namespace()?;
    let name = class.name_any();
    let key = format!(
        "{}{name}",
        lustre_api::constants::NAMESPACE_LIMITS_ANNOTATION_PREFIX
    );
    let annotation = ctx
        .caches
        .namespaces
        .get(&ObjectRef::new(&ns))
        .and_then(|n| n.annotations().get(&key).cloned());
    let limits =
        match budget::limits_for(class.spec.namespace_limits.as_ref(), annotation.as_deref()) {
            Ok(limits) => limits?,
            Err(e) => {
                tracing::warn!(
                    namespace = ns,
                    annotation = key,
                    error = e,
                    "namespace limits do not read: the class's apply"
                );
                class.spec.namespace_limits.clone()?
            }
        };
    let store = ctx.workspaces.get()?;
    // The namespace's workspaces not being deleted, decoded (from the metadata first).
    let all: Vec<LustreWorkspace> = store
        .kept()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| crate::kept::decoded(p))
        .collect();
    let peers: Vec<Peer> = all
        .iter()
        .filter(|p| matches!(resolve_class(ctx, p), Class::Found(c) if c.name_any() == name))
        .map(|p| {
            let status = p.status.as_ref();
            let holds = status.and_then(|s| s.file_system_id.as_ref()).map(|_| {
                status
                    .and_then(|s| s.storage_capacity_gib)
                    .map_or(i64::from(p.spec.capacity_gib()), i64::from)
            });
            Peer {
                workspace: p,
                cost_cents: budget::monthly_cents(
                    p,
                    class,
                    holds.unwrap_or(i64::from(p.spec.capacity_gib())),
                ),
                holds_gib: holds,
                admissible: p.validate(None).is_empty()
                    && p.validate_against_class(class, labels).is_empty(),
            }
        })
        .collect();
    let used = budget::usage(ws, &peers, &limits);
    Some(Budget { limits, used })
}
