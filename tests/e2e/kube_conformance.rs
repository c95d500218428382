//! The sandbox API server against a real kube-apiserver: the same requests, through kube-rs,
//! to both, and what each answers compared (status code, reason and message of a refusal;
//! the fields a request changes when it succeeds): creates and conflicts, stale updates,
//! server-side apply conflicts and managers, selectors, metadata-only lists, CEL refusals,
//! finalizers, the status subresource, watch event order, garbage collection.
//!
//! Where the two differ the sandbox is fixed; a difference that stays is listed in
//! [`KNOWN`] with the reason, and in docs/architecture.md.

mod real_cluster;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::PartialObjectMeta;
use kube::{Client, Config, ResourceExt};
use lustre_api::LustreWorkspace;
use real_cluster::RealCluster;
use serde_json::{Value, json};

const NS: &str = "conformance";

/// Differences that stay, by step, with why.
const KNOWN: &[(&str, &str)] = &[];

/// What a step saw: `ok <the fields that matter>` or `<code> <reason>: <message>`.
fn seen<T: serde::Serialize>(r: Result<T, kube::Error>, keep: impl Fn(&Value) -> Value) -> String {
    match r {
        Ok(v) => format!("ok {}", keep(&serde_json::to_value(v).unwrap_or_default())),
        Err(kube::Error::Api(s)) => format!("{} {}: {}", s.code, s.reason, s.message),
        Err(e) => format!("error {e}"),
    }
}

fn data(v: &Value) -> Value {
    v["data"].clone()
}

fn names(v: &Value) -> Value {
    Value::from(
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["metadata"]["name"].clone())
            .collect::<Vec<_>>(),
    )
}

fn workspace(name: &str, spec: Value) -> LustreWorkspace {
    serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
        "metadata": {"name": name, "namespace": NS}, "spec": spec
    }))
    .expect("workspace")
}

fn config_map(name: &str, extra: Value) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name, "namespace": NS}});
    json_patch::merge(&mut v, &extra);
    serde_json::from_value(v).expect("config map")
}

/// Installs the CRDs and waits until the server serves them.
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in lustre_api::crd::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("crd");
    }
    let start = Instant::now();
    loop {
        let established = crds
            .list(&ListParams::default())
            .await
            .expect("crds")
            .items
            .iter()
            .filter(|c| {
                c.status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
            .count();
        if established >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "CRDs not established"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sequence, run against one server; (step, what it saw) in order.
async fn sequence(client: Client) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("ns");
    out.push((
        "create a namespace",
        seen(namespaces.create(&PostParams::default(), &ns).await, |v| {
            v["metadata"]["name"].clone()
        }),
    ));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let a = config_map(
        "a",
        json!({"metadata": {"labels": {"app": "x"}}, "data": {"k": "v"}}),
    );
    let created = cms.create(&PostParams::default(), &a).await;
    let first_rv = created
        .as_ref()
        .ok()
        .and_then(|c| c.resource_version())
        .unwrap_or_default();
    out.push(("create a config map", seen(created, data)));
    out.push((
        "create it again",
        seen(cms.create(&PostParams::default(), &a).await, data),
    ));
    out.push(("get a missing one", seen(cms.get("missing").await, data)));
    let mut newer = a.clone();
    newer.data = Some([("k".to_string(), "v2".to_string())].into());
    newer.metadata.resource_version = Some(first_rv.clone());
    out.push((
        "replace at the current version",
        seen(cms.replace("a", &PostParams::default(), &newer).await, data),
    ));
    out.push((
        "replace at a stale version",
        seen(cms.replace("a", &PostParams::default(), &newer).await, data),
    ));
    let apply = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"s": value}});
    out.push((
        "apply a field as m1",
        seen(
            cms.patch("a", &PatchParams::apply("m1"), &Patch::Apply(&apply("1")))
                .await,
            data,
        ),
    ));
    out.push((
        "apply it as m2 without force",
        seen(
            cms.patch("a", &PatchParams::apply("m2"), &Patch::Apply(&apply("2")))
                .await,
            data,
        ),
    ));
    out.push((
        "apply it as m2 with force",
        seen(
            cms.patch(
                "a",
                &PatchParams::apply("m2").force(),
                &Patch::Apply(&apply("2")),
            )
            .await,
            data,
        ),
    ));
    out.push((
        "managers after the forced apply",
        seen(cms.get("a").await, |v| {
            let mut m: Vec<String> = v["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "{}/{}",
                        f["manager"].as_str().unwrap_or_default(),
                        f["operation"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            m.sort();
            Value::from(m)
        }),
    ));
    cms.create(
        &PostParams::default(),
        &config_map("b", json!({"data": {"k": "v"}})),
    )
    .await
    .expect("b");
    out.push((
        "list by label",
        seen(
            cms.list(&ListParams::default().labels("app=x")).await,
            names,
        ),
    ));
    let metadata: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client.clone(), NS);
    out.push((
        "list metadata only",
        seen(metadata.list(&ListParams::default()).await, |v| {
            let mut n = names(v);
            if let Some(a) = n.as_array_mut() {
                a.retain(|x| x != "kube-root-ca.crt");
            }
            json!({"names": n, "data": v["items"][0]["data"]})
        }),
    ));

    let workspaces: Api<LustreWorkspace> = Api::namespaced(client.clone(), NS);
    out.push((
        "create an invalid workspace",
        seen(
            workspaces
                .create(
                    &PostParams::default(),
                    &workspace("bad", json!({"storageCapacityGiB": 1000})),
                )
                .await,
            |v| v["spec"].clone(),
        ),
    ));
    out.push((
        "create a workspace with a name too long",
        seen(
            workspaces
                .create(
                    &PostParams::default(),
                    &workspace(&"w".repeat(64), json!({"storageCapacityGiB": 1200})),
                )
                .await,
            |v| v["spec"].clone(),
        ),
    ));
    let mut held = workspace("held", json!({"storageCapacityGiB": 1200}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    out.push((
        "create a workspace with a finalizer",
        seen(
            workspaces.create(&PostParams::default(), &held).await,
            |v| v["metadata"]["finalizers"].clone(),
        ),
    ));
    out.push((
        "write status through the main resource",
        seen(
            workspaces
                .patch(
                    "held",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"status": {"phase": "Ready"}, "spec": {"storageCapacityGiB": 2400}}),
                    ),
                )
                .await,
            |v| json!([v["spec"]["storageCapacityGiB"], v["status"]]),
        ),
    ));
    out.push((
        "write status through /status",
        seen(
            workspaces
                .patch_status(
                    "held",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"status": {"phase": "Ready"}, "spec": {"storageCapacityGiB": 4800}}),
                    ),
                )
                .await,
            |v| json!([v["spec"]["storageCapacityGiB"], v["status"]["phase"]]),
        ),
    ));
    out.push((
        "delete it",
        seen(
            workspaces
                .delete("held", &DeleteParams::default())
                .await
                .map(|e| e.left().map(|w| w.metadata.deletion_timestamp.is_some())),
            |v| v.clone(),
        ),
    ));
    out.push((
        "get it while it is held",
        seen(workspaces.get("held").await, |v| {
            Value::from(v["metadata"]["deletionTimestamp"].is_string())
        }),
    ));
    out.push((
        "release the finalizer",
        seen(
            workspaces
                .patch(
                    "held",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await,
            |v| v["metadata"]["finalizers"].clone(),
        ),
    ));
    out.push((
        "get it after",
        seen(workspaces.get("held").await, |v| {
            v["metadata"]["name"].clone()
        }),
    ));

    // Watch event order from a known version: create, change, delete.
    let rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut events = cms
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(
        &PostParams::default(),
        &config_map("w", json!({"data": {"n": "1"}})),
    )
    .await
    .expect("w");
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"n": "2"}})),
    )
    .await
    .expect("patch w");
    cms.delete("w", &DeleteParams::default())
        .await
        .expect("delete w");
    let mut order = Vec::new();
    while order.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(20), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(o)))) => order.push(format!(
                "ADDED {}",
                o.data
                    .unwrap_or_default()
                    .get("n")
                    .cloned()
                    .unwrap_or_default()
            )),
            Ok(Ok(Some(WatchEvent::Modified(o)))) => order.push(format!(
                "MODIFIED {}",
                o.data
                    .unwrap_or_default()
                    .get("n")
                    .cloned()
                    .unwrap_or_default()
            )),
            Ok(Ok(Some(WatchEvent::Deleted(o)))) => order.push(format!("DELETED {}", o.name_any())),
            Ok(Ok(Some(WatchEvent::Bookmark(_)))) => {}
            other => {
                order.push(format!("{other:?}"));
                break;
            }
        }
    }
    out.push((
        "watch a create, a change and a delete",
        format!("ok {order:?}"),
    ));

    // Garbage collection: a child owned by a deleted parent goes.
    let parent = cms
        .create(&PostParams::default(), &config_map("parent", json!({})))
        .await
        .expect("parent");
    let child = config_map(
        "child",
        json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent.uid()}]}}),
    );
    cms.create(&PostParams::default(), &child)
        .await
        .expect("child");
    cms.delete("parent", &DeleteParams::background())
        .await
        .expect("delete parent");
    let start = Instant::now();
    let collected = loop {
        match cms.get_opt("child").await {
            Ok(None) => break "ok collected".to_string(),
            Ok(Some(_)) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(Some(_)) => break "ok kept after 30 s".to_string(),
            Err(e) => break format!("error {e}"),
        }
    };
    out.push(("a deleted parent's child", collected));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_as_kube_apiserver_does() {
    let real = RealCluster::up("new");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(real.kubeconfig()).expect("admin kubeconfig");
    let real_client = Client::try_from(
        Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config"),
    )
    .expect("client");
    let world = lustre_sandbox::World::start(Default::default())
        .await
        .expect("sandbox");
    let sandbox_client =
        Client::try_from(Config::new(world.kube_url.parse().expect("url"))).expect("client");
    install_crds(&real_client).await;
    install_crds(&sandbox_client).await;

    let on_real = sequence(real_client).await;
    let on_sandbox = sequence(sandbox_client).await;
    let known: BTreeMap<&str, &str> = KNOWN.iter().copied().collect();
    let mut differences = Vec::new();
    for ((step, real), (_, sandbox)) in on_real.iter().zip(&on_sandbox) {
        if real != sandbox {
            differences.push(format!(
                "{step}{}\n  real:    {real}\n  sandbox: {sandbox}",
                known
                    .get(step)
                    .map(|why| format!(" (known: {why})"))
                    .unwrap_or_default()
            ));
        }
    }
    let unknown: Vec<&String> = differences
        .iter()
        .filter(|d| !d.contains(" (known: "))
        .collect();
    println!(
        "conformance: {} requests compared with kube-apiserver {}, {} differences ({} known)",
        on_real.len(),
        real.version,
        differences.len(),
        differences.len() - unknown.len()
    );
    for d in &differences {
        println!("{d}");
    }
    assert_eq!(on_real.len(), on_sandbox.len());
    assert!(
        unknown.is_empty(),
        "the sandbox answers differently:\n{}",
        differences.join("\n")
    );
}
