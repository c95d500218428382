//! The bad-input suite: every invalid workspace and class in the fixture corpus applied with
//! real `kubectl` (refused with `422` and the rule's message), and the inputs only the
//! operator can judge (they need the class, the namespace or AWS's answer) refused in status
//! with the detail. The simulated AWS must see no write at all for any of them, and no read
//! except the one that finds out a file system belongs to someone else.

mod real_cluster;
mod support;

use std::time::{Duration, Instant};

use lustre_cloud::FileSystems;
use lustre_cloud::aws::{AwsCloud, AwsSettings};
use serde_json::Value;
use support::*;

const WRITES: [&str; 5] = ["Create", "Update", "Delete", "Authorize", "Tag"];

fn writes(e: &E2e) -> u64 {
    e.sim
        .call_counts()
        .iter()
        .filter(|(op, _)| WRITES.iter().any(|w| op.starts_with(w)))
        .map(|(_, n)| n)
        .sum()
}

fn total(e: &E2e) -> u64 {
    e.sim.snapshot()["totalCalls"].as_u64().unwrap_or(0)
}

/// Waits until the workspace's Ready condition has `reason`; returns its message.
async fn refused(e: &E2e, ns: &str, name: &str, reason: &str) -> String {
    let start = Instant::now();
    loop {
        let ws = e
            .object(
                "apis/workspaces.lustre.dev/v1alpha1",
                "lustreworkspaces",
                ns,
                name,
            )
            .await;
        let cond = ws
            .as_ref()
            .and_then(|w| w["status"]["conditions"].as_array().cloned())
            .and_then(|c| c.into_iter().find(|c| c["type"] == "Ready"));
        if let Some(c) = cond.filter(|c| c["reason"] == reason) {
            assert_eq!(c["status"], "False");
            return c["message"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{ns}/{name}: no {reason}: {:#}",
            ws.map(|w| w["status"].clone()).unwrap_or(Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_message_and_costs_no_aws_call() {
    let e = E2e::start(quick()).await;
    e.metrics_addr(0).await; // past the start-up check's two reads
    let baseline = total(&e);
    e.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: quarantine\n")
        .await;

    // 1. Admission: the corpus through real kubectl, into a namespace no class admits, so an
    //    admissible first document (the "before" of an immutable-field update) costs no AWS
    //    call either.
    let corpus: Vec<Fixture> = fixtures("invalid")
        .into_iter()
        .map(|f| Fixture {
            docs: f
                .docs
                .iter()
                .map(|d| d.replace("namespace: ml", "namespace: quarantine"))
                .collect(),
            ..f
        })
        .collect();
    let mut at_admission = 0;
    for f in &corpus {
        let (before, last) = f.docs.split_at(f.docs.len() - 1);
        for doc in before {
            e.apply(doc).await;
        }
        let out = e.kubectl(&["apply", "-f", "-"], Some(&last[0])).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", f.name);
        for (path, fragment) in &f.expect {
            assert!(
                stderr.contains(path.as_str()) && stderr.contains(fragment.as_str()),
                "{}: kubectl said {stderr:?}, expected {path}: {fragment}",
                f.name
            );
        }
        at_admission += 1;
        for doc in before {
            let _ = e
                .kubectl(&["delete", "-f", "-", "--wait=false"], Some(doc))
                .await;
        }
    }

    // 2. What only the operator can judge.
    let ops: Vec<(&str, &str, &str, &str, &str)> = vec![
        (
            "ml",
            "outside-allow-list",
            "storageCapacityGiB: 1200\ndataRepositories:\n- {name: d, s3Path: 's3://someone-elses-bucket/', fileSystemPath: /d}",
            "InvalidSpec",
            "not allowed by class standard",
        ),
        (
            "quarantine",
            "namespace-not-admitted",
            "storageCapacityGiB: 1200",
            "NamespaceNotAllowed",
            "does not admit namespace quarantine",
        ),
        (
            "ml",
            "above-class-cap",
            "deploymentType: SCRATCH_2\nstorageCapacityGiB: 48000",
            "InvalidSpec",
            "24000",
        ),
        (
            "ml",
            "unknown-class",
            "className: gold\nstorageCapacityGiB: 1200",
            "ClassNotFound",
            "gold",
        ),
        (
            "ml",
            "throughput-on-defaulted-scratch",
            "storageCapacityGiB: 1200\nperUnitStorageThroughput: 250",
            "InvalidSpec",
            "perUnitStorageThroughput",
        ),
        (
            // No CEL rule can afford a regex over map keys (kube-apiserver's cost budget), so
            // a key's characters are the operator's to refuse.
            "ml",
            "hostile-tag-key",
            "storageCapacityGiB: 1200\ntags: {\"cost<center>\": x}",
            "InvalidSpec",
            "tag keys and values may contain only",
        ),
        (
            // AWS reserves aws: in any case; the CEL rule sees the lower-case spelling only.
            "ml",
            "aws-prefix-upper-case",
            "storageCapacityGiB: 1200\ntags: {\"AWS:cost\": x}",
            "InvalidSpec",
            "tag keys may not start with aws:",
        ),
        (
            "ml",
            "class-tag-override",
            "storageCapacityGiB: 1200\ntags: {team: finance}",
            "InvalidSpec",
            "tag team is set by class standard",
        ),
        (
            "ml",
            "export-into-read-only",
            "className: shared\nstorageCapacityGiB: 1200\ndataRepositories:\n- {name: d, s3Path: 's3://ml-datasets/shared/x/', fileSystemPath: /d, exportOnDelete: true}",
            "InvalidSpec",
            "nothing can be exported to it",
        ),
        (
            "ml",
            "final-backup-on-defaulted-scratch",
            "storageCapacityGiB: 1200\nfinalBackupOnDelete: true",
            "InvalidSpec",
            "finalBackupOnDelete",
        ),
    ];
    e.apply(SHARED_CLASS).await;
    for (ns, name, spec, _, _) in &ops {
        e.apply(&workspace(name, spec).replace("namespace: ml", &format!("namespace: {ns}")))
            .await;
    }
    let mut by_operator = 0;
    for (ns, name, _, reason, detail) in &ops {
        let message = refused(&e, ns, name, reason).await;
        assert!(message.contains(detail), "{name}: {message}");
        by_operator += 1;
    }
    let calls = total(&e) - baseline;
    assert_eq!((calls, writes(&e)), (0, 0), "{:?}", e.sim.call_counts());

    // 3. Adopting a file system another workspace owns: one look at its tags, no write.
    let cloud = AwsCloud::new(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(e.aws_url.clone()),
            static_credentials: Some(("AKIDSANDBOX".into(), "sandbox".into())),
            ..AwsSettings::default()
        },
        None,
    )
    .await;
    let tags = lustre_cloud::naming::owner_tags(
        &lustre_cloud::naming::Owner {
            namespace: "other".into(),
            name: "theirs".into(),
            uid: "another-uid".into(),
            class: "standard".into(),
        },
        &Default::default(),
        &Default::default(),
    );
    let foreign = cloud
        .create_file_system(&lustre_cloud::FileSystemRequest::scratch(
            "someone-elses",
            "subnet-0123456789abcdef0",
            tags,
        ))
        .await
        .expect("foreign file system");
    let (before_reads, before_writes) = (total(&e), writes(&e));
    e.apply(&workspace(
        "adopt-theirs",
        &format!("storageCapacityGiB: 1200\nfileSystemId: {}", foreign.id),
    ))
    .await;
    let message = refused(&e, "ml", "adopt-theirs", "AdoptionRefused").await;
    assert!(
        message.contains("cannot be adopted by this workspace"),
        "{message}"
    );
    let reads = total(&e) - before_reads;
    assert_eq!(writes(&e) - before_writes, 0, "{:?}", e.sim.call_counts());
    assert!(reads <= 2, "{reads} reads to refuse an adoption");
    by_operator += 1;

    // 4. Data tasks only the operator can judge (it needs the workspace and its class):
    //    refused in status before any task call, and a task cannot reach another
    //    namespace's workspace (it names one of its own namespace, and there is none).
    let tasks = data_tasks_refused(&e).await;
    by_operator += tasks;

    println!(
        "bad input ({}): {} refused of {}: {at_admission} at admission (422, the rule's message), {by_operator} by the operator in status; AWS calls for them: 0 (the adoption check: {reads} reads, 0 writes)",
        e.cluster.name(),
        at_admission + by_operator,
        corpus.len() + ops.len() + 1 + tasks
    );
}

/// A class with a dataset prefix workspaces may only read.
const SHARED_CLASS: &str = "apiVersion: workspaces.lustre.dev/v1alpha1
kind: LustreWorkspaceClass
metadata: {name: shared}
spec:
  subnetId: subnet-0123456789abcdef0
  securityGroup: {managed: true, clientCidrs: [10.0.0.0/16]}
  allowedNamespaces: {matchLabels: {lustre: enabled}}
  readOnlyDataRepositories: [\"s3://ml-datasets/shared/\"]
  allowedDataRepositories: [\"s3://ml-results/\"]
";

/// The data task's phase and message once its phase is `phase`.
async fn task_settled(e: &E2e, ns: &str, name: &str, phase: &str) -> String {
    let start = Instant::now();
    loop {
        let task = e
            .object(
                "apis/workspaces.lustre.dev/v1alpha1",
                "lustredatatasks",
                ns,
                name,
            )
            .await;
        let status = task.map(|t| t["status"].clone()).unwrap_or(Value::Null);
        if status["phase"] == phase && status["message"].is_string() {
            return status["message"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{ns}/{name}: not {phase}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tasks refused by the operator: a path outside the links, an export into a read-only
/// prefix, a task on a workspace with no linked repository, and a task in another namespace
/// naming this one's workspace (it waits for a workspace of that name in its own namespace).
/// No task call reaches AWS. Returns how many were refused.
async fn data_tasks_refused(e: &E2e) -> usize {
    e.apply(&workspace(
        "linked",
        "className: shared\nstorageCapacityGiB: 1200\ndataRepositories:\n- {name: datasets, s3Path: 's3://ml-datasets/shared/imagenet/', fileSystemPath: /datasets, autoImport: [NEW]}\n- {name: results, s3Path: 's3://ml-results/linked/', fileSystemPath: /results}",
    ))
    .await;
    e.apply(&workspace("unlinked", "storageCapacityGiB: 1200"))
        .await;
    e.wait_for("condition=Ready", "lws/linked").await;
    e.wait_for("condition=Ready", "lws/unlinked").await;
    let before = writes(e);
    let cases = [
        (
            "ml",
            "outside",
            "workspace: linked\ntype: Export\npaths: [/scratch/out]",
            "Failed",
            "is not at or under a linked fileSystemPath",
        ),
        (
            "ml",
            "into-read-only",
            "workspace: linked\ntype: Export\npaths: [/datasets/imagenet]",
            "Failed",
            "read-only",
        ),
        (
            "ml",
            "no-links",
            "workspace: unlinked\ntype: Import",
            "Failed",
            "links no S3 data",
        ),
        (
            "quarantine",
            "elsewhere",
            "workspace: linked\ntype: Export",
            "Pending",
            "waiting for workspace linked in this namespace",
        ),
    ];
    for (ns, name, spec, _, _) in &cases {
        e.apply(&data_task(name, spec).replace("namespace: ml", &format!("namespace: {ns}")))
            .await;
    }
    for (ns, name, _, phase, detail) in &cases {
        let message = task_settled(e, ns, name, phase).await;
        assert!(message.contains(detail), "{name}: {message}");
    }
    let task_calls: u64 = [
        "CreateDataRepositoryTask",
        "DescribeDataRepositoryTasks",
        "CancelDataRepositoryTask",
    ]
    .iter()
    .map(|op| e.sim.calls(op))
    .sum();
    assert_eq!(
        (task_calls, writes(e) - before),
        (0, 0),
        "{:?}",
        e.sim.call_counts()
    );
    cases.len()
}
