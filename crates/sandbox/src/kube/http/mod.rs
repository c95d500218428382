//! The HTTP face of the sandbox API server, in the shapes real `kubectl` and kube-rs expect:
//! this module parses a path and routes it; `discovery` and `openapi` describe what is served,
//! `crud` reads and writes objects (with server-side tables), `patch` applies the four patch
//! types, `watch` streams changes.

mod crud;
mod discovery;
mod openapi;
mod patch;
mod watch;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::registry::{ResourceType, api_resource};
use super::select::{FieldSelector, LabelSelector};
use super::store::{ApiErr, AuditEntry};
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

/// One request on a served resource, as the handlers in `crud` read it.
struct Request<'a> {
    sb: &'a KubeSandbox,
    method: &'a Method,
    q: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

/// The response, and the audit record of a request on a served resource (discovery and
/// OpenAPI are not audited, as kube-apiserver's default policy leaves them out).
async fn route(
    sb: &KubeSandbox,
    method: &Method,
    target: Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> (Response, Option<AuditEntry>) {
    let ok = |v: &Value| (json_response(StatusCode::OK, v), None);
    let request = Request {
        sb,
        method,
        q,
        headers,
        body: &body,
    };
    match target {
        Target::Version => ok(&SERVER_VERSION),
        Target::ApiVersions => ok(&discovery::api_versions(sb)),
        Target::ApiGroups => ok(&discovery::api_groups(sb)),
        Target::ResourceList { group, version } => {
            (discovery::resource_list(sb, &group, &version), None)
        }
        Target::OpenApiV2 => (
            error_response(&ApiErr::new(
                404,
                "NotFound",
                "the sandbox serves OpenAPI v3 only (/openapi/v3)",
            )),
            None,
        ),
        Target::OpenApiV3Index => ok(&openapi::index(sb)),
        Target::OpenApiV3 { group, version } => ok(&openapi::document(sb, &group, &version)),
        Target::Unknown => (error_response(&not_found()), None),
        Target::Collection {
            group,
            version,
            plural,
            ns,
        } => match served_type(sb, &group, &version, &plural) {
            Some(rt) => crud::collection(&request, &rt, &ns),
            None => (error_response(&not_found()), None),
        },
        Target::Item {
            group,
            version,
            plural,
            ns,
            name,
            sub,
        } => match served_type(sb, &group, &version, &plural) {
            Some(rt) => crud::item(&request, &rt, &ns, &name, &sub),
            None => (error_response(&not_found()), None),
        },
    }
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
