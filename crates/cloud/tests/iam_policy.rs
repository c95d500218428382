//! `deploy/iam/policy.json` against the adapter: every AWS operation the adapter calls is
//! allowed, no FSx or EC2 action beyond them is, and writes are conditioned on the tag the
//! operator puts on everything it creates.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn repo() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    PathBuf::from(manifest).join("../..")
}

/// `service:Operation` for each `const OP: &str = "..."` in the adapter's sources.
fn adapter_operations() -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (file, service) in [("fsx.rs", "fsx"), ("ec2.rs", "ec2")] {
        let src = std::fs::read_to_string(repo().join("crates/cloud/src/aws").join(file))
            .expect("adapter source");
        for line in src.lines() {
            if let Some(rest) = line.trim().strip_prefix("const OP: &str = \"") {
                let op = rest.split('"').next().unwrap_or_default();
                ops.insert(format!("{service}:{op}"));
            }
        }
    }
    ops
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

#[test]
fn the_policy_allows_exactly_the_adapters_calls_scoped_by_the_operators_tag() {
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/iam/policy.json")).expect("policy"),
    )
    .expect("policy is JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    let ops = adapter_operations();
    assert!(ops.len() >= 13, "{ops:?}");
    let allowed: BTreeSet<String> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(actions)
        .collect();
    let missing: Vec<&String> = ops.iter().filter(|o| !allowed.contains(*o)).collect();
    assert!(missing.is_empty(), "the policy does not allow {missing:?}");
    // Beyond the adapter's calls: what AWS authorizes inside them (tag-on-create of a
    // security group; the final backup a DeleteFileSystem takes).
    let implied: BTreeSet<String> = ["ec2:CreateTags", "fsx:CreateBackup"]
        .into_iter()
        .map(String::from)
        .collect();
    let extra: Vec<&String> = allowed
        .iter()
        .filter(|a| a.starts_with("fsx:") || a.starts_with("ec2:"))
        .filter(|a| !ops.contains(*a) && !implied.contains(*a))
        .collect();
    assert!(
        extra.is_empty(),
        "the policy allows more than the adapter calls: {extra:?}"
    );
    assert!(
        allowed.iter().all(|a| !a.ends_with(":*") && a != "*"),
        "no service-wide wildcard"
    );

    // Every write is conditioned on the operator's tag (read-only and service-role
    // statements excepted).
    let tag = format!("/{}", lustre_api::constants::tags::MANAGED);
    for s in statements {
        let writes: Vec<String> = actions(s)
            .into_iter()
            .filter(|a| {
                (a.starts_with("fsx:") || a.starts_with("ec2:")) && !a.contains(":Describe")
            })
            .collect();
        if writes.is_empty() {
            continue;
        }
        let condition = s["Condition"].to_string();
        let scoped_by_tag = condition.contains(&tag) && condition.contains("\"true\"");
        // Tagging that can write no key but the adopter's mark (adoption of a file system the
        // operator did not make): it cannot mark anything managed.
        let only_adopter_mark = s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
            == serde_json::json!([lustre_api::constants::tags::ADOPTED_BY])
            && writes
                .iter()
                .all(|w| w == "fsx:TagResource" || w == "fsx:UntagResource");
        let tag_on_create = condition.contains("ec2:CreateAction");
        let vpc_side = s["Resource"]
            .as_str()
            .is_some_and(|r| r.ends_with(":vpc/*"));
        assert!(
            scoped_by_tag || tag_on_create || vpc_side || only_adopter_mark,
            "statement {} allows {writes:?} without the operator's tag",
            s["Sid"]
        );
    }
}
