//! OpenAPI v3: the index of group-versions and each one's document, which kubectl reads for
//! `explain`, server-side field validation and the shapes of its patches.

use serde_json::{Value, json};

use super::{KubeSandbox, ResourceType, SERVER_VERSION};

/// `/openapi/v3`: a document per group-version.
pub(super) fn index(sb: &KubeSandbox) -> Value {
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
fn paths_of(t: &ResourceType) -> (String, Value) {
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

/// `/openapi/v3/<group-version>`: the schemas and operations of one group-version.
pub(super) fn document(sb: &KubeSandbox, group: &str, version: &str) -> Value {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    for t in sb
        .store()
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let (path, item) = paths_of(t);
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
