//! Discovery: the API versions, groups and resource lists kubectl and kube-rs read first.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{KubeSandbox, ResourceType, api_resource, error_response, json_response, not_found};

/// `/api`: the core group's one version, and where to reach the server.
pub(super) fn api_versions(sb: &KubeSandbox) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": sb.address()}]})
}

/// `/apis`: every group served, with its versions.
pub(super) fn api_groups(sb: &KubeSandbox) -> Value {
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

/// `/api/v1` or `/apis/<group>/<version>`: the resources served there.
pub(super) fn resource_list(sb: &KubeSandbox, group: &str, version: &str) -> Response {
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
