//! PATCH: server-side apply (with field ownership), JSON patch, merge patch and strategic
//! merge patch, on an object or its status.

use axum::http::header;
use serde_json::Value;

use super::super::fields;
use super::super::select::strategic_merge;
use super::super::store::{ApiErr, Store};
use super::crud::field_manager;
use super::{Request, ResourceType};

/// Applies the request's patch to the object (or its status) by its content type.
pub(super) fn patch(
    r: &Request,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Value, ApiErr> {
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut store = r.sb.store();
    let current = store.get(rt, ns, name);
    if ct.contains("apply-patch") {
        return apply(r, &mut store, rt, (ns, name), current, status_only);
    }
    let mut obj = current.clone()?;
    let patch: Value = serde_json::from_slice(r.body)
        .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid patch: {e}")))?;
    let precondition = patch["metadata"]["resourceVersion"].clone();
    if ct.contains("json-patch") {
        // As in kube-apiserver, `test` of a missing path against null succeeds (kube-rs'
        // finalizer helper sends it before adding the first finalizer).
        let ops: Vec<Value> = patch
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|op| {
                !(op["op"] == "test"
                    && op["value"].is_null()
                    && op["path"]
                        .as_str()
                        .and_then(|p| obj.pointer(p))
                        .is_none_or(Value::is_null))
            })
            .collect();
        let p: json_patch::Patch = serde_json::from_value(Value::Array(ops))
            .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid JSON patch: {e}")))?;
        json_patch::patch(&mut obj, &p)
            .map_err(|e| ApiErr::new(422, "Invalid", format!("JSON patch failed: {e}")))?;
    } else if ct.contains("strategic-merge-patch") {
        strategic_merge(&mut obj, &patch);
    } else {
        json_patch::merge(&mut obj, &patch);
    }
    // A patch applies to the latest version unless it names one.
    obj["metadata"]["resourceVersion"] = precondition;
    if let Ok(before) = &current {
        fields::record_update(
            Some(before),
            &mut obj,
            &field_manager(r.q, r.headers),
            if status_only { "status" } else { "" },
            &rt.api_version(),
        );
    }
    store.update(rt, ns, name, obj, status_only)
}

/// Server-side apply: creates the object when it is missing (not for status), else merges
/// the applied configuration by field ownership; a conflict with another manager is a 409
/// unless forced.
fn apply(
    r: &Request,
    store: &mut Store,
    rt: &ResourceType,
    (ns, name): (&str, &str),
    current: Result<Value, ApiErr>,
    status_only: bool,
) -> Result<Value, ApiErr> {
    let applied: Value = serde_yaml::from_slice(r.body)
        .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid apply patch: {e}")))?;
    let manager = r.q.get("fieldManager").cloned().unwrap_or_default();
    if manager.is_empty() {
        return Err(ApiErr::new(
            422,
            "Invalid",
            "PATCH with apply requires fieldManager",
        ));
    }
    let force = r.q.get("force").is_some_and(|f| f == "true");
    let subresource = if status_only { "status" } else { "" };
    let creating = matches!(&current, Err(e) if e.code == 404 && !status_only);
    let current = match current {
        Ok(obj) => Some(obj),
        Err(_) if creating => None,
        Err(e) => return Err(e),
    };
    let mut obj = fields::apply(
        current.as_ref(),
        &applied,
        &manager,
        force,
        subresource,
        &rt.api_version(),
    )
    .map_err(|c| ApiErr::new(409, "Conflict", c.message()))?;
    if creating {
        store.create(rt, ns, obj)
    } else {
        obj["metadata"]["resourceVersion"] = Value::Null;
        store.update(rt, ns, name, obj, status_only)
    }
}
