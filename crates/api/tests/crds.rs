//! The generated CRDs: checked-in copies are current, and the CRDs carry what `kubectl` users
//! and the API server need (names, printer columns, status, descriptions, CEL messages).

use std::path::PathBuf;

use lustre_api::crd;
use serde_json::Value;

fn repo_root() -> PathBuf {
    manifest_dir().join("../..")
}

/// A readable line diff: the first lines that differ, with line numbers.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = Vec::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            out.push(format!(
                "line {}:\n  generated: {:?}\n  checked in: {:?}",
                i + 1,
                x,
                y
            ));
        }
        if out.len() == 10 {
            out.push("...".into());
            break;
        }
    }
    out.join("\n")
}

#[test]
fn checked_in_crds_match_the_types() {
    let mut stale = Vec::new();
    for dir in ["deploy/crds", "charts/lustre-operator/crds"] {
        for (name, generated) in crd::rendered() {
            let path = repo_root().join(dir).join(&name);
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            if checked_in != generated {
                stale.push(format!(
                    "{dir}/{name} is stale:\n{}",
                    diff(&generated, &checked_in)
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate with: cargo run -p lustre-api --bin crdgen",
        stale.join("\n\n")
    );
}

fn crd_json(kind: &str) -> Value {
    let crd = crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("CRD exists");
    serde_json::to_value(crd).expect("CRD is JSON")
}

#[test]
fn names_scope_and_columns() {
    let lws = crd_json("LustreWorkspace");
    assert_eq!(lws["spec"]["group"], "workspaces.lustre.dev");
    assert_eq!(lws["spec"]["scope"], "Namespaced");
    assert_eq!(
        lws["spec"]["names"]["shortNames"],
        serde_json::json!(["lws"])
    );
    assert_eq!(
        lws["spec"]["names"]["categories"],
        serde_json::json!(["lustre"])
    );
    let version = &lws["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(
        version["subresources"]["status"].is_object(),
        "status subresource"
    );
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Phase",
            "Type",
            "Capacity",
            "Zone",
            "FileSystem",
            "Claim",
            "Cost/Month",
            "Expires",
            "Ready",
            "Age"
        ]
    );

    let lwc = crd_json("LustreWorkspaceClass");
    assert_eq!(lwc["spec"]["scope"], "Cluster");
    assert_eq!(
        lwc["spec"]["names"]["shortNames"],
        serde_json::json!(["lwc"])
    );
    assert_eq!(
        lwc["spec"]["names"]["categories"],
        serde_json::json!(["lustre"])
    );
    let columns: Vec<&str> = lwc["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Subnet", "Default", "Age"]);
}

/// Walks a schema, calling `f(path, node)` on every property schema.
fn walk(schema: &Value, path: &str, f: &mut dyn FnMut(&str, &Value)) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let p = format!("{path}.{name}");
            f(&p, prop);
            walk(prop, &p, f);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, &format!("{path}[]"), f);
    }
    if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        walk(add, &format!("{path}{{}}"), f);
    }
}

#[test]
fn every_field_has_a_description_and_every_rule_a_message() {
    let mut missing = Vec::new();
    let mut rules = 0;
    for kind in ["LustreWorkspace", "LustreWorkspaceClass"] {
        let crd = crd_json(kind);
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        walk(schema, kind, &mut |path, node| {
            // metadata is described by Kubernetes itself.
            if path.ends_with(".metadata") {
                return;
            }
            if node["description"].as_str().is_none_or(str::is_empty) {
                missing.push(format!("{path}: no description"));
            }
            for rule in node["x-kubernetes-validations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                rules += 1;
                if rule["message"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{path}: rule {} has no message", rule["rule"]));
                }
            }
        });
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(
        rules >= 20,
        "expected the CEL rules in the schema, found {rules}"
    );
}

/// The crate's directory, read at run time: the test binary may have been built from another
/// checkout sharing the target directory, so the compile-time path can be stale.
fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}

/// Every rule iterates only bounded lists and maps and runs regexes only over bounded strings:
/// the shapes for which kube-apiserver refused both CRDs (its CEL cost budget). The budget
/// itself is judged by a real apiserver in the real-install test.
#[test]
fn every_rule_is_bounded_for_the_cel_cost_budget() {
    for crd in crd::crds() {
        let unbounded = lustre_api::cel_bounds::unbounded_rules(&crd::schema_json(&crd));
        assert_eq!(
            unbounded,
            vec![],
            "{}",
            crd.metadata.name.unwrap_or_default()
        );
    }
}
