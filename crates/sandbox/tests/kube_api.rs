//! kube-rs against the sandbox API server: CRDs become kinds, admission runs the CEL rules,
//! status is written with server-side apply, watches survive `410 Gone`, and the cluster
//! behaviours the operator relies on (PV/PVC binding, PVC protection, owner GC) happen.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Config};
use lustre_api::{LustreWorkspace, LustreWorkspaceStatus, Phase};
use lustre_sandbox::kube::KubeSandbox;
use serde_json::json;

async fn start() -> (KubeSandbox, Client, tokio::sync::oneshot::Sender<()>) {
    let sb = KubeSandbox::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = sb
        .serve("127.0.0.1:0".parse().expect("addr"), async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    let config = Config::new(format!("http://{addr}").parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    (sb, client, tx)
}

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in lustre_api::crd::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "ml"}})).expect("ns"),
    )
    .await
    .expect("namespace");
}

fn workspace(name: &str, capacity: i32) -> LustreWorkspace {
    serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"storageCapacityGiB": capacity}
    }))
    .expect("workspace")
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn custom_resources_with_admission_status_and_generation() {
    let (_sb, client, _stop) = start().await;
    install_crds(&client).await;
    let api: Api<LustreWorkspace> = Api::namespaced(client.clone(), "ml");

    let created = api
        .create(&PostParams::default(), &workspace("w", 1200))
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());

    let err = api
        .create(&PostParams::default(), &workspace("bad", 3600))
        .await
        .expect_err("CEL refuses");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.storageCapacityGiB")
            && status.message.contains("multiple of 2400"),
        "{}",
        status.message
    );

    // Shrinking is a transition rule (oldSelf).
    let shrink = Patch::Merge(json!({"spec": {"storageCapacityGiB": 600}}));
    let err = api
        .patch("w", &PatchParams::default(), &shrink)
        .await
        .expect_err("may only grow");
    assert!(err.to_string().contains("may only grow"), "{err}");

    // Status via server-side apply does not bump the generation; a spec change does.
    let status = LustreWorkspaceStatus {
        phase: Some(Phase::Pending),
        observed_generation: Some(1),
        ..Default::default()
    };
    let ssa = Patch::Apply(
        json!({"apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace", "status": status}),
    );
    let after = api
        .patch_status("w", &PatchParams::apply("lustre-operator").force(), &ssa)
        .await
        .expect("status");
    assert_eq!(after.metadata.generation, Some(1));
    assert_eq!(after.status.and_then(|s| s.phase), Some(Phase::Pending));
    let grown = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"storageCapacityGiB": 2400}})),
        )
        .await
        .expect("grow");
    assert_eq!(grown.metadata.generation, Some(2));
    assert_eq!(
        grown.status.and_then(|s| s.phase),
        Some(Phase::Pending),
        "spec writes keep status"
    );

    // Stale resourceVersion: 409.
    let mut stale = created.clone();
    stale.spec.storage_capacity_gib = Some(4800);
    let err = api
        .replace("w", &PostParams::default(), &stale)
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );

    // Finalizers hold deletion until removed.
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["workspaces.lustre.dev/cleanup"]}})),
    )
    .await
    .expect("finalizer");
    api.delete("w", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = api.get("w").await.expect("still there");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert!(
        api.get_opt("w").await.expect("get").is_none(),
        "gone once the finalizer is removed"
    );
}

#[tokio::test]
async fn a_watcher_survives_410_gone_relists_and_follows_its_selector() {
    let (sb, client, _stop) = start().await;
    install_crds(&client).await;
    let api: Api<LustreWorkspace> = Api::namespaced(client.clone(), "ml");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    // Watch only labelled workspaces, so changes to others move the server's resourceVersion
    // past the watcher's last one without the watcher seeing them.
    let stream = watcher(
        api.clone(),
        watcher::Config::default().labels("watched=yes").timeout(1),
    );
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let line = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    format!("apply {}", o.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::Init) => "init".into(),
                Ok(watcher::Event::InitDone) => "init-done".into(),
                Ok(watcher::Event::Delete(o)) => {
                    format!("delete {}", o.metadata.name.unwrap_or_default())
                }
                Err(e) => format!("error {e}"),
            };
            record.lock().expect("lock").push(line);
        }
    });
    let count = |s: &str| {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|l| *l == s)
            .count()
    };
    let mut labelled = workspace("b", 1200);
    labelled.metadata.labels = Some([("watched".to_string(), "yes".to_string())].into());
    api.create(&PostParams::default(), &labelled)
        .await
        .expect("create b");
    eventually("b seen", || async { count("apply b") == 1 }).await;
    let inits = count("init");

    // Unwatched changes, then compaction at the current version: the watcher's next resume
    // is from a version the server no longer has.
    for name in ["c", "d"] {
        api.create(&PostParams::default(), &workspace(name, 1200))
            .await
            .expect("create unwatched");
    }
    sb.store().compact();
    eventually("410 answered with a re-list", || async {
        count("init") > inits
    })
    .await;
    eventually("the re-list delivers b again", || async {
        count("apply b") >= 2
    })
    .await;
    let lines = seen.lock().expect("lock").clone();
    assert!(
        !lines.iter().any(|l| l == "apply c" || l == "apply d"),
        "selector respected: {lines:?}"
    );

    // As kube-apiserver does: an object modified out of the selector is deleted for the
    // watch, one modified into it is added (a cache of labelled objects stays exact).
    let label = |v: serde_json::Value| Patch::Merge(json!({"metadata": {"labels": v}}));
    api.patch(
        "b",
        &PatchParams::default(),
        &label(json!({"watched": null})),
    )
    .await
    .expect("unlabel b");
    eventually("b deleted for the watch", || async {
        count("delete b") == 1
    })
    .await;
    api.patch(
        "c",
        &PatchParams::default(),
        &label(json!({"watched": "yes"})),
    )
    .await
    .expect("label c");
    eventually("c added for the watch", || async { count("apply c") == 1 }).await;
    task.abort();
}

#[tokio::test]
async fn claims_bind_are_protected_and_collected() {
    let (_sb, client, _stop) = start().await;
    install_crds(&client).await;
    let ws_api: Api<LustreWorkspace> = Api::namespaced(client.clone(), "ml");
    let owner = ws_api
        .create(&PostParams::default(), &workspace("owner", 1200))
        .await
        .expect("owner");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "ml");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ml");
    pvs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "lws-1"},
        "spec": {"capacity": {"storage": "1200Gi"}, "accessModes": ["ReadWriteMany"], "claimRef": {"namespace": "ml", "name": "data"},
                 "csi": {"driver": "fsx.csi.aws.com", "volumeHandle": "fs-1"}}
    })).expect("pv")).await.expect("create pv");
    let uid = owner.metadata.uid.clone().expect("uid");
    pvcs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "data", "ownerReferences": [{"apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace", "name": "owner", "uid": uid, "controller": true}]},
        "spec": {"accessModes": ["ReadWriteMany"], "volumeName": "lws-1", "resources": {"requests": {"storage": "1200Gi"}}}
    })).expect("pvc")).await.expect("create pvc");
    let claim = pvcs.get("data").await.expect("pvc");
    assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    assert_eq!(
        pvs.get("lws-1")
            .await
            .expect("pv")
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Bound")
    );
    assert!(
        claim
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kubernetes.io/pvc-protection".to_string())
    );

    pods.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "trainer"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}
    })).expect("pod")).await.expect("create pod");
    let trainer = pods.get("trainer").await.expect("pod");
    assert_eq!(
        trainer.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    assert_eq!(
        trainer.spec.and_then(|s| s.node_name).as_deref(),
        Some("sandbox-node"),
        "scheduled, which is what makes pvc-protection count it"
    );

    // Deleting the claim waits for the pod.
    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete pvc");
    assert!(
        pvcs.get("data")
            .await
            .expect("held")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    // The volume deleted meanwhile stays while its claim is bound (pv-protection).
    pvs.delete("lws-1", &DeleteParams::default())
        .await
        .expect("delete pv");
    let held = pvs.get("lws-1").await.expect("pv held");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kubernetes.io/pv-protection".to_string())
    );
    assert_eq!(
        held.status.and_then(|s| s.phase).as_deref(),
        Some("Bound"),
        "still bound to the held claim"
    );
    pods.delete("trainer", &DeleteParams::default())
        .await
        .expect("delete pod");
    assert!(
        pvcs.get_opt("data").await.expect("get").is_none(),
        "released once no pod uses it"
    );
    assert!(
        pvs.get_opt("lws-1").await.expect("get").is_none(),
        "the volume goes once its claim is gone (Released, then pv-protection lets it go)"
    );

    // Owner garbage collection.
    pvcs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace", "name": "owner", "uid": uid}]},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
    })).expect("pvc")).await.expect("create owned");
    ws_api
        .delete("owner", &DeleteParams::default())
        .await
        .expect("delete owner");
    assert!(
        pvcs.get_opt("owned").await.expect("get").is_none(),
        "collected with its owner"
    );
}

#[tokio::test]
async fn foreground_and_orphan_deletion_and_apply_conflicts() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::ConfigMap;
    let (_sb, client, _stop) = start().await;
    install_crds(&client).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ml");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm"),
        )
        .await
        .expect("owner");
    let uid = owner.metadata.uid.clone().expect("uid");
    let dependent = |name: &str, finalizers: Vec<&str>| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "finalizers": finalizers,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true}]}}))
        .expect("cm")
    };
    cms.create(
        &PostParams::default(),
        &dependent("held", vec!["test/hold"]),
    )
    .await
    .expect("dependent");

    // Foreground: the owner stays (deleting) while its dependent exists.
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let o = cms.get("owner").await.expect("still there");
    assert!(o.metadata.deletion_timestamp.is_some());
    assert_eq!(
        o.metadata.finalizers.unwrap_or_default(),
        ["foregroundDeletion"]
    );
    assert!(
        cms.get("held")
            .await
            .expect("dependent")
            .metadata
            .deletion_timestamp
            .is_some(),
        "the dependent is being deleted"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release the dependent");
    assert!(cms.get_opt("held").await.expect("get").is_none());
    assert!(
        cms.get_opt("owner").await.expect("get").is_none(),
        "the owner goes once its dependents are gone"
    );

    // Orphan: the dependent stays, without its owner reference.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm"),
        )
        .await
        .expect("owner again");
    let uid = owner.metadata.uid.clone().expect("uid");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "kept",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}))
        .expect("cm"),
    )
    .await
    .expect("dependent");
    cms.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    let kept = cms.get("kept").await.expect("orphaned, not deleted");
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // Server-side apply: a second manager changing a field the first owns is refused.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "ml");
    let lease = |holder: &str| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": holder}});
    leases
        .patch("l", &PatchParams::apply("a"), &Patch::Apply(lease("a")))
        .await
        .expect("first");
    let err = leases
        .patch("l", &PatchParams::apply("b"), &Patch::Apply(lease("b")))
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains(".spec.holderIdentity"), "{}", s.message);
        }
        other => panic!("{other}"),
    }
    leases
        .patch(
            "l",
            &PatchParams::apply("b").force(),
            &Patch::Apply(lease("b")),
        )
        .await
        .expect("forced");
    assert_eq!(
        leases
            .get("l")
            .await
            .expect("lease")
            .spec
            .and_then(|s| s.holder_identity),
        Some("b".into())
    );
}

/// A CRD whose rule runs a regex over map keys (no schema keyword bounds them) is refused, as
/// kube-apiserver refuses it for its CEL cost; the same CRD with the rule over the bounded
/// values is accepted.
#[tokio::test]
async fn a_crd_with_an_unbounded_rule_is_refused() {
    let (_sb, client, _stop) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = |rule: &str| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"tags": {
                            "type": "object", "maxProperties": 20,
                            "additionalProperties": {"type": "string", "maxLength": 256},
                            "x-kubernetes-validations": [{"rule": rule}]}}}}}}}]}
        }))
        .expect("crd")
    };
    let err = crds
        .create(
            &PostParams::default(),
            &crd("self.all(k, k.matches('^[a-z]*$'))"),
        )
        .await
        .expect_err("refused");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains(
            "spec.validation.openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget (k.matches() runs over a map key"
        ),
        "{}",
        status.message
    );
    crds.create(
        &PostParams::default(),
        &crd("self.all(k, self[k].matches('^[a-z]*$'))"),
    )
    .await
    .expect("a rule over bounded values is accepted");
}
