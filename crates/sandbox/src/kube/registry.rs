//! The kinds the sandbox API server serves: the built-in ones the operator and its users
//! touch, and every CustomResourceDefinition applied to it.

use serde_json::{Value, json};

/// A printer column (`kubectl get`).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// One served resource.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub columns: Vec<Column>,
    /// `openAPIV3Schema` of a custom resource (admission, defaults, `kubectl explain`).
    pub schema: Option<Value>,
    /// Generated from a CRD (admission applies).
    pub custom: bool,
}

impl ResourceType {
    /// `apiVersion` of objects of this kind.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (`persistentvolumeclaims` for core kinds).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as kube-apiserver names it in messages (`LustreWorkspace.workspaces.lustre.dev`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Whether a spec change bumps `metadata.generation` (every kind with a spec here).
    pub fn tracks_generation(&self) -> bool {
        true
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if matches!(kind, "Pod" | "PersistentVolumeClaim") {
            vec!["all".into()]
        } else {
            vec![]
        },
        status_subresource: status,
        columns: builtin_columns(kind),
        schema: None,
        custom: false,
    }
}

fn col(name: &str, type_: &str, path: &str) -> Column {
    Column {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        description: String::new(),
        priority: 0,
    }
}

fn builtin_columns(kind: &str) -> Vec<Column> {
    match kind {
        "Namespace" => vec![col("Status", "string", ".status.phase")],
        "Pod" => vec![col("Status", "string", ".status.phase")],
        "PersistentVolumeClaim" => vec![
            col("Status", "string", ".status.phase"),
            col("Volume", "string", ".spec.volumeName"),
            col("Capacity", "string", ".status.capacity.storage"),
            col("Access Modes", "string", ".spec.accessModes"),
            col("StorageClass", "string", ".spec.storageClassName"),
        ],
        "PersistentVolume" => vec![
            col("Capacity", "string", ".spec.capacity.storage"),
            col("Access Modes", "string", ".spec.accessModes"),
            col(
                "Reclaim Policy",
                "string",
                ".spec.persistentVolumeReclaimPolicy",
            ),
            col("Status", "string", ".status.phase"),
            col("Claim", "string", ".spec.claimRef.name"),
            col("StorageClass", "string", ".spec.storageClassName"),
        ],
        "StorageClass" => vec![
            col("Provisioner", "string", ".provisioner"),
            col("ReclaimPolicy", "string", ".reclaimPolicy"),
        ],
        "Event" => vec![
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Object", "string", ".involvedObject.name"),
            col("Message", "string", ".message"),
        ],
        "Lease" => vec![col("Holder", "string", ".spec.holderIdentity")],
        "Node" => vec![col("Version", "string", ".status.nodeInfo.kubeletVersion")],
        "Secret" => vec![col("Type", "string", ".type")],
        "CustomResourceDefinition" => {
            vec![col("Created At", "date", ".metadata.creationTimestamp")]
        }
        _ => vec![],
    }
}

/// The built-in kinds.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
        builtin("", "v1", "Pod", "pods", true, &["po"], true),
        builtin(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            true,
        ),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            true,
        ),
        builtin("", "v1", "Event", "events", true, &["ev"], false),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
        ),
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
        builtin("", "v1", "Secret", "secrets", true, &[], false),
        builtin("", "v1", "Node", "nodes", false, &["no"], true),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
        ),
        builtin(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            &["sc"],
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
        ),
    ]
}

/// The served versions of a CRD as resource types.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceType {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            kind: names["kind"].as_str().unwrap_or_default().into(),
            plural: names["plural"].as_str().unwrap_or_default().into(),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| names["kind"].as_str().unwrap_or_default().to_lowercase()),
            namespaced: spec["scope"].as_str() == Some("Namespaced"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: v["subresources"]["status"].is_object(),
            columns: v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Column {
                    name: c["name"].as_str().unwrap_or_default().into(),
                    type_: c["type"].as_str().unwrap_or("string").into(),
                    json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                    description: c["description"].as_str().unwrap_or_default().into(),
                    priority: c["priority"].as_i64().unwrap_or(0),
                })
                .collect(),
            schema: Some(v["schema"]["openAPIV3Schema"].clone()).filter(|s| s.is_object()),
            custom: true,
        })
        .collect()
}

/// An `APIResource` entry of discovery.
pub fn api_resource(rt: &ResourceType) -> Vec<Value> {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let mut out = vec![json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": verbs,
        "shortNames": rt.short_names,
        "categories": rt.categories,
    })];
    if rt.status_subresource {
        out.push(json!({
            "name": format!("{}/status", rt.plural),
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}
