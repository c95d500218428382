//! User stories of sharing: one curated dataset, many teams. A workspace offers shares to
//! namespaces; each receiving namespace accepts with a `LustreWorkspaceGrant` and gets a claim
//! of its own (a sub-path, read-only where asked); a namespace that did not accept gets
//! nothing; deleting the source revokes the shares and waits for pods that still use them.

use serde_json::Value;

use crate::support::*;

const CURATED: &str = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125\nshares:\n- {namespace: team-a, subPath: /imagenet, claimName: imagenet}\n- {namespace: team-b, readOnly: false}\n- {namespace: team-c}";

const DEFAULT_STORAGE_CLASS: &str = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: block-default\n  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: ebs.csi.aws.com\n";

fn grant(ns: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspaceGrant\nmetadata: {{name: curated, namespace: {ns}}}\nspec: {{fromNamespace: ml, workspace: curated}}\n"
    )
}

/// The volume a claim of `ns` is bound to.
async fn volume_of(e: &E2e, ns: &str, claim: &str) -> Value {
    let name = e
        .ok(&[
            "get",
            "pvc",
            claim,
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.volumeName}",
        ])
        .await;
    serde_json::from_str(&e.ok(&["get", "pv", &name, "-o", "json"]).await).expect("pv json")
}

async fn grant_phase(e: &E2e, ns: &str) -> String {
    e.ok(&[
        "get",
        "lwg",
        "curated",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.phase}",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_shared_with_two_namespaces_one_read_only_at_a_sub_path() {
    let e = E2e::start(quick()).await;
    for ns in ["team-a", "team-b", "team-c"] {
        e.ok(&["create", "namespace", ns]).await;
    }
    e.patch_class(
        r#"{"spec":{"sharing":{"toNamespaces":["team-a","team-b","team-c"],"readWrite":true}}}"#,
    )
    .await;
    e.apply(&workspace("curated", CURATED)).await;
    e.wait_for("condition=Ready", "lws/curated").await;
    let mount = e.jsonpath("lws/curated", "{.status.mountName}").await;
    let fs = e.jsonpath("lws/curated", "{.status.fileSystemId}").await;

    // Most clusters have a default StorageClass, which kube-apiserver gives a claim that
    // names none: a share's volume and claim name the workspace volume's class themselves
    // (and keep its mount options), or the claim would show a block-storage class.
    e.ok_with_input(&["apply", "-f", "-"], DEFAULT_STORAGE_CLASS)
        .await;

    // Two namespaces accept; team-c does not.
    e.ok_with_input(&["apply", "-f", "-"], &grant("team-a"))
        .await;
    e.ok_with_input(&["apply", "-f", "-"], &grant("team-b"))
        .await;
    for ns in ["team-a", "team-b"] {
        e.ok(&[
            "wait",
            "--for=jsonpath={.status.phase}=Bound",
            "lwg/curated",
            "-n",
            ns,
            TIMEOUT,
        ])
        .await;
    }
    let source = e.jsonpath("lws/curated", "{.status.volumeName}").await;
    let source: Value =
        serde_json::from_str(&e.ok(&["get", "pv", &source, "-o", "json"]).await).expect("pv json");
    let a = volume_of(&e, "team-a", "imagenet").await;
    for field in ["storageClassName", "mountOptions"] {
        assert!(!source["spec"][field].is_null(), "{source:#}");
        assert_eq!(a["spec"][field], source["spec"][field], "{field}");
    }
    let class = e
        .ok(&[
            "get",
            "pvc",
            "imagenet",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.spec.storageClassName}",
        ])
        .await;
    assert_eq!(
        class,
        source["spec"]["storageClassName"]
            .as_str()
            .unwrap_or_default()
    );
    assert_eq!(
        a["spec"]["csi"]["volumeAttributes"]["mountname"],
        format!("{mount}/imagenet")
    );
    assert_eq!(a["spec"]["csi"]["volumeHandle"], fs.as_str());
    assert_eq!(a["spec"]["csi"]["readOnly"], true);
    assert_eq!(
        a["spec"]["accessModes"],
        serde_json::json!(["ReadOnlyMany"])
    );
    let b = volume_of(&e, "team-b", "curated").await;
    assert_eq!(
        b["spec"]["csi"]["volumeAttributes"]["mountname"],
        mount.as_str()
    );
    assert!(b["spec"]["csi"]["readOnly"].is_null(), "{b:#}");
    assert_eq!(
        b["spec"]["accessModes"],
        serde_json::json!(["ReadWriteMany"])
    );
    for (ns, claim) in [("team-a", "imagenet"), ("team-b", "curated")] {
        let phase = e
            .ok(&[
                "get",
                "pvc",
                claim,
                "-n",
                ns,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .await;
        assert_eq!(phase, "Bound", "{ns}/{claim}");
    }
    let nothing = e.ok(&["get", "pvc", "-n", "team-c", "-o", "name"]).await;
    assert!(
        nothing.trim().is_empty(),
        "team-c asked for nothing: {nothing}"
    );
    e.wait_for(
        r#"jsonpath={.status.shares[?(@.namespace=="team-b")].bound}=true"#,
        "lws/curated",
    )
    .await;
    let shares = e.jsonpath("lws/curated", "{.status.shares}").await;
    let shares: Value = serde_json::from_str(&shares).expect("shares");
    assert_eq!(
        shares,
        serde_json::json!([
            {"namespace": "team-a", "claimName": "imagenet", "granted": true, "bound": true},
            {"namespace": "team-b", "claimName": "curated", "granted": true, "bound": true},
            {"namespace": "team-c", "claimName": "curated", "granted": false, "bound": false},
        ])
    );
    // A grant's claim is created once (again, answered 409, only by a reconcile that ran
    // before the claims' watch showed it), not at every reconcile of the grant; its volume
    // is applied when it differs.
    let requests = e.operator_requests();
    let count = |verb: &str, resource: &str| {
        requests
            .iter()
            .filter(|a| a.verb == verb && a.resource == resource)
            .filter(|a| a.namespace.starts_with("team-") || a.name.starts_with("lws-share-"))
            .count()
    };
    let (creates, applies) = (
        count("create", "persistentvolumeclaims"),
        count("patch", "persistentvolumes"),
    );
    assert!(
        (2..=6).contains(&creates) && (2..=6).contains(&applies),
        "two grants: {creates} creates of their claims, {applies} applies of their volumes"
    );

    // team-b revokes its grant: its claim and volume go.
    e.ok(&[
        "delete", "lwg", "curated", "-n", "team-b", "--wait", TIMEOUT,
    ])
    .await;
    let left = e.ok(&["get", "pvc", "-n", "team-b", "-o", "name"]).await;
    assert!(left.trim().is_empty(), "{left}");

    // The source is deleted while a pod in team-a uses the share: the share is revoked, the
    // deletion waits for the pod, and nothing in AWS goes until it has.
    let pod = pod_using("imagenet").replace("namespace: ml", "namespace: team-a");
    e.ok_with_input(&["apply", "-f", "-"], &pod).await;
    e.ok(&["delete", "lws", "curated", "-n", "ml", "--wait=false"])
        .await;
    e.wait_for(
        "jsonpath={.status.conditions[0].reason}=ClaimInUse",
        "lws/curated",
    )
    .await;
    let said = e
        .jsonpath("lws/curated", "{.status.conditions[0].message}")
        .await;
    assert!(said.contains("team-a/imagenet"), "{said}");
    assert_eq!(e.sim.calls("DeleteFileSystem"), 0);
    assert_eq!(grant_phase(&e, "team-a").await, "Revoked");
    e.ok(&[
        "delete",
        "pod",
        "trainer",
        "-n",
        "team-a",
        "--grace-period=0",
        "--force",
    ])
    .await;
    e.ok(&["wait", "--for=delete", "lws/curated", "-n", "ml", TIMEOUT])
        .await;
    assert_eq!(e.sim.calls("DeleteFileSystem"), 1);
    let pvs = e.ok(&["get", "pv", "-o", "name"]).await;
    assert!(pvs.trim().is_empty(), "no volume left: {pvs}");
}
