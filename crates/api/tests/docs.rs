//! The generated reference documents are current, and the troubleshooting guide covers every
//! reason the operator can write.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    PathBuf::from(manifest).join("../..")
}

#[test]
fn every_reason_has_a_cause_and_a_fix() {
    let guide: BTreeSet<&str> = lustre_api::docs::GUIDE.iter().map(|g| g.0).collect();
    let all: BTreeSet<&str> = lustre_api::constants::reason::ALL.into_iter().collect();
    assert_eq!(guide, all);
    for (r, kind, cause, fix) in lustre_api::docs::GUIDE {
        assert!(["ok", "progress", "problem"].contains(&kind), "{r}");
        assert!(cause.len() > 40 && fix.len() > 20, "{r}");
    }
}

#[test]
fn generated_docs_are_current() {
    for (name, text) in [
        ("troubleshooting.md", lustre_api::docs::troubleshooting()),
        ("api-reference.md", lustre_api::docs::api_reference()),
    ] {
        let current = std::fs::read_to_string(repo().join("docs").join(name)).unwrap_or_default();
        assert!(
            current == text,
            "docs/{name} is stale: run `cargo run -p lustre-api --bin docgen`"
        );
    }
    let reference = lustre_api::docs::api_reference();
    for field in [
        "`spec.storageCapacityGiB`",
        "`spec.throughputCapacity`",
        "`spec.dataRepositories[].s3Path`",
        "`spec.subnetIds`",
        "`spec.securityGroup` (required)",
    ] {
        assert!(reference.contains(field), "{field}");
    }
}
