//! The fixture corpus (`tests/fixtures/{valid,invalid}`) through both validators: the CRD
//! schema with its CEL rules (as the API server admits objects) and the Rust `validate()`.
//! Every valid fixture must pass both; every invalid fixture must be refused by both, at the
//! field path its `# expect:` header names, with a message containing the header's fragment.
//!
//! An update fixture holds two YAML documents: the stored object, then the new one.
//! `# rust: decode` marks a fixture the Rust side refuses when decoding into the typed API
//! (an unknown enum value, a missing required field): the decode error must name the same path.

use std::path::{Path, PathBuf};

use lustre_api::{
    LustreDataTask, LustreWorkspace, LustreWorkspaceBackup, LustreWorkspaceClass,
    LustreWorkspaceGrant, Violation, admission, crd,
};
use serde::Deserialize;
use serde_json::Value;

struct Fixture {
    name: String,
    old: Option<Value>,
    new: Value,
    expect: Option<(String, String)>,
    rust_decode: bool,
}

fn fixtures(kind: &str) -> Vec<Fixture> {
    let dir = manifest_dir().join("../../tests/fixtures").join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let mut docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect();
    let expect = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let (field, fragment) = rest.split_once(": ").unwrap_or((rest, ""));
            (field.trim().to_string(), fragment.trim().to_string())
        });
    let rust_decode = text.lines().any(|l| l.trim() == "# rust: decode");
    let new = docs.pop().expect("at least one document");
    Fixture {
        name: path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        old: docs.pop(),
        new,
        expect,
        rust_decode,
    }
}

/// What the API server would say: schema + CEL of the fixture's CRD.
fn admission_violations(f: &Fixture) -> Vec<Violation> {
    let kind = f.new["kind"].as_str().unwrap_or_default();
    let crd = crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("{}: no CRD for kind {kind}", f.name));
    admission::admit(&crd::schema_json(&crd), &f.new, f.old.as_ref())
}

/// What the Rust validation says, or the decode error as a violation.
fn rust_violations(f: &Fixture) -> Vec<Violation> {
    fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Violation> {
        serde_path_to_error::deserialize(v.clone()).map_err(|e| Violation {
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
    let run = || -> Result<Vec<Violation>, Violation> {
        match f.new["kind"].as_str() {
            Some("LustreWorkspace") => {
                let new: LustreWorkspace = decode(&f.new)?;
                let old: Option<LustreWorkspace> = f.old.as_ref().map(decode).transpose()?;
                Ok(new.validate(old.as_ref()))
            }
            Some("LustreWorkspaceClass") => Ok(decode::<LustreWorkspaceClass>(&f.new)?.validate()),
            Some("LustreDataTask") => {
                let new: LustreDataTask = decode(&f.new)?;
                let old: Option<LustreDataTask> = f.old.as_ref().map(decode).transpose()?;
                Ok(new.validate(old.as_ref()))
            }
            Some("LustreWorkspaceGrant") => {
                let new: LustreWorkspaceGrant = decode(&f.new)?;
                let old: Option<LustreWorkspaceGrant> = f.old.as_ref().map(decode).transpose()?;
                Ok(new.validate(old.as_ref()))
            }
            Some("LustreWorkspaceBackup") => {
                let new: LustreWorkspaceBackup = decode(&f.new)?;
                let old: Option<LustreWorkspaceBackup> = f.old.as_ref().map(decode).transpose()?;
                Ok(new.validate(old.as_ref()))
            }
            other => panic!("{}: unexpected kind {other:?}", f.name),
        }
    };
    run().unwrap_or_else(|e| vec![e])
}

fn has(violations: &[Violation], field: &str, fragment: &str) -> bool {
    violations
        .iter()
        .any(|v| v.field == field && v.message.contains(fragment))
}

/// A decode error names the field, or (for a missing field) its parent and the field's name.
fn decode_names(violations: &[Violation], field: &str) -> bool {
    let (parent, last) = field.rsplit_once('.').unwrap_or(("", field));
    violations.iter().any(|v| {
        v.field == field
            || (v.field == parent && v.message.contains(&format!("missing field `{last}`")))
    })
}

#[test]
fn fixture_corpus_agrees_in_both_validators() {
    let valid = fixtures("valid");
    let invalid = fixtures("invalid");
    let mut failures = Vec::new();

    for f in &valid {
        let (admit, rust) = (admission_violations(f), rust_violations(f));
        if !admit.is_empty() || !rust.is_empty() {
            failures.push(format!(
                "valid/{}: admission {admit:?}, rust {rust:?}",
                f.name
            ));
        }
    }
    let mut rejected = 0;
    for f in &invalid {
        let Some((field, fragment)) = &f.expect else {
            failures.push(format!("invalid/{}: no `# expect:` header", f.name));
            continue;
        };
        let (admit, rust) = (admission_violations(f), rust_violations(f));
        let admit_ok = has(&admit, field, fragment);
        let rust_ok = if f.rust_decode {
            decode_names(&rust, field)
        } else {
            has(&rust, field, fragment)
        };
        if !admit_ok {
            failures.push(format!(
                "invalid/{}: admission did not say {field}: {fragment}; it said {admit:?}",
                f.name
            ));
        }
        if !rust_ok {
            failures.push(format!(
                "invalid/{}: rust did not say {field}: {fragment}; it said {rust:?}",
                f.name
            ));
        }
        if admit_ok && rust_ok {
            rejected += 1;
        }
    }
    println!(
        "fixture corpus: valid: {} accepted, invalid: {rejected} rejected (of {}), by both schema+CEL and validate()",
        valid.len() - failures.iter().filter(|f| f.starts_with("valid/")).count(),
        invalid.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(valid.len() >= 6 && invalid.len() >= 30, "the corpus shrank");
}

/// The examples users copy from `deploy/examples/` pass both validators and the example class.
#[test]
fn examples_are_valid() {
    let dir = manifest_dir().join("../../deploy/examples");
    let class: LustreWorkspaceClass = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("class-standard.yaml")).expect("class example"),
    )
    .expect("class example decodes");
    let namespace: Value = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("namespace-ml.yaml")).expect("namespace example"),
    )
    .expect("namespace example decodes");
    let labels = serde_json::from_value(namespace["metadata"]["labels"].clone()).expect("labels");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples dir") {
        let f = load(&entry.expect("entry").path());
        let kind = f.new["kind"].as_str().unwrap_or_default();
        if !kind.starts_with("LustreWorkspace") {
            continue;
        }
        assert_eq!(admission_violations(&f), vec![], "{}: admission", f.name);
        assert_eq!(rust_violations(&f), vec![], "{}: validate()", f.name);
        if kind == "LustreWorkspace" {
            let ws: LustreWorkspace = serde_json::from_value(f.new.clone()).expect("decodes");
            assert_eq!(
                ws.validate_against_class(&class, &labels),
                vec![],
                "{}: class rules",
                f.name
            );
        }
        checked += 1;
    }
    assert_eq!(
        checked, 9,
        "class, scratch, persistent, save-results, expiring, tiering, checkpoints, backup and restored examples"
    );
}

/// The crate's directory, read at run time: the test binary may have been built from another
/// checkout sharing the target directory, so the compile-time path can be stale.
fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}
