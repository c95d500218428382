//! The rules that need the class: namespace selector, S3 allow-list, size cap, the rules CEL
//! cannot decide when the deployment type comes from the class's defaults, and the tag budget.

use std::collections::BTreeMap;

use lustre_api::{LustreWorkspace, LustreWorkspaceClass, Violation};

fn class(yaml: &str) -> LustreWorkspaceClass {
    serde_yaml::from_str(yaml).expect("class fixture")
}

fn workspace(spec: &str) -> LustreWorkspace {
    let text = format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata: {{name: w, namespace: ml}}\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    serde_yaml::from_str(&text).expect("workspace fixture")
}

const STANDARD: &str = r#"
apiVersion: workspaces.lustre.dev/v1alpha1
kind: LustreWorkspaceClass
metadata: {name: standard}
spec:
  subnetId: subnet-0123456789abcdef0
  securityGroup: {clientCidrs: [10.0.0.0/16]}
  allowedDataRepositories: ["s3://ml-datasets/", "s3://ml-results/runs/"]
  allowedNamespaces:
    matchLabels: {lustre: enabled}
    matchExpressions: [{key: tier, operator: NotIn, values: [prod]}]
  maxStorageCapacityGiB: 4800
  defaults: {deploymentType: PERSISTENT_2}
"#;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fields(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.field.as_str()).collect()
}

#[test]
fn a_conforming_workspace_passes() {
    let ws = workspace(
        "storageCapacityGiB: 2400\nperUnitStorageThroughput: 250\ndataRepositories: [{name: d, s3Path: s3://ml-datasets/imagenet/, fileSystemPath: /d}]",
    );
    let got = ws.validate_against_class(&class(STANDARD), &labels(&[("lustre", "enabled")]));
    assert_eq!(got, vec![]);
}

#[test]
fn namespace_outside_the_selector_is_refused() {
    let ws = workspace("storageCapacityGiB: 1200\nperUnitStorageThroughput: 125");
    let c = class(STANDARD);
    for ns_labels in [
        labels(&[]),
        labels(&[("lustre", "enabled"), ("tier", "prod")]),
    ] {
        let got = ws.validate_against_class(&c, &ns_labels);
        assert_eq!(fields(&got), ["metadata.namespace"], "{got:?}");
        assert!(
            got[0]
                .message
                .contains("does not allow workspaces in this namespace")
        );
    }
}

#[test]
fn s3_outside_the_allow_list_is_refused_with_the_list() {
    let ws = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {name: a, s3Path: s3://ml-datasets-evil/, fileSystemPath: /a}\n- {name: b, s3Path: s3://ml-results/runs/7/, fileSystemPath: /b}\n- {name: c, s3Path: s3://ml-results/runs-old/, fileSystemPath: /c}",
    );
    let got = ws.validate_against_class(&class(STANDARD), &labels(&[("lustre", "enabled")]));
    assert_eq!(
        fields(&got),
        [
            "spec.dataRepositories[0].s3Path",
            "spec.dataRepositories[2].s3Path"
        ]
    );
    assert!(
        got[0]
            .message
            .contains("allowed prefixes: s3://ml-datasets/, s3://ml-results/runs/")
    );
}

#[test]
fn a_class_without_an_allow_list_allows_no_s3() {
    let c = class(&STANDARD.replace(
        "  allowedDataRepositories: [\"s3://ml-datasets/\", \"s3://ml-results/runs/\"]\n",
        "",
    ));
    let ws = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories: [{name: a, s3Path: s3://ml-datasets/, fileSystemPath: /a}]",
    );
    let got = ws.validate_against_class(&c, &labels(&[("lustre", "enabled")]));
    assert_eq!(fields(&got), ["spec.dataRepositories[0].s3Path"]);
    assert!(
        got[0]
            .message
            .contains("the class allows no S3 data repositories")
    );
}

#[test]
fn size_above_the_class_cap_is_refused() {
    let ws = workspace("storageCapacityGiB: 7200\nperUnitStorageThroughput: 125");
    let got = ws.validate_against_class(&class(STANDARD), &labels(&[("lustre", "enabled")]));
    assert_eq!(fields(&got), ["spec.storageCapacityGiB"]);
    assert!(got[0].message.contains("at most 4800 GiB"));
}

#[test]
fn defaulted_persistent_type_needs_a_throughput() {
    let ws = workspace("storageCapacityGiB: 1200");
    assert_eq!(
        ws.validate(None),
        vec![],
        "CEL and validate() cannot know the default"
    );
    let got = ws.validate_against_class(&class(STANDARD), &labels(&[("lustre", "enabled")]));
    assert_eq!(fields(&got), ["spec.perUnitStorageThroughput"]);
}

#[test]
fn defaulted_scratch_type_refuses_throughput_and_final_backup() {
    let c = class(&STANDARD.replace("PERSISTENT_2", "SCRATCH_2"));
    let ws = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\nfinalBackupOnDelete: true",
    );
    let got = ws.validate_against_class(&c, &labels(&[("lustre", "enabled")]));
    assert_eq!(
        fields(&got),
        ["spec.perUnitStorageThroughput", "spec.finalBackupOnDelete"]
    );
}

#[test]
fn a_workspace_may_not_replace_the_class_tags() {
    let c = class(&format!(
        "{STANDARD}  tags: {{cost-center: platform, owner: ml-infra}}\n"
    ));
    let ok = labels(&[("lustre", "enabled")]);
    let ws =
        workspace("storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ntags: {project: llm}");
    assert_eq!(ws.validate_against_class(&c, &ok), vec![]);
    let ws = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ntags: {cost-center: someone-else, project: llm}",
    );
    let got = ws.validate_against_class(&c, &ok);
    assert_eq!(fields(&got), vec!["spec.tags"]);
    assert!(
        got[0]
            .message
            .contains("tag cost-center is set by class standard"),
        "{got:?}"
    );
}

/// A class with a shared read-only dataset prefix and a per-namespace results prefix.
fn shared_class() -> LustreWorkspaceClass {
    class(&STANDARD.replace(
        "  allowedDataRepositories: [\"s3://ml-datasets/\", \"s3://ml-results/runs/\"]\n",
        "  allowedDataRepositories: [\"s3://ml-results/{namespace}/\", \"s3://\"]\n  readOnlyDataRepositories: [\"s3://ml-datasets/shared/\"]\n",
    ))
}

#[test]
fn a_read_only_prefix_takes_auto_import_and_refuses_auto_export() {
    let ok = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {name: a, s3Path: s3://ml-datasets/shared/imagenet/, fileSystemPath: /a, autoImport: [NEW, CHANGED, DELETED]}",
    );
    let c = shared_class();
    let ns = labels(&[("lustre", "enabled")]);
    assert_eq!(ok.validate_against_class(&c, &ns), vec![]);
    // Read-only wins over the class's `s3://` read-write entry.
    let export = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {name: a, s3Path: s3://ml-datasets/shared/, fileSystemPath: /a, autoExport: [DELETED]}\n- {name: b, s3Path: s3://ml-datasets/shared-not/, fileSystemPath: /b, autoExport: [NEW]}",
    );
    let got = export.validate_against_class(&c, &ns);
    assert_eq!(
        fields(&got),
        ["spec.dataRepositories[0].autoExport"],
        "{got:?}"
    );
    assert!(got[0].message.contains("read-only in class standard"));
}

#[test]
fn nothing_is_exported_before_deletion_into_a_read_only_prefix() {
    let ws = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {name: a, s3Path: s3://ml-datasets/shared/imagenet/, fileSystemPath: /a, exportOnDelete: true}\n- {name: b, s3Path: s3://ml-results/ml/, fileSystemPath: /b, exportOnDelete: true}",
    );
    let got = ws.validate_against_class(&shared_class(), &labels(&[("lustre", "enabled")]));
    assert_eq!(
        fields(&got),
        ["spec.dataRepositories[0].exportOnDelete"],
        "{got:?}"
    );
    assert!(got[0].message.contains("read-only in class standard"));
}

#[test]
fn namespace_placeholder_gives_each_namespace_its_own_prefix() {
    let c = class(&STANDARD.replace(
        "  allowedDataRepositories: [\"s3://ml-datasets/\", \"s3://ml-results/runs/\"]\n",
        "  allowedDataRepositories: [\"s3://ml-results/{namespace}/\"]\n",
    ));
    let ns = labels(&[("lustre", "enabled")]);
    let own = workspace(
        "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories: [{name: a, s3Path: s3://ml-results/ml/run-1/, fileSystemPath: /a, autoExport: [NEW]}]",
    );
    assert_eq!(own.validate_against_class(&c, &ns), vec![]);
    for other in [
        "s3://ml-results/tenant-b/",
        "s3://ml-results/ml-evil/",
        "s3://ml-results/{namespace}/",
        "s3://ml-results/",
    ] {
        let ws = workspace(&format!(
            "storageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories: [{{name: a, s3Path: '{other}', fileSystemPath: /a}}]"
        ));
        let got = ws.validate_against_class(&c, &ns);
        assert_eq!(fields(&got), ["spec.dataRepositories[0].s3Path"], "{other}");
        assert!(
            got[0]
                .message
                .contains("allowed prefixes: s3://ml-results/ml/"),
            "{got:?}"
        );
    }
}

#[test]
fn s3_prefixes_compare_by_segment() {
    use lustre_api::validation::s3_under;
    for (path, prefix, under) in [
        ("s3://data/team/x/", "s3://data/team/", true),
        ("s3://data/team/", "s3://data/team/", true),
        ("s3://data/team-a/", "s3://data/team/", false),
        ("s3://data2/", "s3://data/", false),
        ("s3://data/", "s3://", true),
        ("s3://data/", "s3://data/team/", false),
        ("s3://data/ns1/x/", "s3://data/{namespace}/", true),
        ("s3://data/ns10/", "s3://data/{namespace}/", false),
    ] {
        assert_eq!(
            s3_under(path, prefix, "ns1"),
            under,
            "{path} under {prefix}"
        );
    }
}
