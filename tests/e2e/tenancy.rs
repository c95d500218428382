//! Hostile tenants on a real control plane: the operator, run as the chart's ServiceAccount,
//! must never act on another namespace's AWS resources or Kubernetes objects, whatever a
//! tenant writes into its own workspace's status or claims.
//!
//! Tenant B has, for this suite, the widest rights a tenant could be given by mistake: it may
//! write its workspaces' status (the tenant roles the chart will ship leave `/status` out; the
//! operator must be safe without relying on that). Every attack runs with the operator
//! stopped while the tenant writes, so the operator's first look is at the forged state.

mod real_cluster;
mod support;

use std::time::Duration;

use real_cluster::{OperatorProcess, RealCluster, path_arg, sim_aws, wait};
use serde_json::{Value, json};

const A: &str = "tenant-a";
const B: &str = "tenant-b";

fn workspace(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    )
}

/// What tenant A owns in AWS: its file systems, associations and security groups, as the
/// simulated AWS holds them (every field), keyed by id.
fn tenant_a_aws(state: &Value) -> Vec<Value> {
    let in_a = |r: &&Value| r["tags"]["workspaces.lustre.dev/namespace"] == A;
    [
        "fileSystems",
        "dataRepositoryAssociations",
        "securityGroups",
    ]
    .iter()
    .flat_map(|k| state[*k].as_array().cloned().unwrap_or_default())
    .filter(|r| in_a(&r))
    .collect()
}

/// How many of `before`'s records are gone or different in `after`, plus any new ones.
fn changed(before: &[Value], after: &[Value]) -> usize {
    before.iter().filter(|r| !after.contains(r)).count()
        + after.iter().filter(|r| !before.contains(r)).count()
}

/// Tenant A's workspace, claim and volume as the server holds them (the fields a change would
/// touch: spec, status ids and conditions, owners, finalizers).
async fn tenant_a_objects(c: &RealCluster) -> Value {
    let ws = c.json(&["get", "lws", "data", "-n", A]).await;
    let pvc = c.json(&["get", "pvc", "data", "-n", A]).await;
    let pv_name = pvc["spec"]["volumeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pv = c.json(&["get", "pv", &pv_name]).await;
    json!({
        "workspace": [ws["spec"], ws["status"]["fileSystemId"], ws["status"]["securityGroupId"],
            ws["status"]["phase"], ws["metadata"]["finalizers"]],
        "claim": [pvc["spec"], pvc["status"]["phase"], pvc["metadata"]["ownerReferences"]],
        "volume": [pv["spec"], pv["status"]["phase"]],
    })
}

/// Id of the file system the simulated AWS holds for workspace `uid` (by its UID tag).
fn own_file_system(state: &Value, uid: &str) -> Option<Value> {
    state["fileSystems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["tags"]["workspaces.lustre.dev/uid"] == uid)
        .cloned()
}

async fn forge_status(c: &RealCluster, name: &str, fs: &str, sg: &str) {
    let patch = json!({"status": {"fileSystemId": fs, "securityGroupId": sg}}).to_string();
    c.ok(&[
        "patch",
        "lws",
        name,
        "-n",
        B,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_only_what_its_own_workspaces_own() {
    let c = RealCluster::up("new");
    c.ok(&["apply", "--server-side", "-k", &path_arg("deploy")])
        .await;
    for ns in [A, B] {
        c.ok_with_input(
            &["apply", "-f", "-"],
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{lustre: enabled}}\n"
            ),
        )
        .await;
    }
    c.ok(&[
        "apply",
        "-f",
        &path_arg("deploy/examples/class-standard.yaml"),
    ])
    .await;
    let aws = sim_aws().await;
    let mut operator = OperatorProcess::start(&c, &aws.url, 1).await;

    // Tenant A's data: PERSISTENT_2, retained on delete, one S3 link.
    c.ok_with_input(
        &["apply", "-f", "-"],
        &workspace(
            A,
            "data",
            "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 250\ndeletionPolicy: Retain\ndataRepositories:\n- {name: d, s3Path: 's3://ml-datasets/a/', fileSystemPath: /d}",
        ),
    )
    .await;
    c.ok_with_input(
        &["apply", "-f", "-"],
        &workspace(B, "spoof", "storageCapacityGiB: 1200"),
    )
    .await;
    wait(
        &c,
        &[
            "--for=condition=Ready",
            "lws/data",
            "-n",
            A,
            "--timeout=120s",
        ],
        &operator,
    )
    .await;
    wait(
        &c,
        &[
            "--for=condition=Ready",
            "lws/spoof",
            "-n",
            B,
            "--timeout=120s",
        ],
        &operator,
    )
    .await;
    let a = c.json(&["get", "lws", "data", "-n", A]).await;
    let (a_fs, a_sg) = (
        a["status"]["fileSystemId"]
            .as_str()
            .expect("A's file system")
            .to_string(),
        a["status"]["securityGroupId"]
            .as_str()
            .expect("A's group")
            .to_string(),
    );
    let spoof_uid = c
        .ok(&[
            "get",
            "lws",
            "spoof",
            "-n",
            B,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await;
    let aws_before = tenant_a_aws(&aws.sim.snapshot());
    assert!(aws_before.len() >= 3, "A's resources: {aws_before:#?}");
    let objects_before = tenant_a_objects(&c).await;
    let mut attacks = 0;
    let mut refused = 0;

    // 1. Status names A's file system and group, and the spec grows: the operator grows B's
    //    own file system (found by its UID tag), never A's.
    operator.stop().await;
    forge_status(&c, "spoof", &a_fs, &a_sg).await;
    c.ok(&[
        "patch",
        "lws",
        "spoof",
        "-n",
        B,
        "--type=merge",
        "-p",
        r#"{"spec":{"storageCapacityGiB":2400}}"#,
    ])
    .await;
    operator = OperatorProcess::start(&c, &aws.url, 2).await;
    attacks += 1;
    let grown = c
        .until(
            "B's own file system grown",
            Duration::from_secs(90),
            || async {
                let state = aws.sim.snapshot();
                match own_file_system(&state, &spoof_uid) {
                    Some(fs) if fs["storageCapacity"] == 2400 => Ok(fs),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    if tenant_a_aws(&aws.sim.snapshot()) == aws_before {
        refused += 1;
    }
    wait(
        &c,
        &[
            "--for=condition=Ready",
            "lws/spoof",
            "-n",
            B,
            "--timeout=120s",
        ],
        &operator,
    )
    .await;
    let status_fs = c
        .ok(&[
            "get",
            "lws",
            "spoof",
            "-n",
            B,
            "-o",
            "jsonpath={.status.fileSystemId}",
        ])
        .await;
    assert_eq!(
        status_fs,
        grown["id"].as_str().unwrap_or_default(),
        "status names B's own"
    );

    // 2. Status names A's file system and group again, and B deletes its workspace: B's own
    //    file system and group go; A's file system, links and group stay.
    operator.stop().await;
    forge_status(&c, "spoof", &a_fs, &a_sg).await;
    c.ok(&["delete", "lws", "spoof", "-n", B, "--wait=false"])
        .await;
    operator = OperatorProcess::start(&c, &aws.url, 3).await;
    attacks += 1;
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=delete",
                "lws/spoof",
                "-n",
                B,
                "--timeout=120s",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "B's deletion did not finish: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        operator.log_text()
    );
    let state = aws.sim.snapshot();
    let b_left: Vec<&Value> = ["fileSystems", "securityGroups"]
        .iter()
        .flat_map(|k| state[*k].as_array().into_iter().flatten())
        .filter(|r| r["tags"]["workspaces.lustre.dev/uid"] == spoof_uid.as_str())
        .collect();
    assert!(b_left.is_empty(), "B's own resources leaked: {b_left:#?}");
    if tenant_a_aws(&state) == aws_before {
        refused += 1;
    }

    // 3. A claim of B's own, then a workspace naming it: never taken over, nothing created,
    //    and deleting the workspace leaves the claim.
    c.ok_with_input(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: shared\n  namespace: {B}\nspec:\n  accessModes: [ReadWriteMany]\n  storageClassName: manual\n  resources: {{requests: {{storage: 1Gi}}}}\n"
        ),
    )
    .await;
    c.ok_with_input(
        &["apply", "-f", "-"],
        &workspace(B, "grab", "storageCapacityGiB: 1200\nclaimName: shared"),
    )
    .await;
    attacks += 1;
    let reason = c
        .until("ClaimConflict", Duration::from_secs(60), || async {
            let r = c
                .ok(&[
                    "get",
                    "lws",
                    "grab",
                    "-n",
                    B,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#,
                ])
                .await;
            if r == "ClaimConflict" { Ok(r) } else { Err(r) }
        })
        .await;
    let grab_uid = c
        .ok(&[
            "get",
            "lws",
            "grab",
            "-n",
            B,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await;
    let created_for_grab = own_file_system(&aws.sim.snapshot(), &grab_uid);
    c.ok(&[
        "delete",
        "lws",
        "grab",
        "-n",
        B,
        "--wait=true",
        "--timeout=60s",
    ])
    .await;
    let claim = c.json(&["get", "pvc", "shared", "-n", B]).await;
    if reason == "ClaimConflict"
        && created_for_grab.is_none()
        && claim["metadata"]["ownerReferences"].is_null()
        && claim["metadata"]["deletionTimestamp"].is_null()
    {
        refused += 1;
    }

    let aws_changed = changed(&aws_before, &tenant_a_aws(&aws.sim.snapshot()));
    let objects_after = tenant_a_objects(&c).await;
    let objects_changed = ["workspace", "claim", "volume"]
        .iter()
        .filter(|k| objects_before[**k] != objects_after[**k])
        .count();
    operator.stop().await;
    println!(
        "tenancy: {attacks} attacks, {refused} refused, {aws_changed} foreign AWS resources changed, {objects_changed} foreign objects changed"
    );
    assert_eq!(
        (refused, aws_changed, objects_changed),
        (attacks, 0, 0),
        "A's AWS resources before: {aws_before:#?}\nafter: {:#?}",
        tenant_a_aws(&aws.sim.snapshot())
    );
}
