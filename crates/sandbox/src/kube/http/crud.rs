//! Reads and writes of objects: list, create, delete-collection on a collection; get, update,
//! patch, delete on an item; server-side tables for kubectl's `get`.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::fields;
use super::super::select::{cell, json_path};
use super::super::store::{Propagation, labels_of};
use super::{
    ApiErr, AuditEntry, HashMap, KubeSandbox, Request, ResourceType, error_response, json_response,
    parse_body, partial, patch, selectors, wants_metadata, wants_table, watch,
};

/// The audit record of a request on a served resource, as the RBAC story reads it from
/// kube-apiserver's audit log (`handle` adds the user agent and the response code).
fn audit(verb: &str, rt: &ResourceType, ns: &str, name: &str, sub: &str) -> AuditEntry {
    AuditEntry {
        verb: verb.into(),
        resource: rt.qualified(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        user_agent: String::new(),
        code: 0,
    }
}

fn method_not_allowed() -> ApiErr {
    ApiErr::new(405, "MethodNotAllowed", "method not allowed")
}

/// A request on a collection: watch, list, create or delete-collection.
pub(super) fn collection(
    r: &Request,
    rt: &ResourceType,
    ns: &str,
) -> (Response, Option<AuditEntry>) {
    let watch = r.q.get("watch").is_some_and(|w| w == "1" || w == "true");
    let verb = match (r.method.as_str(), watch) {
        ("GET", true) => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("DELETE", _) => "deletecollection",
        _ => "unknown",
    };
    let resp = match verb {
        "watch" => watch::watch_response(r, rt, ns),
        "list" => list_response(r, rt, ns),
        "create" => match create(r, rt, ns) {
            Ok(obj) => json_response(StatusCode::CREATED, &obj),
            Err(e) => error_response(&e),
        },
        "deletecollection" => delete_collection(r, rt, ns),
        _ => error_response(&method_not_allowed()),
    };
    (resp, Some(audit(verb, rt, ns, "", "")))
}

fn create(r: &Request, rt: &ResourceType, ns: &str) -> Result<Value, ApiErr> {
    let mut obj = parse_body(r.headers, r.body)?;
    let manager = field_manager(r.q, r.headers);
    fields::record_update(None, &mut obj, &manager, "", &rt.api_version());
    r.sb.store().create(rt, ns, obj)
}

fn delete_collection(r: &Request, rt: &ResourceType, ns: &str) -> Response {
    let items = selected(r.sb, rt, ns, r.q);
    let mut store = r.sb.store();
    for item in &items {
        let _ = store.delete(
            rt,
            item["metadata"]["namespace"].as_str().unwrap_or_default(),
            item["metadata"]["name"].as_str().unwrap_or_default(),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    )
}

/// A request on an item or its subresource: get, update, patch or delete.
pub(super) fn item(
    r: &Request,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: &str,
) -> (Response, Option<AuditEntry>) {
    let verb = match r.method.as_str() {
        "GET" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "unknown",
    };
    let status_only = sub == "status";
    let mut created = false;
    let result = match verb {
        "get" => get(r, rt, ns, name),
        "update" => update(r, rt, ns, name, status_only),
        "patch" => {
            let existed = r.sb.store().get(rt, ns, name).is_ok();
            let result = patch::patch(r, rt, ns, name, status_only);
            created = !existed && result.is_ok();
            result
        }
        "delete" => delete(r, rt, ns, name),
        _ => Err(method_not_allowed()),
    };
    let resp = match result {
        // An apply that created the object answers 201, as kube-apiserver does.
        Ok(obj) if created => json_response(StatusCode::CREATED, &obj),
        Ok(obj) => json_response(StatusCode::OK, &obj),
        Err(e) => error_response(&e),
    };
    (resp, Some(audit(verb, rt, ns, name, sub)))
}

fn get(r: &Request, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiErr> {
    let (found, rv) = {
        let store = r.sb.store();
        (store.get(rt, ns, name), store.resource_version())
    };
    let obj = found?;
    Ok(if wants_table(r.headers) {
        table(rt, &[obj], rv, true)
    } else {
        obj
    })
}

fn update(
    r: &Request,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Value, ApiErr> {
    let mut obj = parse_body(r.headers, r.body)?;
    let mut store = r.sb.store();
    if let Ok(before) = store.get(rt, ns, name) {
        fields::record_update(
            Some(&before),
            &mut obj,
            &field_manager(r.q, r.headers),
            if status_only { "status" } else { "" },
            &rt.api_version(),
        );
    }
    store.update(rt, ns, name, obj, status_only)
}

fn delete(r: &Request, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiErr> {
    let options: Value = serde_json::from_slice(r.body).unwrap_or(Value::Null);
    let policy = options["propagationPolicy"]
        .as_str()
        .or(r.q.get("propagationPolicy").map(String::as_str))
        .or(
            // Deprecated `orphanDependents: true`.
            (options["orphanDependents"] == true).then_some("Orphan"),
        );
    r.sb.store()
        .delete_with(rt, ns, name, Propagation::parse(policy))
}

/// The field manager of a write: the `fieldManager` parameter, else the client's user agent
/// up to its first `/` (kube-apiserver's default).
pub(super) fn field_manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
    q.get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .and_then(|ua| ua.split('/').next())
                .filter(|m| !m.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

fn selected(
    sb: &KubeSandbox,
    rt: &ResourceType,
    ns: &str,
    q: &HashMap<String, String>,
) -> Vec<Value> {
    let (labels, fields) = selectors(q);
    sb.store()
        .list(rt, ns)
        .into_iter()
        .filter(|o| labels.matches(&labels_of(o)) && fields.matches(o))
        .collect()
}

/// A list, as whole objects, a table or metadata only (as the client asked).
fn list_response(r: &Request, rt: &ResourceType, ns: &str) -> Response {
    let rv = r.sb.store().resource_version();
    let items = selected(r.sb, rt, ns, r.q);
    // (each `sb.store()` above is its own short lock: the store's mutex is not reentrant)
    if wants_table(r.headers) {
        return json_response(StatusCode::OK, &table(rt, &items, rv, true));
    }
    if wants_metadata(r.headers) {
        let items: Vec<Value> = items.iter().map(partial).collect();
        return json_response(
            StatusCode::OK,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}

/// A `meta.k8s.io/v1` Table from the kind's printer columns.
pub(super) fn table(rt: &ResourceType, items: &[Value], rv: u64, with_columns: bool) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let custom_age = rt
        .columns
        .iter()
        .any(|c| c.json_path == ".metadata.creationTimestamp");
    for c in &rt.columns {
        columns.push(json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
    }
    if !custom_age {
        columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "Time since creation", "priority": 0}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &rt.columns {
                let v = cell(&json_path(o, &c.json_path));
                cells.push(if c.type_ == "date" { age(&v) } else { v });
            }
            if !custom_age {
                cells.push(age(&o["metadata"]["creationTimestamp"]));
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "rows": rows});
    if with_columns {
        t["columnDefinitions"] = Value::Array(columns);
    }
    t
}

/// A timestamp as kubectl shows ages: `45s`, `3m12s`, `5h`, `2d4h`.
fn age(ts: &Value) -> Value {
    let Some(t) = ts.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return json!("<unknown>");
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let text = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    };
    json!(text)
}
