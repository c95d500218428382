//! Hostile tenants on a real control plane: the operator, run as the chart's ServiceAccount,
//! must never act on another namespace's AWS resources or Kubernetes objects, whatever a
//! tenant writes into its own workspace's status or claims.
//!
//! The legitimate stories pass beside them: adopting a file system the class's policy admits,
//! re-adopting a kept one from the namespace it was kept from, linking a shared dataset for
//! reading beside the namespace's own results prefix for writing, and a workspace that
//! carries on once its namespace is admitted again.
//!
//! Tenants A and B are users with the built-in edit role in their namespaces (the chart
//! aggregates workspaces into it, without `/status`). B's status writes are refused, as are
//! an admin's (the chart's admission policy). Then, with that policy removed, B gets the widest rights a tenant could
//! be given by mistake: it may write its workspaces' status; the operator must be safe without
//! relying on RBAC or the policy. Every attack runs with the operator
//! stopped while the tenant writes, so the operator's first look is at the forged state.

mod real_cluster;
mod support;

use std::time::Duration;

use real_cluster::{OperatorProcess, RealCluster, path_arg, sim_aws, wait};
use serde_json::{Value, json};

const A: &str = "tenant-a";
const B: &str = "tenant-b";
/// Tenant A's user.
const TENANT_A: &str = "alice@tenant-a";
/// Tenant B's user.
const TENANT_B: &str = "bob@tenant-b";

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

/// Deletes `ns/name` and waits until it is gone (its finalizer done).
async fn delete_workspace(c: &RealCluster, ns: &str, name: &str) {
    c.ok(&[
        "delete",
        "lws",
        name,
        "-n",
        ns,
        "--wait=true",
        "--timeout=60s",
    ])
    .await;
}

/// Waits until `ns/name` is Ready.
async fn ready(c: &RealCluster, ns: &str, name: &str, operator: &OperatorProcess) {
    let what = format!("lws/{name}");
    wait(
        c,
        &["--for=condition=Ready", &what, "-n", ns, "--timeout=120s"],
        operator,
    )
    .await;
}

/// The Ready condition's message of a workspace, once its reason is `reason`.
async fn wait_reason(c: &RealCluster, ns: &str, name: &str, reason: &str) -> String {
    c.until(
        &format!("{ns}/{name}: {reason}"),
        Duration::from_secs(60),
        || async {
            let ws = c.json(&["get", "lws", name, "-n", ns]).await;
            let ready = ws["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .cloned()
                .unwrap_or_default();
            if ready["reason"] == reason {
                Ok(ready["message"].as_str().unwrap_or_default().to_string())
            } else {
                Err(ready.to_string())
            }
        },
    )
    .await
}

/// A file system made straight in the simulated AWS (by Terraform, the console, another
/// tool), not by the operator.
async fn made_by_hand(aws_url: &str, token: &str, subnet: &str, tags: &[(&str, &str)]) -> String {
    use lustre_cloud::FileSystems;
    let cloud = lustre_cloud::aws::AwsCloud::new(
        &lustre_cloud::aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(aws_url.to_string()),
            static_credentials: Some(("AKIDSANDBOX".into(), "sandbox".into())),
            ..Default::default()
        },
        None,
    )
    .await;
    cloud
        .create_file_system(&lustre_cloud::FileSystemRequest::scratch(
            token,
            subnet,
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
        .await
        .expect("a file system made by hand")
        .id
}

/// A class whose workspaces may adopt file systems tagged `lustre-adoptable: "true"`.
const ADOPTING_CLASS: &str = "apiVersion: workspaces.lustre.dev/v1alpha1
kind: LustreWorkspaceClass
metadata: {name: adopting}
spec:
  subnetId: subnet-0123456789abcdef0
  securityGroup: {managed: true, clientCidrs: [10.0.0.0/16]}
  allowedNamespaces: {matchLabels: {lustre: enabled}}
  adoption:
    fileSystemTags: {lustre-adoptable: \"true\"}
";

/// A class with a dataset every namespace may read but none may write, and a results prefix
/// per namespace.
const SHARING_CLASS: &str = "apiVersion: workspaces.lustre.dev/v1alpha1
kind: LustreWorkspaceClass
metadata: {name: sharing}
spec:
  subnetId: subnet-0123456789abcdef0
  securityGroup: {managed: true, clientCidrs: [10.0.0.0/16]}
  allowedNamespaces: {matchLabels: {lustre: enabled}}
  readOnlyDataRepositories: [\"s3://ml-datasets/shared/\"]
  allowedDataRepositories: [\"s3://ml-results/{namespace}/\"]
";

/// The id (or, with `path`, another field) of `ns/name` by jsonpath.
async fn field(c: &RealCluster, ns: &str, name: &str, path: &str) -> String {
    c.ok(&[
        "get",
        "lws",
        name,
        "-n",
        ns,
        "-o",
        &format!("jsonpath={path}"),
    ])
    .await
}

/// Writes ids into B's workspace's status as a cluster admin.
async fn forge_status(c: &RealCluster, name: &str, fs: &str, sg: &str) {
    let patch = json!({"status": {"fileSystemId": fs, "securityGroupId": sg}});
    forge(c, "lws", name, patch).await;
}

/// Writes `patch` into the status of B's object `kind/name` as a cluster admin (retried while
/// the apiserver still enforces the admission policy this suite removed).
async fn forge(c: &RealCluster, kind: &str, name: &str, patch: Value) {
    let patch = patch.to_string();
    let args = [
        "patch",
        kind,
        name,
        "-n",
        B,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ];
    c.until("status forged", Duration::from_secs(30), || async {
        let out = c.kubectl(&args, None).await;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
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

    // Tenants A and B are users with the built-in edit role in their namespaces (the chart
    // aggregates workspaces into it): enough to create a workspace.
    for (ns, user) in [(A, TENANT_A), (B, TENANT_B)] {
        c.ok(&[
            "create",
            "rolebinding",
            "tenant-edit",
            "--clusterrole=edit",
            &format!("--user={user}"),
            "-n",
            ns,
        ])
        .await;
    }
    c.until(
        "edit aggregates workspaces",
        Duration::from_secs(30),
        || async {
            let out = c
                .kubectl(
                    &[
                        "auth",
                        "can-i",
                        "create",
                        "lustreworkspaces",
                        "-n",
                        B,
                        "--as",
                        TENANT_B,
                    ],
                    None,
                )
                .await;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stdout).into())
            }
        },
    )
    .await;
    // Tenant A's data: PERSISTENT_2, retained on delete, one S3 link.
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_A],
        &workspace(
            A,
            "data",
            "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 250\ndeletionPolicy: Retain\ndataRepositories:\n- {name: d, s3Path: 's3://ml-datasets/a/', fileSystemPath: /d}",
        ),
    )
    .await;
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_B],
        &workspace(B, "spoof", "storageCapacityGiB: 1200"),
    )
    .await;
    ready(&c, A, "data", &operator).await;
    ready(&c, B, "spoof", &operator).await;
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
    // Tenant A keeps a file system it no longer mounts (deletionPolicy: Retain).
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_A],
        &workspace(
            A,
            "kept",
            "storageCapacityGiB: 1200\ndeletionPolicy: Retain",
        ),
    )
    .await;
    ready(&c, A, "kept", &operator).await;
    let a_kept = field(&c, A, "kept", "{.status.fileSystemId}").await;
    delete_workspace(&c, A, "kept").await;
    // File systems made outside the operator: one the adoption policy admits, one without its
    // tag, one with it but in another VPC.
    aws.sim
        .add_subnet("subnet-0aaaaaaaaaaaaaaaa", "vpc-0bbbbbbbbbbbbbbbb");
    let adoptable = made_by_hand(
        &aws.url,
        "adoptable",
        "subnet-0123456789abcdef0",
        &[("lustre-adoptable", "true")],
    )
    .await;
    let untagged = made_by_hand(&aws.url, "untagged", "subnet-0123456789abcdef0", &[]).await;
    let elsewhere = made_by_hand(
        &aws.url,
        "elsewhere",
        "subnet-0aaaaaaaaaaaaaaaa",
        &[("lustre-adoptable", "true")],
    )
    .await;
    c.ok_with_input(&["apply", "-f", "-"], ADOPTING_CLASS).await;
    let aws_before = tenant_a_aws(&aws.sim.snapshot());
    assert!(aws_before.len() >= 3, "A's resources: {aws_before:#?}");
    let objects_before = tenant_a_objects(&c).await;
    let mut attacks = 0;
    let mut refused = 0;

    // 0. Writing status, as the tenant (its roles leave /status out) and as a cluster admin
    //    (the chart's admission policy lets only the operator write it).
    let forged = json!({"status": {"fileSystemId": a_fs, "securityGroupId": a_sg}}).to_string();
    for who in [Some(TENANT_B), None] {
        attacks += 1;
        let mut args = vec![
            "patch",
            "lws",
            "spoof",
            "-n",
            B,
            "--subresource=status",
            "--type=merge",
            "-p",
            &forged,
        ];
        if let Some(user) = who {
            args.extend(["--as", user]);
        }
        let out = c.kubectl(&args, None).await;
        let said = String::from_utf8_lossy(&out.stderr);
        let stopped = match who {
            Some(_) => said.contains("forbidden"),
            None => said.contains("only the lustre-operator's service account may write"),
        };
        if !out.status.success() && stopped {
            refused += 1;
        } else {
            eprintln!("status write by {who:?} was not refused as expected: {said}");
        }
    }
    // From here on the policy is gone, as on a cluster without admission policies: the
    // operator must be safe on its own.
    c.ok(&[
        "delete",
        "validatingadmissionpolicybinding",
        "lustre-operator-status-writers",
    ])
    .await;

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
    ready(&c, B, "spoof", &operator).await;
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
    delete_workspace(&c, B, "grab").await;
    let claim = c.json(&["get", "pvc", "shared", "-n", B]).await;
    if reason == "ClaimConflict"
        && created_for_grab.is_none()
        && claim["metadata"]["ownerReferences"].is_null()
        && claim["metadata"]["deletionTimestamp"].is_null()
    {
        refused += 1;
    }

    // 4. A workspace that would take over a tag the class sets (its cost centre, its owner):
    //    refused before any AWS call.
    attacks += 1;
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_B],
        &workspace(
            B,
            "retag",
            "storageCapacityGiB: 1200\ntags: {team: tenant-a}",
        ),
    )
    .await;
    let message = wait_reason(&c, B, "retag", "InvalidSpec").await;
    let retag_uid = field(&c, B, "retag", "{.metadata.uid}").await;
    if message.contains("tag team is set by class standard")
        && own_file_system(&aws.sim.snapshot(), &retag_uid).is_none()
    {
        refused += 1;
    }
    delete_workspace(&c, B, "retag").await;

    // 5. A link whose path climbs out of the allowed prefix with a `..` segment: refused at
    //    admission (and by the operator), so no association is ever asked for.
    attacks += 1;
    let out = c
        .kubectl(
            &["apply", "-f", "-", "--as", TENANT_B],
            Some(&workspace(
                B,
                "climb",
                "storageCapacityGiB: 1200\ndataRepositories:\n- {name: d, s3Path: 's3://ml-datasets/public/../private/', fileSystemPath: /d}",
            )),
        )
        .await;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no . or .. segments")
    {
        refused += 1;
    }

    // 6-10. Adoption: A's file system through a class that adopts nothing and through one
    //      that does, A's kept one, one without the policy's tag, one in another VPC. One
    //      answer for all (it must not tell "exists" from "not yours").
    let adopter_mark = |state: &Value, id: &str| {
        state["fileSystems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == id)
            .map(|f| f["tags"]["workspaces.lustre.dev/adopted-by"].clone())
    };
    let mut answers = std::collections::BTreeSet::new();
    for (name, class, id) in [
        ("take-a", "standard", a_fs.as_str()),
        ("take-a-policy", "adopting", a_fs.as_str()),
        ("take-kept", "adopting", a_kept.as_str()),
        ("take-untagged", "adopting", untagged.as_str()),
        ("take-elsewhere", "adopting", elsewhere.as_str()),
    ] {
        attacks += 1;
        c.ok_with_input(
            &["apply", "-f", "-"],
            &workspace(
                B,
                name,
                &format!("className: {class}\nstorageCapacityGiB: 1200\nfileSystemId: {id}"),
            ),
        )
        .await;
        let message = wait_reason(&c, B, name, "AdoptionRefused").await;
        answers.insert(message.replace(id, "<id>"));
        delete_workspace(&c, B, name).await;
        if adopter_mark(&aws.sim.snapshot(), id) == Some(Value::Null) {
            refused += 1;
        }
    }
    assert_eq!(answers.len(), 1, "refusals differ: {answers:#?}");

    // The legitimate adoption: B adopts the file system the policy admits...
    let adopt = |ns: &str, name: &str, id: &str| {
        workspace(
            ns,
            name,
            &format!("className: adopting\nstorageCapacityGiB: 1200\nfileSystemId: {id}"),
        )
    };
    c.ok_with_input(&["apply", "-f", "-"], &adopt(B, "adopter", &adoptable))
        .await;
    ready(&c, B, "adopter", &operator).await;
    let adopter_uid = field(&c, B, "adopter", "{.metadata.uid}").await;
    // 11. ...and A cannot take it from B.
    attacks += 1;
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_A],
        &adopt(A, "second", &adoptable),
    )
    .await;
    wait_reason(&c, A, "second", "AdoptionRefused").await;
    delete_workspace(&c, A, "second").await;
    if adopter_mark(&aws.sim.snapshot(), &adoptable) == Some(Value::from(adopter_uid.as_str())) {
        refused += 1;
    }

    // 12-13. Through a class with a shared read-only dataset and a results prefix per
    //        namespace: exporting (DELETED included) into the shared dataset, and linking
    //        A's results prefix. Refused before any AWS call.
    c.ok_with_input(&["apply", "-f", "-"], SHARING_CLASS).await;
    for (name, link, says) in [
        (
            "poison",
            "{name: d, s3Path: 's3://ml-datasets/shared/', fileSystemPath: /d, autoImport: [NEW], autoExport: [NEW, CHANGED, DELETED]}",
            "is read-only in class sharing",
        ),
        (
            "peek",
            "{name: d, s3Path: 's3://ml-results/tenant-a/', fileSystemPath: /d}",
            "allowed prefixes: s3://ml-results/tenant-b/, s3://ml-datasets/shared/",
        ),
    ] {
        attacks += 1;
        c.ok_with_input(
            &["apply", "-f", "-", "--as", TENANT_B],
            &workspace(
                B,
                name,
                &format!(
                    "className: sharing\nstorageCapacityGiB: 1200\ndataRepositories:\n- {link}"
                ),
            ),
        )
        .await;
        let message = wait_reason(&c, B, name, "InvalidSpec").await;
        let uid = field(&c, B, name, "{.metadata.uid}").await;
        if message.contains(says) && own_file_system(&aws.sim.snapshot(), &uid).is_none() {
            refused += 1;
        } else {
            eprintln!("{name}: {message}");
        }
        delete_workspace(&c, B, name).await;
    }
    // The legitimate links: the shared dataset imported, B's own results prefix read-write.
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_B],
        &workspace(
            B,
            "share",
            "className: sharing\nstorageCapacityGiB: 1200\ndataRepositories:\n- {name: in, s3Path: 's3://ml-datasets/shared/imagenet/', fileSystemPath: /in, autoImport: [NEW, CHANGED, DELETED]}\n- {name: out, s3Path: 's3://ml-results/tenant-b/run-1/', fileSystemPath: /out, autoExport: [NEW, CHANGED, DELETED]}",
        ),
    )
    .await;
    ready(&c, B, "share", &operator).await;

    // 14. The platform team takes B's namespace out of the class (its label goes), and B
    //     then grows its workspace: the workspace says NamespaceNotAllowed at once (namespaces
    //     are watched), in status and in an Event; no AWS change; its file system stays.
    //     Labelled again, the growth goes ahead.
    attacks += 1;
    let share_uid = field(&c, B, "share", "{.metadata.uid}").await;
    c.ok(&["label", "namespace", B, "lustre-"]).await;
    let message = wait_reason(&c, B, "share", "NamespaceNotAllowed").await;
    c.ok(&[
        "patch",
        "lws",
        "share",
        "-n",
        B,
        "--type=merge",
        "-p",
        r#"{"spec":{"storageCapacityGiB":2400}}"#,
        "--as",
        TENANT_B,
    ])
    .await;
    // The spec change is seen (observedGeneration moves on) and refused.
    c.until(
        "the growth is seen and not made",
        Duration::from_secs(60),
        || async {
            let ws = c.json(&["get", "lws", "share", "-n", B]).await;
            let ready = ws["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .cloned()
                .unwrap_or_default();
            if ready["observedGeneration"] == ws["metadata"]["generation"]
                && ready["reason"] == "NamespaceNotAllowed"
            {
                Ok(())
            } else {
                Err(ready.to_string())
            }
        },
    )
    .await;
    let kept = own_file_system(&aws.sim.snapshot(), &share_uid);
    let fs_condition = field(
        &c,
        B,
        "share",
        r#"{.status.conditions[?(@.type=="FileSystemReady")].status}"#,
    )
    .await;
    let events = c
        .ok(&[
            "get",
            "events",
            "-n",
            B,
            "--field-selector",
            "reason=NamespaceNotAllowed",
            "-o",
            "name",
        ])
        .await;
    if message.contains("does not admit namespace tenant-b")
        && kept.as_ref().is_some_and(|f| f["storageCapacity"] == 1200)
        && fs_condition == "True"
        && !events.is_empty()
    {
        refused += 1;
    } else {
        eprintln!(
            "shut out: {message}; {kept:?}; FileSystemReady {fs_condition}; events {events:?}"
        );
    }
    c.ok(&["label", "namespace", B, "lustre=enabled"]).await;
    c.until(
        "B's growth resumes once labelled again",
        Duration::from_secs(90),
        || async {
            match own_file_system(&aws.sim.snapshot(), &share_uid) {
                Some(fs) if fs["storageCapacity"] == 2400 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    ready(&c, B, "share", &operator).await;

    // 15. A's export runs; B's own import runs too. With the operator stopped, B's task's
    //     status is made to name A's task, and B deletes its task: the operator cancels
    //     nothing of A's (FSx shows that task on A's file system, tagged with A's UID).
    attacks += 1;
    let (left_alone, restarted) = a_task_left_alone(&c, &aws, operator).await;
    operator = restarted;
    if left_alone {
        refused += 1;
    }

    let aws_changed = changed(&aws_before, &tenant_a_aws(&aws.sim.snapshot()));
    let objects_after = tenant_a_objects(&c).await;
    let objects_changed = ["workspace", "claim", "volume"]
        .iter()
        .filter(|k| objects_before[**k] != objects_after[**k])
        .count();

    // 16-19. Backups: A's backup is restorable in B only where the class allows it, by name
    //     or by id; B's backup object made (by forged status) to name A's backup restores
    //     nothing and deletes nothing of A's.
    let (tried, stopped, restarted) = backups_stay_in_their_namespace(&c, &aws, operator).await;
    operator = restarted;
    attacks += tried;
    refused += stopped;

    // 20-22. Shares: a share into a namespace the class forbids makes nothing there, even
    //     with that namespace's grant; a grant cannot pull a workspace that offers it nothing;
    //     a grant whose status is forged to name A's volume and claim, once deleted, removes
    //     only its own share's objects.
    let (tried, stopped, restarted) = shares_reach_only_who_accepted(&c, &aws, operator).await;
    operator = restarted;
    attacks += tried;
    refused += stopped;
    // The legitimate re-adoption: A takes back the file system it kept, from its namespace.
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_A],
        &adopt(A, "kept-again", &a_kept),
    )
    .await;
    ready(&c, A, "kept-again", &operator).await;
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

fn backup(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspaceBackup\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"
    )
}

/// An object's field by jsonpath, once it is non-empty.
async fn nonempty(c: &RealCluster, kind: &str, ns: &str, name: &str, path: &str) -> String {
    c.until(
        &format!("{kind} {ns}/{name} {path}"),
        Duration::from_secs(60),
        || async {
            let args = [
                "get",
                kind,
                name,
                "-n",
                ns,
                "-o",
                &format!("jsonpath={path}"),
            ];
            let out = c.ok(&args).await;
            if out.is_empty() {
                Err("empty".to_string())
            } else {
                Ok(out)
            }
        },
    )
    .await
}

/// Attacks 16-19 (backups). A backs up a workspace of its own. B asks to restore it by name
/// from A's namespace (16) and by its id (17): both refused while the class allows no other
/// namespace, with no restore call. With the operator stopped, B's own backup object's status
/// is made to name A's backup; B restores from that object (18) and deletes it (19): nothing is
/// restored from A's backup and A's backup stays. Then the platform team lets B restore A's
/// backups (`restore.fromNamespaces`), and the same restores by name and by id go through.
async fn backups_stay_in_their_namespace(
    c: &RealCluster,
    aws: &real_cluster::SimOnLoopback,
    operator: OperatorProcess,
) -> (u32, u32, OperatorProcess) {
    const VAULT: &str =
        "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125";
    let as_a = ["apply", "-f", "-", "--as", TENANT_A];
    let as_b = ["apply", "-f", "-", "--as", TENANT_B];
    c.ok_with_input(&as_a, &workspace(A, "vault", VAULT)).await;
    c.ok_with_input(&as_b, &workspace(B, "own", VAULT)).await;
    ready(c, A, "vault", &operator).await;
    ready(c, B, "own", &operator).await;
    c.ok_with_input(&as_a, &backup(A, "a-backup", "{workspace: vault}"))
        .await;
    c.ok_with_input(&as_b, &backup(B, "b-backup", "{workspace: own}"))
        .await;
    let available = "{.status.conditions[?(@.type==\"Ready\")].status}";
    for (ns, name) in [(A, "a-backup"), (B, "b-backup")] {
        c.until(
            &format!("{ns}/{name} Available"),
            Duration::from_secs(60),
            || async {
                match nonempty(c, "lwb", ns, name, available).await.as_str() {
                    "True" => Ok(()),
                    other => Err(other.to_string()),
                }
            },
        )
        .await;
    }
    let a_backup = nonempty(c, "lwb", A, "a-backup", "{.status.backupId}").await;
    let restores = aws.sim.calls("CreateFileSystemFromBackup");
    let (mut attacks, mut refused) = (0, 0);
    let restore =
        |name: &str, source: &str| workspace(B, name, &format!("{VAULT}\nsource: {source}"));

    for (name, source, says) in [
        (
            "by-name",
            "{backupName: a-backup, backupNamespace: tenant-a}".to_string(),
            "does not let its workspaces restore backups of namespace tenant-a",
        ),
        (
            "by-id",
            format!("{{backupId: {a_backup}}}"),
            "does not let its workspaces restore backups of namespace tenant-a",
        ),
    ] {
        attacks += 1;
        c.ok_with_input(&as_b, &restore(name, &source)).await;
        let message = wait_reason(c, B, name, "InvalidSpec").await;
        if message.contains(says) && aws.sim.calls("CreateFileSystemFromBackup") == restores {
            refused += 1;
        } else {
            eprintln!("restore of A's backup {name}: {message}");
        }
    }

    operator.stop().await;
    let forged = json!({"status": {"backupId": a_backup, "phase": "Available"}});
    forge(c, "lwb", "b-backup", forged).await;
    c.ok_with_input(&as_b, &restore("forged", "{backupName: b-backup}"))
        .await;
    let operator = OperatorProcess::start(c, &aws.url, 5).await;
    attacks += 1;
    let message = wait_reason(c, B, "forged", "InvalidSpec").await;
    if message.contains("which is gone or not that object's")
        && aws.sim.calls("CreateFileSystemFromBackup") == restores
    {
        refused += 1;
    } else {
        eprintln!("restore through a forged backup object: {message}");
    }
    attacks += 1;
    let deletes = aws.sim.calls("DeleteBackup");
    c.ok(&[
        "delete",
        "lwb",
        "b-backup",
        "-n",
        B,
        "--as",
        TENANT_B,
        "--timeout=60s",
    ])
    .await;
    let a_kept = aws.sim.snapshot()["backups"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|b| b["BackupId"] == a_backup.as_str());
    if a_kept && aws.sim.calls("DeleteBackup") == deletes {
        refused += 1;
    } else {
        eprintln!("B's delete reached A's backup {a_backup}: kept {a_kept}");
    }

    // The platform team allows it: the same restore by name goes through.
    c.ok(&[
        "patch",
        "lustreworkspaceclass",
        "standard",
        "--type=merge",
        "-p",
        r#"{"spec":{"restore":{"fromNamespaces":["tenant-a"]}}}"#,
    ])
    .await;
    ready(c, B, "by-name", &operator).await;
    ready(c, B, "by-id", &operator).await;
    assert_eq!(aws.sim.calls("CreateFileSystemFromBackup"), restores + 2);
    c.ok(&[
        "patch",
        "lustreworkspaceclass",
        "standard",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/restore"}]"#,
    ])
    .await;
    (attacks, refused, operator)
}

fn grant(ns: &str, name: &str, from: &str, workspace: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspaceGrant\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{fromNamespace: {from}, workspace: {workspace}}}\n"
    )
}

/// A grant's phase and message, once its phase is `phase`.
async fn grant_at(c: &RealCluster, ns: &str, name: &str, phase: &str) -> String {
    c.until(
        &format!("grant {ns}/{name} {phase}"),
        Duration::from_secs(60),
        || async {
            let g = c.json(&["get", "lwg", name, "-n", ns]).await;
            match g["status"]["phase"].as_str() {
                Some(p) if p == phase => Ok(g["status"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// The claims of a namespace, by name.
async fn claims_in(c: &RealCluster, ns: &str) -> Vec<String> {
    let list = c.json(&["get", "pvc", "-n", ns]).await;
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Attacks 20-22 (shares), with the class sharing to tenant-b only. 20: B's workspace offers a
/// share to tenant-a and A grants it: the class forbids it, nothing is made in tenant-a. 21:
/// B's grant names A's workspace, which offers B nothing: refused, nothing made in tenant-b.
/// 22: A offers B a read-only share and B accepts (the legitimate story); with the operator
/// stopped, B's grant's status is made to name A's claim and volume, and B deletes its grant:
/// only B's share's claim and volume go; A's claim and volume stay.
async fn shares_reach_only_who_accepted(
    c: &RealCluster,
    aws: &real_cluster::SimOnLoopback,
    operator: OperatorProcess,
) -> (u32, u32, OperatorProcess) {
    c.ok(&[
        "patch",
        "lustreworkspaceclass",
        "standard",
        "--type=merge",
        "-p",
        r#"{"spec":{"sharing":{"toNamespaces":["tenant-b"]}}}"#,
    ])
    .await;
    let (mut attacks, mut refused) = (0, 0);
    let as_a = ["apply", "-f", "-", "--as", TENANT_A];
    let as_b = ["apply", "-f", "-", "--as", TENANT_B];
    let a_claims = claims_in(c, A).await;

    attacks += 1;
    let offer = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125\nshares:\n- {namespace: tenant-a, claimName: planted}";
    c.ok_with_input(&as_b, &workspace(B, "offer", offer)).await;
    ready(c, B, "offer", &operator).await;
    c.ok_with_input(&as_a, &grant(A, "from-b", B, "offer"))
        .await;
    let said = grant_at(c, A, "from-b", "Refused").await;
    if said.contains("does not let its workspaces share with namespace tenant-a")
        && claims_in(c, A).await == a_claims
    {
        refused += 1;
    } else {
        eprintln!(
            "a share into a forbidden namespace: {said}; claims {:?}",
            claims_in(c, A).await
        );
    }

    attacks += 1;
    let b_claims = claims_in(c, B).await;
    c.ok_with_input(&as_b, &grant(B, "pull", A, "vault")).await;
    let said = grant_at(c, B, "pull", "Refused").await;
    if said.contains("offers no share to namespace tenant-b") && claims_in(c, B).await == b_claims {
        refused += 1;
    } else {
        eprintln!("a grant pulling an unoffered workspace: {said}");
    }

    attacks += 1;
    let share = json!({"spec": {"shares": [{"namespace": B, "claimName": "vault-shared"}]}});
    c.ok(&[
        "patch",
        "lws",
        "vault",
        "-n",
        A,
        "--type=merge",
        "-p",
        &share.to_string(),
        "--as",
        TENANT_A,
    ])
    .await;
    c.ok(&[
        "delete",
        "lwg",
        "pull",
        "-n",
        B,
        "--as",
        TENANT_B,
        "--timeout=60s",
    ])
    .await;
    c.ok_with_input(&as_b, &grant(B, "accept", A, "vault"))
        .await;
    grant_at(c, B, "accept", "Bound").await;
    let a_volume = field(c, A, "vault", "{.status.volumeName}").await;
    let a_claim = field(c, A, "vault", "{.status.claimName}").await;
    let before = (
        c.json(&["get", "pv", &a_volume]).await["metadata"]["uid"].clone(),
        c.json(&["get", "pvc", &a_claim, "-n", A]).await["metadata"]["uid"].clone(),
    );
    operator.stop().await;
    let forged =
        json!({"status": {"claimName": a_claim, "volumeName": a_volume, "phase": "Bound"}});
    forge(c, "lwg", "accept", forged).await;
    c.ok(&[
        "delete",
        "lwg",
        "accept",
        "-n",
        B,
        "--as",
        TENANT_B,
        "--wait=false",
    ])
    .await;
    let operator = OperatorProcess::start(c, &aws.url, 6).await;
    c.ok(&[
        "wait",
        "--for=delete",
        "lwg/accept",
        "-n",
        B,
        "--timeout=60s",
    ])
    .await;
    let after = (
        c.json(&["get", "pv", &a_volume]).await["metadata"]["uid"].clone(),
        c.json(&["get", "pvc", &a_claim, "-n", A]).await["metadata"]["uid"].clone(),
    );
    let b_left = claims_in(c, B).await;
    if after == before && !after.0.is_null() && !b_left.contains(&"vault-shared".to_string()) {
        refused += 1;
    } else {
        eprintln!(
            "a forged grant's delete: A's volume and claim {before:?} -> {after:?}; B's claims {b_left:?}"
        );
    }
    c.ok(&[
        "patch",
        "lustreworkspaceclass",
        "standard",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/sharing"}]"#,
    ])
    .await;
    (attacks, refused, operator)
}

/// A data task's field by jsonpath, once it is non-empty.
async fn task_field(c: &RealCluster, ns: &str, name: &str, path: &str) -> String {
    nonempty(c, "ldt", ns, name, path).await
}

/// Attack 15: B's task's status names A's running export, and B deletes its task. Returns
/// whether A's task was left running and uncanceled, and the operator restarted for it.
async fn a_task_left_alone(
    c: &RealCluster,
    aws: &real_cluster::SimOnLoopback,
    operator: OperatorProcess,
) -> (bool, OperatorProcess) {
    let quick = aws.sim.timing();
    aws.sim.set_timing(lustre_sandbox::aws::state::Timing {
        task_run_ms: 600_000,
        ..quick.clone()
    });
    let task = |ns: &str, name: &str, spec: &str| {
        format!(
            "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreDataTask\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"
        )
    };
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_A],
        &task(A, "a-export", "{workspace: data, type: Export}"),
    )
    .await;
    c.ok_with_input(
        &["apply", "-f", "-", "--as", TENANT_B],
        &task(
            B,
            "b-import",
            "{workspace: share, type: Import, paths: [/in]}",
        ),
    )
    .await;
    let a_task = task_field(c, A, "a-export", "{.status.taskId}").await;
    task_field(c, B, "b-import", "{.status.taskId}").await;
    let cancels = aws.sim.calls("CancelDataRepositoryTask");
    operator.stop().await;
    let forged = json!({"status": {"taskId": a_task, "phase": "Running"}}).to_string();
    c.ok(&[
        "patch",
        "ldt",
        "b-import",
        "-n",
        B,
        "--subresource=status",
        "--type=merge",
        "-p",
        &forged,
    ])
    .await;
    c.ok(&[
        "delete",
        "ldt",
        "b-import",
        "-n",
        B,
        "--wait=false",
        "--as",
        TENANT_B,
    ])
    .await;
    let operator = OperatorProcess::start(c, &aws.url, 4).await;
    c.ok(&[
        "wait",
        "--for=delete",
        "ldt/b-import",
        "-n",
        B,
        "--timeout=60s",
    ])
    .await;
    let a_running = aws.sim.tasks().into_iter().any(|t| {
        t.id == a_task && t.lifecycle == lustre_sandbox::aws::state::TaskLifecycle::Executing
    });
    let canceled = aws.sim.calls("CancelDataRepositoryTask") - cancels;
    // A's object shows its task Running once the restarted operator has looked at it (it
    // may still say Pending from before the stop, if the task had not started then).
    let mut phase = String::new();
    for _ in 0..150 {
        phase = task_field(c, A, "a-export", "{.status.phase}").await;
        if phase != "Pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A's own delete cancels A's own export (the legitimate path), and the timing goes back.
    c.ok(&[
        "delete",
        "ldt",
        "a-export",
        "-n",
        A,
        "--as",
        TENANT_A,
        "--timeout=60s",
    ])
    .await;
    aws.sim.set_timing(quick);
    if !(a_running && canceled == 0 && phase == "Running") {
        eprintln!("A's task {a_task}: executing {a_running}, cancels {canceled}, phase {phase}");
        return (false, operator);
    }
    (true, operator)
}
