//! The HTTP face of the sandbox API server: discovery, OpenAPI v3, CRUD, patches, watch
//! streams and server-side tables, in the shapes real `kubectl` and kube-rs expect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::fields;
use super::registry::{ResourceType, api_resource};
use super::select::{FieldSelector, LabelSelector, cell, json_path, strategic_merge};
use super::store::Propagation;
use super::store::{ApiErr, AuditEntry, Change};
use super::{KubeSandbox, SERVER_VERSION};

/// What a path names.
#[derive(Debug, PartialEq)]
enum Target {
    Version,
    ApiVersions,
    ApiGroups,
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Collection {
        group: String,
        version: String,
        plural: String,
        ns: String,
    },
    Item {
        group: String,
        version: String,
        plural: String,
        ns: String,
        name: String,
        sub: String,
    },
    Unknown,
}

fn parse_path(path: &str) -> Target {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Target::Version,
        ["api"] => return Target::ApiVersions,
        ["apis"] => return Target::ApiGroups,
        ["openapi", "v2"] => return Target::OpenApiV2,
        ["openapi", "v3"] => return Target::OpenApiV3Index,
        ["openapi", "v3", "api", v] => {
            return Target::OpenApiV3 {
                group: String::new(),
                version: v.to_string(),
            };
        }
        ["openapi", "v3", "apis", g, v] => {
            return Target::OpenApiV3 {
                group: g.to_string(),
                version: v.to_string(),
            };
        }
        ["api", v] => {
            return Target::ResourceList {
                group: String::new(),
                version: v.to_string(),
            };
        }
        ["apis", g, v] => {
            return Target::ResourceList {
                group: g.to_string(),
                version: v.to_string(),
            };
        }
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return Target::Unknown,
    };
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] => ("", "namespaces", *ns, *sub),
        ["namespaces", ns, plural] => (*ns, *plural, "", ""),
        ["namespaces", ns, plural, name] => (*ns, *plural, *name, ""),
        ["namespaces", ns, plural, name, sub] => (*ns, *plural, *name, *sub),
        [plural] => ("", *plural, "", ""),
        [plural, name] => ("", *plural, *name, ""),
        [plural, name, sub] => ("", *plural, *name, *sub),
        _ => return Target::Unknown,
    };
    if name.is_empty() {
        Target::Collection {
            group,
            version,
            plural: plural.into(),
            ns: ns.into(),
        }
    } else {
        Target::Item {
            group,
            version,
            plural: plural.into(),
            ns: ns.into(),
            name: name.into(),
            sub: sub.into(),
        }
    }
}

/// The `labelSelector` and `fieldSelector` of a list or watch request.
fn selectors(q: &HashMap<String, String>) -> (LabelSelector, FieldSelector) {
    let labels = q
        .get("labelSelector")
        .and_then(|s| LabelSelector::parse(s).ok())
        .unwrap_or_default();
    let fields = q
        .get("fieldSelector")
        .map(|s| FieldSelector::parse(s))
        .unwrap_or_default();
    (labels, fields)
}

/// kube-apiserver's answer for a path it does not serve.
fn not_found() -> ApiErr {
    ApiErr::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// The resource type served at `group/version/plural`.
fn served_type(sb: &KubeSandbox, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
    sb.store()
        .find_type(group, plural)
        .filter(|t| t.version == version)
        .cloned()
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiErr) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}

fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap_or_default()
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().unwrap_or_default().contains("as=Table"))
}

/// Whether the client asked for metadata only (`as=PartialObjectMetadata[List]`, what
/// kube-rs's `metadata_watcher` and client-go's metadata informers send).
fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .unwrap_or_default()
                .contains("as=PartialObjectMetadata")
        })
}

/// An object reduced to its metadata, as `meta.k8s.io/v1` PartialObjectMetadata.
fn partial(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]})
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiErr> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.contains("protobuf") {
        // `kubectl create namespace|configmap|secret|serviceaccount` (typed clients prefer
        // protobuf); `kubectl apply -f` sends JSON.
        return super::protobuf::decode(body).map_err(|why| {
            ApiErr::new(
                415,
                "UnsupportedMediaType",
                format!("the body of type {ct} is unsupported: {why}"),
            )
        });
    }
    if ct.contains("cbor") {
        // kube-apiserver's answer to an encoding it does not serve; client-go then falls
        // back to JSON.
        return Err(ApiErr::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of type {ct} is unsupported: the sandbox API server speaks JSON, YAML and protobuf for a few core kinds"
            ),
        ));
    }
    if ct.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid JSON: {e}")))
    }
}

/// The single entry point: routes by path and method.
pub async fn handle(
    State(sb): State<KubeSandbox>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = parse_path(uri.path());
    let q = query(&uri);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let injected = matches!(target, Target::Item { .. })
        && matches!(method.as_str(), "PUT" | "PATCH")
        && !agent.starts_with("kubectl")
        && sb.store().faults.conflict();
    let (response, audit) = if injected {
        let mut e = ApiErr::new(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected by the sandbox)",
        );
        e.causes.clear();
        (error_response(&e), None)
    } else {
        route(&sb, &method, target, &q, &headers, body).await
    };
    if let Some(mut entry) = audit {
        entry.user_agent = agent;
        entry.code = response.status().as_u16();
        sb.store().audit.push(entry);
    }
    response
}

async fn route(
    sb: &KubeSandbox,
    method: &Method,
    target: Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> (Response, Option<AuditEntry>) {
    match target {
        Target::Version => (json_response(StatusCode::OK, &SERVER_VERSION.clone()), None),
        Target::ApiVersions => (
            json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": sb.address()}]}),
            ),
            None,
        ),
        Target::ApiGroups => (json_response(StatusCode::OK, &api_groups(sb)), None),
        Target::ResourceList { group, version } => (resource_list(sb, &group, &version), None),
        Target::OpenApiV2 => (
            error_response(&ApiErr::new(
                404,
                "NotFound",
                "the sandbox serves OpenAPI v3 only (/openapi/v3)",
            )),
            None,
        ),
        Target::OpenApiV3Index => (json_response(StatusCode::OK, &openapi_index(sb)), None),
        Target::OpenApiV3 { group, version } => (
            json_response(StatusCode::OK, &openapi_doc(sb, &group, &version)),
            None,
        ),
        Target::Unknown => (error_response(&not_found()), None),
        Target::Collection {
            group,
            version,
            plural,
            ns,
        } => {
            let Some(rt) = served_type(sb, &group, &version, &plural) else {
                return (error_response(&not_found()), None);
            };
            let watch = q.get("watch").is_some_and(|w| w == "1" || w == "true");
            let verb = match (method.as_str(), watch) {
                ("GET", true) => "watch",
                ("GET", false) => "list",
                ("POST", _) => "create",
                ("DELETE", _) => "deletecollection",
                _ => "unknown",
            };
            let audit = AuditEntry {
                verb: verb.into(),
                resource: rt.qualified(),
                subresource: String::new(),
                namespace: ns.clone(),
                name: String::new(),
                user_agent: String::new(),
                code: 0,
            };
            let resp = match verb {
                "watch" => watch_response(
                    sb,
                    &rt,
                    &ns,
                    q,
                    wants_table(headers),
                    wants_metadata(headers),
                ),
                "list" => list_response(
                    sb,
                    &rt,
                    &ns,
                    q,
                    wants_table(headers),
                    wants_metadata(headers),
                ),
                "create" => match parse_body(headers, &body).and_then(|mut obj| {
                    fields::record_update(
                        None,
                        &mut obj,
                        &field_manager(q, headers),
                        "",
                        &rt.api_version(),
                    );
                    sb.store().create(&rt, &ns, obj)
                }) {
                    Ok(obj) => json_response(StatusCode::CREATED, &obj),
                    Err(e) => error_response(&e),
                },
                "deletecollection" => {
                    let items = selected(sb, &rt, &ns, q);
                    let mut store = sb.store();
                    for item in &items {
                        let _ = store.delete(
                            &rt,
                            item["metadata"]["namespace"].as_str().unwrap_or_default(),
                            item["metadata"]["name"].as_str().unwrap_or_default(),
                        );
                    }
                    json_response(
                        StatusCode::OK,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                    )
                }
                _ => error_response(&ApiErr::new(405, "MethodNotAllowed", "method not allowed")),
            };
            (resp, Some(audit))
        }
        Target::Item {
            group,
            version,
            plural,
            ns,
            name,
            sub,
        } => {
            let Some(rt) = served_type(sb, &group, &version, &plural) else {
                return (error_response(&not_found()), None);
            };
            let verb = match method.as_str() {
                "GET" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "unknown",
            };
            let audit = AuditEntry {
                verb: verb.into(),
                resource: rt.qualified(),
                subresource: sub.clone(),
                namespace: ns.clone(),
                name: name.clone(),
                user_agent: String::new(),
                code: 0,
            };
            let status_only = sub == "status";
            let mut created = false;
            let result = match verb {
                "get" => {
                    let (found, rv) = {
                        let store = sb.store();
                        (store.get(&rt, &ns, &name), store.resource_version())
                    };
                    found.map(|o| {
                        if wants_table(headers) {
                            table(&rt, &[o], rv, true)
                        } else {
                            o
                        }
                    })
                }
                "update" => parse_body(headers, &body).and_then(|mut obj| {
                    let mut store = sb.store();
                    if let Ok(before) = store.get(&rt, &ns, &name) {
                        fields::record_update(
                            Some(&before),
                            &mut obj,
                            &field_manager(q, headers),
                            if status_only { "status" } else { "" },
                            &rt.api_version(),
                        );
                    }
                    store.update(&rt, &ns, &name, obj, status_only)
                }),
                "patch" => {
                    let existed = sb.store().get(&rt, &ns, &name).is_ok();
                    let result = patch(sb, &rt, &ns, &name, status_only, headers, &body, q);
                    created = !existed && result.is_ok();
                    result
                }
                "delete" => {
                    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let policy = options["propagationPolicy"]
                        .as_str()
                        .or(q.get("propagationPolicy").map(String::as_str))
                        .or(
                            // Deprecated `orphanDependents: true`.
                            (options["orphanDependents"] == true).then_some("Orphan"),
                        );
                    sb.store()
                        .delete_with(&rt, &ns, &name, Propagation::parse(policy))
                }
                _ => Err(ApiErr::new(405, "MethodNotAllowed", "method not allowed")),
            };
            let resp = match result {
                // An apply that created the object answers 201, as kube-apiserver does.
                Ok(obj) if created => json_response(StatusCode::CREATED, &obj),
                Ok(obj) => json_response(StatusCode::OK, &obj),
                Err(e) => error_response(&e),
            };
            (resp, Some(audit))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn patch(
    sb: &KubeSandbox,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    status_only: bool,
    headers: &HeaderMap,
    body: &Bytes,
    q: &HashMap<String, String>,
) -> Result<Value, ApiErr> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut store = sb.store();
    let current = store.get(rt, ns, name);
    if ct.contains("apply-patch") {
        let applied: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiErr::new(400, "BadRequest", format!("invalid apply patch: {e}")))?;
        let manager = q.get("fieldManager").cloned().unwrap_or_default();
        if manager.is_empty() {
            return Err(ApiErr::new(
                422,
                "Invalid",
                "PATCH with apply requires fieldManager",
            ));
        }
        let force = q.get("force").is_some_and(|f| f == "true");
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
        return if creating {
            store.create(rt, ns, obj)
        } else {
            obj["metadata"]["resourceVersion"] = Value::Null;
            store.update(rt, ns, name, obj, status_only)
        };
    }
    let mut obj = current.clone()?;
    let patch: Value = serde_json::from_slice(body)
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
            &field_manager(q, headers),
            if status_only { "status" } else { "" },
            &rt.api_version(),
        );
    }
    store.update(rt, ns, name, obj, status_only)
}

/// The field manager of a write: the `fieldManager` parameter, else the client's user agent
/// up to its first `/` (kube-apiserver's default).
fn field_manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
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
        .filter(|o| labels.matches(&super::store::labels_of(o)) && fields.matches(o))
        .collect()
}

fn list_response(
    sb: &KubeSandbox,
    rt: &ResourceType,
    ns: &str,
    q: &HashMap<String, String>,
    as_table: bool,
    as_metadata: bool,
) -> Response {
    let rv = sb.store().resource_version();
    let items = selected(sb, rt, ns, q);
    // (each `sb.store()` above is its own short lock: the store's mutex is not reentrant)
    if as_table {
        return json_response(StatusCode::OK, &table(rt, &items, rv, true));
    }
    if as_metadata {
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
fn table(rt: &ResourceType, items: &[Value], rv: u64, with_columns: bool) -> Value {
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

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn gone(rv: u64) -> Bytes {
    watch_line(
        "ERROR",
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("too old resource version: {rv}"), "reason": "Expired", "code": 410}),
    )
}

fn watch_response(
    sb: &KubeSandbox,
    rt: &ResourceType,
    ns: &str,
    q: &HashMap<String, String>,
    as_table: bool,
    as_metadata: bool,
) -> Response {
    let (labels, fields) = selectors(q);
    let bookmarks = q
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let mut timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    if let Some(lifetime) = sb.store().faults.watch_lifetime {
        timeout = timeout.min(lifetime);
    }
    // A streaming list (kubectl 1.37's reflectors, client-go's WatchListClient): the current
    // objects as ADDED, then a bookmark annotated `k8s.io/initial-events-end`, then changes.
    let initial_events = q
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true" || v == "1");
    let requested: Option<u64> = q
        .get("resourceVersion")
        .filter(|r| !r.is_empty() && *r != "0")
        .and_then(|r| r.parse().ok())
        .filter(|_| !initial_events);
    let resource = rt.qualified();
    let rt2 = rt.clone();
    let ns = ns.to_string();
    let matches = {
        let resource = resource.clone();
        let ns = ns.clone();
        move |c: &Change| {
            c.resource == resource
                && (ns.is_empty() || c.namespace == ns)
                && labels.matches(&super::store::labels_of(&c.object))
                && fields.matches(&c.object)
        }
    };

    let (backlog, rx, start_rv, expired) = {
        let store = sb.store();
        let rx = store.subscribe();
        let now = store.resource_version();
        match requested {
            Some(rv) => match store.changes_since(rv) {
                Some(changes) => (
                    changes
                        .into_iter()
                        .filter(|c| matches(c))
                        .map(|c| (c.kind, c.object.clone(), c.rv))
                        .collect::<Vec<_>>(),
                    rx,
                    rv,
                    false,
                ),
                None => (vec![], rx, rv, true),
            },
            None => {
                let initial: Vec<(&'static str, Value, u64)> = store
                    .list(rt, &ns)
                    .into_iter()
                    .map(|o| Change {
                        rv: now,
                        resource: resource.clone(),
                        namespace: o["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .into(),
                        kind: "ADDED",
                        object: o,
                    })
                    .filter(|c| matches(c))
                    .map(|c| (c.kind, c.object, c.rv))
                    .collect();
                (initial, rx, now, false)
            }
        }
    };
    let render = move |kind: &str, obj: &Value, first: bool| -> Bytes {
        if as_table && kind != "ERROR" && kind != "BOOKMARK" {
            watch_line(kind, &table(&rt2, std::slice::from_ref(obj), 0, first))
        } else if as_metadata && kind != "ERROR" && kind != "BOOKMARK" {
            watch_line(kind, &partial(obj))
        } else {
            watch_line(kind, obj)
        }
    };
    if expired {
        let body = Body::from_stream(futures::stream::once(async move {
            Ok::<_, std::convert::Infallible>(gone(start_rv))
        }));
        return chunked(body);
    }
    struct W<F, R> {
        rx: tokio::sync::broadcast::Receiver<Arc<Change>>,
        backlog: std::collections::VecDeque<(&'static str, Value, u64)>,
        last_rv: u64,
        deadline: tokio::time::Instant,
        /// The end-of-initial-events bookmark is still owed (after the backlog).
        initial_end: bool,
        next_bookmark: tokio::time::Instant,
        matches: F,
        render: R,
        first: bool,
        done: bool,
        bookmarks: bool,
        api_version: String,
        kind: String,
    }
    let state = W {
        rx,
        backlog: backlog.into(),
        last_rv: start_rv,
        deadline: tokio::time::Instant::now() + timeout,
        initial_end: initial_events,
        next_bookmark: tokio::time::Instant::now() + BOOKMARK_EVERY,
        matches,
        render,
        first: true,
        done: false,
        bookmarks,
        api_version: rt.api_version(),
        kind: rt.kind.clone(),
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some((kind, obj, rv)) = s.backlog.pop_front() {
            s.last_rv = s.last_rv.max(rv);
            let out = (s.render)(kind, &obj, s.first);
            s.first = false;
            return Some((Ok::<_, std::convert::Infallible>(out), s));
        }
        if s.initial_end {
            s.initial_end = false;
            let bm = json!({"kind": s.kind, "apiVersion": s.api_version, "metadata": {"resourceVersion": s.last_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            return Some((Ok(watch_line("BOOKMARK", &bm)), s));
        }
        loop {
            // A bookmark on a fixed beat: changes of other resources do not put it off.
            tokio::select! {
                _ = tokio::time::sleep_until(s.deadline) => return None,
                _ = tokio::time::sleep_until(s.next_bookmark), if s.bookmarks => {
                    s.next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
                    let bm = json!({"kind": s.kind, "apiVersion": s.api_version, "metadata": {"resourceVersion": s.last_rv.to_string()}});
                    return Some((Ok(watch_line("BOOKMARK", &bm)), s));
                }
                msg = s.rx.recv() => match msg {
                    Ok(c) if c.rv > s.last_rv && (s.matches)(&c) => {
                        s.last_rv = c.rv;
                        let out = (s.render)(c.kind, &c.object, s.first);
                        s.first = false;
                        return Some((Ok(out), s));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        s.done = true;
                        return Some((Ok(gone(s.last_rv)), s));
                    }
                    Err(_) => return None,
                }
            }
        }
    });
    chunked(Body::from_stream(stream.boxed()))
}

fn chunked(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn api_groups(sb: &KubeSandbox) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in sb.store().types().iter().filter(|t| !t.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    json!({
        "kind": "APIGroupList", "apiVersion": "v1",
        "groups": groups.iter().map(|(g, vs)| json!({
            "name": g,
            "versions": vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect::<Vec<_>>(),
            "preferredVersion": {"groupVersion": format!("{g}/{}", vs[0]), "version": vs[0]},
        })).collect::<Vec<_>>(),
    })
}

fn resource_list(sb: &KubeSandbox, group: &str, version: &str) -> Response {
    let store = sb.store();
    let types: Vec<&ResourceType> = store
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return error_response(&not_found());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": types.iter().flat_map(|t| api_resource(t)).collect::<Vec<_>>()}),
    )
}

fn openapi_index(sb: &KubeSandbox) -> Value {
    let mut paths = serde_json::Map::new();
    let store = sb.store();
    let hash = store.types().len();
    for t in store.types() {
        let (key, url) = if t.group.is_empty() {
            (
                format!("api/{}", t.version),
                format!("/openapi/v3/api/{}", t.version),
            )
        } else {
            (
                format!("apis/{}/{}", t.group, t.version),
                format!("/openapi/v3/apis/{}/{}", t.group, t.version),
            )
        };
        paths.insert(
            key,
            json!({"serverRelativeURL": format!("{url}?hash=sandbox{hash}")}),
        );
    }
    json!({"paths": paths})
}

/// Schema name as kube-apiserver publishes it (`io.k8s.api.core.v1.Pod`,
/// `dev.lustre.workspaces.v1alpha1.LustreWorkspace`).
fn schema_name(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("io.k8s.api.core.{}.{}", t.version, t.kind)
    } else {
        let reversed: Vec<&str> = t.group.split('.').rev().collect();
        format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
    }
}

/// The operations kubectl inspects: a PATCH tagged with the kind's GVK and the
/// `fieldValidation` parameter tells it the server validates fields itself (server-side
/// field validation), so it sends `fieldValidation=Strict` instead of validating client-side.
fn openapi_paths(t: &ResourceType) -> (String, Value) {
    let prefix = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let path = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
    } else {
        format!("{prefix}/{}/{{name}}", t.plural)
    };
    let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    let op = |verb: &str| {
        json!({
            "operationId": format!("{verb}{}", t.kind),
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk,
        })
    };
    (
        path,
        json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
    )
}

fn openapi_doc(sb: &KubeSandbox, group: &str, version: &str) -> Value {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    for t in sb
        .store()
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let (path, item) = openapi_paths(t);
        paths.insert(path, item);
        let mut schema = t.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.entry("apiVersion").or_insert(json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            props.entry("kind").or_insert(json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            props.entry("metadata").or_insert(json!({"type": "object", "description": "Standard object's metadata.", "x-kubernetes-preserve-unknown-fields": true}));
        }
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": t.group, "version": t.version, "kind": t.kind}]);
        schemas.insert(schema_name(t), schema);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (lustre-sandbox)", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_what_kubectl_and_kube_rs_ask_for() {
        assert_eq!(
            parse_path("/api/v1/namespaces/ml/persistentvolumeclaims"),
            Target::Collection {
                group: "".into(),
                version: "v1".into(),
                plural: "persistentvolumeclaims".into(),
                ns: "ml".into()
            }
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/ml"),
            Target::Item {
                group: "".into(),
                version: "v1".into(),
                plural: "namespaces".into(),
                ns: "".into(),
                name: "ml".into(),
                sub: "".into()
            }
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/ml/status"),
            Target::Item {
                group: "".into(),
                version: "v1".into(),
                plural: "namespaces".into(),
                ns: "".into(),
                name: "ml".into(),
                sub: "status".into()
            }
        );
        assert_eq!(
            parse_path(
                "/apis/workspaces.lustre.dev/v1alpha1/namespaces/ml/lustreworkspaces/x/status"
            ),
            Target::Item {
                group: "workspaces.lustre.dev".into(),
                version: "v1alpha1".into(),
                plural: "lustreworkspaces".into(),
                ns: "ml".into(),
                name: "x".into(),
                sub: "status".into()
            }
        );
        assert_eq!(
            parse_path("/apis/storage.k8s.io/v1/storageclasses"),
            Target::Collection {
                group: "storage.k8s.io".into(),
                version: "v1".into(),
                plural: "storageclasses".into(),
                ns: "".into()
            }
        );
        assert_eq!(parse_path("/apis"), Target::ApiGroups);
        assert_eq!(
            parse_path("/openapi/v3/apis/workspaces.lustre.dev/v1alpha1"),
            Target::OpenApiV3 {
                group: "workspaces.lustre.dev".into(),
                version: "v1alpha1".into()
            }
        );
    }
}
