//! The workspaces as the operator's own watch keeps them ([`Kept`]): the metadata as a
//! struct (what wakes, sweeps and look-ups by name read), the spec and status as one JSON
//! buffer, decoded when a reconcile or a look-up reads the workspace ([`Workspaces`]), kept
//! compressed against recent workspaces' ([`crate::packed`]).
//!
//! A workspace kept whole took about 4.2 KB of heap (heaptrack at 1,000 workspaces,
//! docs/benchmarks.md): 1,440 bytes inline before a string is set, and its conditions alone
//! are four strings each. As JSON the same spec and status are one allocation of about a
//! third of that; decoding it costs a reconcile microseconds, and a reconcile reads it once.

use std::sync::{Arc, LazyLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use lustre_api::constants::reason::OVER_BUDGET;
use lustre_api::{LustreWorkspace, LustreWorkspaceSpec, LustreWorkspaceStatus};
use serde::{Deserialize, Serialize};

use crate::packed::{Packed, Packer};

/// The reference the kept workspaces' JSON is compressed with.
static BODIES: LazyLock<Packer> = LazyLock::new(Packer::new);

/// A workspace as kept: its metadata, what the wakes ask of every workspace at once
/// ([`Facts`]), and its spec and status as JSON.
#[derive(Clone, Debug)]
pub struct Kept {
    pub metadata: ObjectMeta,
    pub facts: Facts,
    body: Packed,
}

/// What a class change, or a deletion freeing room in a budget, asks of every workspace:
/// read without decoding thousands of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// `spec.className`.
    pub class_named: Option<Box<str>>,
    /// `status.className`: the class it was given (the default, when it names none).
    pub class_given: Option<Box<str>>,
    /// Its Ready condition says it waits for room in a budget.
    pub over_budget: bool,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    spec: &'a LustreWorkspaceSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: &'a Option<LustreWorkspaceStatus>,
}

#[derive(Deserialize)]
struct Body {
    spec: LustreWorkspaceSpec,
    #[serde(default)]
    status: Option<LustreWorkspaceStatus>,
}

impl Kept {
    /// Keeps a workspace (its metadata slimmed by the watch before).
    pub fn keep(ws: LustreWorkspace) -> Self {
        let body = serde_json::to_vec(&BodyRef {
            spec: &ws.spec,
            status: &ws.status,
        })
        .expect("a workspace's spec and status serialize");
        let status = ws.status.as_ref();
        let facts = Facts {
            class_named: ws.spec.class_name.as_deref().map(Into::into),
            class_given: status.and_then(|s| s.class_name.as_deref()).map(Into::into),
            over_budget: status
                .and_then(|s| s.conditions.first())
                .is_some_and(|c| c.reason == OVER_BUDGET),
        };
        Self {
            metadata: ws.metadata,
            facts,
            body: BODIES.pack(&body),
        }
    }

    /// The workspace whole again.
    pub fn workspace(&self) -> Result<LustreWorkspace, serde_json::Error> {
        let body = self
            .body
            .unpack()
            .map_err(<serde_json::Error as serde::de::Error>::custom)?;
        let Body { spec, status } = serde_json::from_slice(&body)?;
        Ok(LustreWorkspace {
            metadata: self.metadata.clone(),
            spec,
            status,
        })
    }
}

/// Read as a `LustreWorkspace` (the watch's answers), kept as [`Kept`].
impl<'de> Deserialize<'de> for Kept {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LustreWorkspace::deserialize(d).map(Self::keep)
    }
}

resource_as!(Kept, LustreWorkspace, k8s_openapi::NamespaceResourceScope);

/// A workspace's reference as the kept store's.
pub(crate) fn kept_ref(r: &ObjectRef<LustreWorkspace>) -> ObjectRef<Kept> {
    r.clone().into_kind_unchecked(())
}

/// The workspaces' own watch cache, read as workspaces.
#[derive(Clone, Debug)]
pub struct Workspaces(pub(crate) Store<Kept>);

impl Workspaces {
    /// The workspace named, decoded.
    pub fn get(&self, r: &ObjectRef<LustreWorkspace>) -> Option<Arc<LustreWorkspace>> {
        let kept = self.0.get(&kept_ref(r))?;
        decoded(&kept).map(Arc::new)
    }

    /// Every workspace as kept (metadata and facts; [`Kept::workspace`] for the rest).
    pub fn kept(&self) -> Vec<Arc<Kept>> {
        self.0.state()
    }

    /// Waits for the first full list.
    pub async fn wait_until_ready(&self) -> bool {
        self.0.wait_until_ready().await.is_ok()
    }
}

/// A kept workspace decoded; `None` (logged) when its JSON does not read back, which only a
/// change of the types between writing and reading it could cause.
pub(crate) fn decoded(kept: &Kept) -> Option<LustreWorkspace> {
    kept.workspace()
        .inspect_err(|e| {
            tracing::error!(
                workspace.namespace = kept.metadata.namespace.as_deref().unwrap_or_default(),
                workspace.name = kept.metadata.name.as_deref().unwrap_or_default(),
                error = e as &dyn std::error::Error,
                "a cached workspace does not decode"
            )
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace comes back whole from what is kept, and its facts are read from it.
    #[test]
    fn a_kept_workspace_reads_back_whole() {
        let ws: LustreWorkspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
            "metadata": {"name": "w", "namespace": "ml", "uid": "u", "finalizers": ["f"]},
            "spec": {"deploymentType": "SCRATCH_2", "storageCapacityGiB": 1200},
            "status": {"phase": "Pending", "className": "fast", "fileSystemId": "fs-1",
                       "conditions": [{"type": "Ready", "status": "False", "reason": OVER_BUDGET,
                                       "message": "m", "lastTransitionTime": "2026-12-05T00:00:00Z"}]}
        }))
        .expect("a workspace");
        let kept: Kept =
            serde_json::from_value(serde_json::to_value(&ws).expect("json")).expect("kept");
        assert_eq!(kept.workspace().expect("decodes"), ws);
        assert_eq!(
            kept.facts,
            Facts {
                class_named: None,
                class_given: Some("fast".into()),
                over_budget: true,
            }
        );
        assert_eq!(
            ObjectRef::from_obj(&kept),
            kept_ref(&ObjectRef::from_obj(&ws))
        );
    }
}
