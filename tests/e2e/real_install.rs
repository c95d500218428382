//! The product installed on real control planes (built from the Kubernetes Go modules by
//! `scripts/control-plane`): the oldest Kubernetes minor EKS supports and the newest release.
//!
//! On both: the CRDs from `deploy/crds/` and the chart accepted (so a CRD whose CEL rules go
//! over kube-apiserver's cost budget fails here), and the fixture corpus judged by real
//! kubectl. On the newest: `helm lint / install / upgrade / uninstall`, `kubectl apply -k`,
//! a GitOps server-side apply, each with its pods admitted under the `restricted` Pod Security
//! level and the objects as `helm template` renders them; then the operator, run as the
//! chart's ServiceAccount with a TokenRequest token, takes the examples to Ready and back,
//! and the audit log shows no forbidden call.

mod real_cluster;
mod support;

use std::time::Duration;

use real_cluster::{
    OPERATOR_NS as NS, OPERATOR_USER as SERVICE_ACCOUNT, OperatorProcess, RELEASE, RealCluster,
    documents, missing_from, path_arg, sim_aws,
};
use serde_json::Value;
use support::{Fixture, fixtures, repo};
/// The README's install command's values.
const ROLE_ARN: &str = "serviceAccount.roleArn=arn:aws:iam::123456789012:role/lustre-operator";
const CLUSTER_ID: &str = "clusterId=my-cluster";

/// Every CRD file of `dir` accepted with server-side apply and Established.
async fn install_crds(c: &RealCluster, dir: &str) -> usize {
    let out = c
        .kubectl(
            &[
                "apply",
                "--server-side",
                "--field-manager=lustre-crds",
                "-f",
                &path_arg(dir),
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "k8s {}: the CRDs in {dir} were refused:\n{}",
        c.version,
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/lustreworkspaces.workspaces.lustre.dev",
        "crd/lustreworkspaceclasses.workspaces.lustre.dev",
        "crd/lustredatatasks.workspaces.lustre.dev",
        "--timeout=60s",
    ])
    .await;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("customresourcedefinition"))
        .count()
}

/// One way of writing objects: kubectl's client-side `apply` (what the README shows users) or
/// server-side apply under a field manager (what GitOps tools send).
#[derive(Clone, Copy, PartialEq)]
enum Write {
    ClientSide,
    ServerSide,
}

impl Write {
    fn args(self, dry_run: bool) -> Vec<&'static str> {
        let mut args = match self {
            Write::ClientSide => vec!["apply", "-f", "-"],
            Write::ServerSide => vec![
                "apply",
                "--server-side",
                "--field-manager=fixtures",
                "-f",
                "-",
            ],
        };
        if dry_run {
            args.push("--dry-run=server");
        }
        args
    }
}

/// Writes the fixture's stored object (for an update fixture) for real, then the judged one as
/// a dry run; removes the stored one. Whether it was accepted, and what kubectl said.
async fn judge(c: &RealCluster, f: &Fixture, how: Write) -> (bool, String) {
    let (judged, stored) = f.docs.split_last().expect("a document");
    for doc in stored {
        let out = c.kubectl(&how.args(false), Some(doc)).await;
        assert!(
            out.status.success(),
            "{}: the stored object was refused: {}",
            f.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = c.kubectl(&how.args(true), Some(judged)).await;
    for doc in stored {
        c.ok_with_input(&["delete", "--wait=true", "-f", "-"], doc)
            .await;
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every fixture through real kubectl: valid ones accepted and invalid ones refused both by
/// client-side apply, naming the field and the words `validate()` reports, and by
/// server-side apply (whose refusal of a duplicate list key comes from its own merge, in other
/// words). Returns (valid accepted, valid total, invalid refused, invalid total).
async fn judge_fixtures(c: &RealCluster) -> (usize, usize, usize, usize) {
    let mut failures = Vec::new();
    let mut counts = [0usize; 4];
    for (kind, valid) in [("valid", true), ("invalid", false)] {
        for f in fixtures(kind) {
            counts[if valid { 1 } else { 3 }] += 1;
            let (client_ok, said) = judge(c, &f, Write::ClientSide).await;
            let (server_ok, server_said) = judge(c, &f, Write::ServerSide).await;
            let problem = match (valid, client_ok, server_ok, f.expect.first()) {
                (true, true, true, _) => None,
                (true, _, _, _) => Some(format!("refused: {said}{server_said}")),
                (false, _, true, _) => Some("accepted by server-side apply".into()),
                (false, true, _, _) => Some("accepted by client-side apply".into()),
                (false, false, false, Some((field, fragment)))
                    if said.contains(&format!("{field}: ")) && said.contains(fragment.as_str()) =>
                {
                    None
                }
                (false, false, false, expect) => {
                    Some(format!("refused, but not with {expect:?}: {said}"))
                }
            };
            match problem {
                None => counts[if valid { 0 } else { 2 }] += 1,
                Some(p) => failures.push(format!("{kind}/{}: {p}", f.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "k8s {}: {} fixtures judged otherwise by the real apiserver:\n{}",
        c.version,
        failures.len(),
        failures.join("\n")
    );
    (counts[0], counts[1], counts[2], counts[3])
}

/// `crd` with every `maxItems`, `maxProperties` and `maxLength` multiplied by `factor`, in a
/// group of its own: accepted, it shows each rule stays within 1/factor of its budget (less
/// for rules that nest iterations).
fn with_bounds_scaled(crd: &Value, factor: u64) -> Value {
    fn scale(v: &mut Value, factor: u64) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    match (k.as_str(), child.as_u64()) {
                        ("maxItems" | "maxProperties" | "maxLength", Some(n)) => {
                            *child = Value::from(n * factor)
                        }
                        _ => scale(child, factor),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| scale(x, factor)),
            _ => {}
        }
    }
    let mut crd = crd.clone();
    scale(&mut crd["spec"]["versions"], factor);
    let group = "headroom.lustre.dev";
    crd["spec"]["group"] = Value::from(group);
    crd["metadata"]["name"] = Value::from(format!(
        "{}.{group}",
        crd["spec"]["names"]["plural"].as_str().unwrap_or_default()
    ));
    crd
}

/// The CRDs with their bounds doubled, judged without being stored.
async fn headroom(c: &RealCluster) -> usize {
    let mut accepted = 0;
    for file in std::fs::read_dir(repo().join("deploy/crds")).expect("crds") {
        let text = std::fs::read_to_string(file.expect("entry").path()).expect("crd");
        for crd in documents(&text) {
            let doubled = with_bounds_scaled(&crd, HEADROOM);
            let out = c
                .kubectl(
                    &["apply", "--server-side", "--dry-run=server", "-f", "-"],
                    Some(&doubled.to_string()),
                )
                .await;
            assert!(
                out.status.success(),
                "k8s {}: with every bound x{HEADROOM}, {} goes over the CEL cost budget: the rules have too little headroom:\n{}",
                c.version,
                crd["metadata"]["name"],
                String::from_utf8_lossy(&out.stderr)
            );
            accepted += 1;
        }
    }
    accepted
}

/// How many times its bounds each CRD must still fit the CEL cost budget.
const HEADROOM: u64 = 2;

/// CRDs from both directories, then the corpus; the figure line's part for this release.
async fn crds_and_corpus(c: &RealCluster) -> String {
    let accepted = install_crds(c, "deploy/crds").await;
    let chart = install_crds(c, "charts/lustre-operator/crds").await;
    let all = lustre_api::crd::crds().len();
    assert_eq!(
        (accepted, chart),
        (all, all),
        "every CRD from both directories"
    );
    assert_eq!(headroom(c).await, all, "every CRD with doubled bounds");
    c.ok(&["create", "namespace", "ml"]).await;
    let (va, vt, ir, it) = judge_fixtures(c).await;
    format!(
        "k8s {} CRDs accepted {}/{all} (and with bounds x{HEADROOM}), fixtures valid {va}/{vt}, invalid {ir}/{it}",
        c.version,
        accepted.min(chart)
    )
}

/// Waits until the operator Deployment's current pod template has `replicas` pods (created by
/// the real ReplicaSet controller and admitted under the namespace's Pod Security level: no
/// kubelet runs them), and no pod creation was refused.
async fn pods_admitted(c: &RealCluster, replicas: u64) {
    c.until(
        "the Deployment's pods admitted",
        Duration::from_secs(90),
        || async {
            let d = c.json(&["get", "deployment", RELEASE, "-n", NS]).await;
            let updated = d["status"]["updatedReplicas"].as_u64().unwrap_or(0);
            let observed = d["status"]["observedGeneration"] == d["metadata"]["generation"];
            if observed && updated == replicas {
                Ok(())
            } else {
                Err(format!("{}", d["status"]))
            }
        },
    )
    .await;
    let refused = c
        .ok(&[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert_eq!(refused.trim(), "", "pod creation refused");
}

/// Every object `rendered` holds is on the server with every field as rendered.
async fn matches_render(c: &RealCluster, rendered: &str, how: &str) {
    let docs = documents(rendered);
    assert!(docs.len() >= 5, "{how}: rendered {} objects", docs.len());
    let mut diffs = Vec::new();
    for want in &docs {
        let kind = want["kind"].as_str().unwrap_or_default();
        let name = want["metadata"]["name"].as_str().unwrap_or_default();
        let mut args = vec!["get", kind, name];
        if let Some(ns) = want["metadata"]["namespace"].as_str() {
            args.extend(["-n", ns]);
        } else if kind != "ClusterRole" && kind != "ClusterRoleBinding" && kind != "Namespace" {
            args.extend(["-n", NS]);
        }
        let live = c.json(&args).await;
        diffs.extend(
            missing_from(&live, want, "")
                .into_iter()
                .map(|d| format!("{kind}/{name}{d}")),
        );
    }
    assert!(
        diffs.is_empty(),
        "{how}: live objects differ from the render:\n{}",
        diffs.join("\n")
    );
}

/// `helm template` of the chart with `values` set (`--set`).
async fn template(c: &RealCluster, values: &[&str]) -> String {
    let mut args = vec!["template", RELEASE, "charts/lustre-operator", "-n", NS];
    for v in values {
        args.extend(["--set", v]);
    }
    c.helm_ok(&args).await
}

/// helm lint / install / upgrade / uninstall into a namespace enforcing `restricted`.
async fn helm_lifecycle(c: &RealCluster) {
    c.helm_ok(&[
        "lint",
        "charts/lustre-operator",
        "--set",
        ROLE_ARN,
        "--set",
        CLUSTER_ID,
    ])
    .await;
    c.ok(&["apply", "-f", &path_arg("deploy/manifests/namespace.yaml")])
        .await;
    // The README's command.
    c.helm_ok(&[
        "install",
        RELEASE,
        "charts/lustre-operator",
        "-n",
        NS,
        "--create-namespace",
        "--set",
        ROLE_ARN,
        "--set",
        CLUSTER_ID,
    ])
    .await;
    pods_admitted(c, 2).await;
    matches_render(
        c,
        &template(c, &[ROLE_ARN, CLUSTER_ID]).await,
        "helm install",
    )
    .await;

    let changed = [
        ROLE_ARN,
        CLUSTER_ID,
        "replicaCount=1",
        "controller.pollIntervalSeconds=30",
    ];
    let mut upgrade = vec![
        "upgrade",
        RELEASE,
        "charts/lustre-operator",
        "-n",
        NS,
        "--reuse-values",
    ];
    for v in &changed[1..] {
        upgrade.extend(["--set", v]);
    }
    c.helm_ok(&upgrade).await;
    pods_admitted(c, 1).await;
    matches_render(c, &template(c, &changed).await, "helm upgrade").await;

    // A workspace made while the release is installed outlives `helm uninstall`: Helm never
    // deletes what it installed from a chart's crds/ directory.
    c.ok(&[
        "apply",
        "-f",
        &path_arg("deploy/examples/namespace-ml.yaml"),
        "-f",
        &path_arg("deploy/examples/workspace-scratch.yaml"),
    ])
    .await;
    c.helm_ok(&["uninstall", RELEASE, "-n", NS]).await;
    c.until(
        "the release's objects gone",
        Duration::from_secs(60),
        || async {
            let left = c
                .ok(&[
                    "get",
                    "deployment,serviceaccount,service",
                    "-n",
                    NS,
                    "-o",
                    "name",
                ])
                .await;
            let left: Vec<&str> = left.lines().filter(|l| !l.ends_with("/default")).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(" "))
            }
        },
    )
    .await;
    c.ok(&["get", "crd", "lustreworkspaces.workspaces.lustre.dev"])
        .await;
    c.ok(&["get", "lws", "scratch", "-n", "ml"]).await;
    c.ok(&["delete", "lws", "scratch", "-n", "ml", "--wait=true"])
        .await;
}

/// `kubectl apply --server-side -k deploy/` as the README shows, then the same manifests as a
/// GitOps tool applies them (its own field manager) after the workload objects were removed.
/// Both hold the chart's defaults.
async fn kubectl_and_gitops(c: &RealCluster) {
    let rendered = template(c, &[]).await;
    let plain = path_arg("deploy/manifests/lustre-operator.yaml");
    c.ok(&["apply", "--server-side", "-k", &path_arg("deploy")])
        .await;
    pods_admitted(c, 2).await;
    matches_render(c, &rendered, "kubectl apply -k").await;

    c.ok(&["delete", "-f", &plain, "--wait=true"]).await;
    let built = c.ok(&["kustomize", &path_arg("deploy")]).await;
    c.ok_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager=argocd-controller",
            "-f",
            "-",
        ],
        &built,
    )
    .await;
    pods_admitted(c, 2).await;
    matches_render(c, &rendered, "GitOps server-side apply").await;
    let managers = c
        .ok(&[
            "get",
            "deployment",
            RELEASE,
            "-n",
            NS,
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(
        managers
            .split_whitespace()
            .any(|m| m == "argocd-controller"),
        "managers: {managers}"
    );
}

/// The operator as the chart's ServiceAccount takes the examples to Ready and back. Returns
/// (ready, bound, workspaces, forbidden, requests).
async fn operator_as_service_account(c: &RealCluster) -> (usize, usize, usize, usize, usize) {
    let aws = sim_aws().await;
    let operator = OperatorProcess::start(c, &aws.url, 1).await;
    let operator_log = || operator.log_text();

    let examples = repo().join("deploy/examples");
    let mut apply = vec!["apply".to_string()];
    for f in [
        "namespace-ml.yaml",
        "class-standard.yaml",
        "workspace-scratch.yaml",
        "workspace-persistent.yaml",
    ] {
        apply.extend(["-f".into(), examples.join(f).to_string_lossy().into()]);
    }
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    c.ok(&apply).await;
    let out = c
        .kubectl(
            &[
                "wait",
                "--for=condition=Ready",
                "lws",
                "--all",
                "-n",
                "ml",
                "--timeout=120s",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "workspaces not Ready: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        operator_log()
    );
    let workspaces = c.json(&["get", "lws", "-n", "ml"]).await;
    let items = workspaces["items"].as_array().expect("items").clone();
    let ready = items
        .iter()
        .filter(|w| {
            w["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|cond| cond["type"] == "Ready" && cond["status"] == "True")
        })
        .count();
    // The real PersistentVolume binder binds each claim to its pre-bound volume.
    let bound = c
        .until("claims Bound", Duration::from_secs(60), || async {
            let claims = c.json(&["get", "pvc", "-n", "ml"]).await;
            let bound = claims["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["status"]["phase"] == "Bound")
                .count();
            if bound == items.len() {
                Ok(bound)
            } else {
                Err(format!("{bound} of {} Bound", items.len()))
            }
        })
        .await;
    let out = c
        .kubectl(
            &[
                "delete",
                "lws",
                "--all",
                "-n",
                "ml",
                "--wait=true",
                "--timeout=120s",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "delete did not complete: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        operator_log()
    );
    let left = c.ok(&["get", "pv", "-o", "name"]).await;
    assert_eq!(left.trim(), "", "volumes left after delete");
    operator.stop().await;
    drop(aws);

    let requests = c.audit_of(SERVICE_ACCOUNT);
    let forbidden: Vec<&Value> = requests
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 403)
        .collect();
    assert!(
        forbidden.is_empty(),
        "forbidden calls of the operator:\n{}",
        forbidden
            .iter()
            .map(|e| format!("{} {}", e["verb"], e["requestURI"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    (ready, bound, items.len(), forbidden.len(), requests.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_on_real_control_planes() {
    let old = RealCluster::up("old");
    let old_line = crds_and_corpus(&old).await;
    drop(old);

    let new = RealCluster::up("new");
    let new_line = crds_and_corpus(&new).await;
    helm_lifecycle(&new).await;
    kubectl_and_gitops(&new).await;
    let (ready, bound, n, forbidden, requests) = operator_as_service_account(&new).await;
    assert_eq!((ready, bound), (n, n));
    assert!(
        requests > 0,
        "the audit log recorded none of the operator's requests"
    );
    println!(
        "real install: {old_line}; {new_line}; helm install/upgrade/uninstall ok; apply -k ok; pods admitted; operator as its ServiceAccount: Ready {ready}/{n}, Bound {bound}/{n}, forbidden {forbidden} (of {requests} requests audited)"
    );
}
