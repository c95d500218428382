//! A JSON patch guarded by `test`s of what it replaces (finalizers, owner references), sent
//! against the object a reconcile was given and, when that copy turns out not to be the live
//! one, once more against the live object.
//!
//! A guarded patch makes a concurrent writer fail the patch instead of being overwritten. The
//! copy it is built from comes from a watch cache, which can lag this process's own writes
//! (found by the fault suite: a workspace's cached copy without the finalizer added a minute
//! before, every retry failing its test until the cache caught up). One GET of the live object
//! turns that into one more patch, or none when the live object needs nothing.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::error::{Error, Step};

/// Sends the patch `build` makes from `copy` (`None`: nothing to change). When its test fails
/// (422) or the write conflicts (409), reads the live object and sends what `build` makes from
/// that instead, once. With `removing`, an object already gone is what the patch was for (a
/// reconcile that started on a cache that had not yet seen an earlier one let it go).
pub(crate) async fn patch<K>(
    api: &Api<K>,
    copy: &K,
    step: Step,
    removing: bool,
    build: impl Fn(&K) -> Option<json_patch::Patch>,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let name = copy.name_any();
    let Some(patch) = build(copy) else {
        return Ok(());
    };
    let uid = copy.meta().uid.clone();
    let stale = match send(api, &name, uid.as_deref(), patch).await {
        Err(e) if removing && code(&e) == Some(404) => return Ok(()),
        Err(e) if matches!(code(&e), Some(422 | 409)) => e,
        other => return other.map_err(step.kube()),
    };
    // Another object of the same name (the copy's was deleted and the name used again) is
    // not the copy's: as good as gone.
    let live = match api.get_opt(&name).await.map_err(step.kube())? {
        Some(live) if live.meta().uid == uid => live,
        _ if removing => return Ok(()),
        _ => return Err(step.kube()(stale)),
    };
    let Some(patch) = build(&live) else {
        return Ok(());
    };
    match send(api, &name, uid.as_deref(), patch).await {
        Err(e) if removing && code(&e) == Some(404) => Ok(()),
        other => other.map_err(step.kube()),
    }
}

/// Sends `patch`, guarded by a test of the object's UID too, so it never lands on another
/// object of the same name.
async fn send<K>(
    api: &Api<K>,
    name: &str,
    uid: Option<&str>,
    mut patch: json_patch::Patch,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    if let Some(uid) = uid {
        let test: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": "/metadata/uid", "value": uid},
        ]))
        .expect("static patch shape");
        patch.0.splice(0..0, test.0);
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::<serde_json::Value>::Json(patch),
    )
    .await
    .map(|_| ())
}

fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(e) => Some(e.code),
        _ => None,
    }
}

/// The value a guarded patch tests a field for: the copy's, or null where the copy has none
/// (kube-apiserver passes a null test of an absent member: the first finalizer of every
/// object in the e2e stories on the real control plane is added so).
pub(crate) fn was(present: bool, value: serde_json::Value) -> serde_json::Value {
    if present {
        value
    } else {
        serde_json::Value::Null
    }
}
