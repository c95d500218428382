//! How often the operator writes a workspace's status over its whole life (create → Ready →
//! delete): once per step the workspace shows, none that repeats what it already says.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use lustre_api::LustreWorkspace;

use crate::real_cluster::{BINDER, OPERATOR_USER};
use crate::support::*;

/// Each distinct status a watch of workspace `name` saw, in order (phase, Ready's reason and
/// message), and `gone` last once the watch saw it deleted.
fn statuses_of(e: &E2e, name: &'static str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let api: Api<LustreWorkspace> = Api::namespaced(e.client(), "ml");
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
        let mut last = None;
        while let Some(Ok(event)) = stream.next().await {
            let ws = match event {
                watcher::Event::Apply(ws) | watcher::Event::InitApply(ws) => ws,
                watcher::Event::Delete(_) => {
                    record.lock().expect("statuses").push("gone".to_string());
                    return;
                }
                _ => continue,
            };
            let Some(status) = ws.status.clone() else {
                continue;
            };
            if last.as_ref() == Some(&status) {
                continue;
            }
            let ready = status.conditions.first();
            record.lock().expect("statuses").push(format!(
                "{:?} {} {}",
                status.phase,
                ready.map(|c| c.reason.as_str()).unwrap_or_default(),
                ready.map(|c| c.message.as_str()).unwrap_or_default()
            ));
            last = Some(status);
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspaces_life_is_its_nine_minimal_writes() {
    // Create → Ready → delete, with the class's StorageClass made by a first workspace: the
    // finalizer on and off, the volume and the claim made and deleted, and three statuses
    // (the file system CREATING, Ready, the file system DELETING). The steps Kubernetes ends
    // within a moment (the claim binding, the claim and volume going) show no status of their
    // own. Events are counted apart.
    let e = E2e::start(quick()).await;
    e.apply(&workspace("first", "storageCapacityGiB: 1200"))
        .await;
    e.wait_for("condition=Ready", "lws/first").await;
    let seen = statuses_of(&e, "life");
    let mark = e.operator_requests().len();
    e.apply(&workspace("life", "storageCapacityGiB: 1200"))
        .await;
    e.wait_for("condition=Ready", "lws/life").await;
    let volume = e.jsonpath("lws/life", "{.status.volumeName}").await;
    e.ok(&["delete", "lws", "life", "-n", "ml", "--wait", TIMEOUT])
        .await;
    // The watch has seen every status once it has seen the object go.
    let start = std::time::Instant::now();
    while seen
        .lock()
        .expect("statuses")
        .last()
        .is_none_or(|l| l != "gone")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the watch never saw the deletion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut writes = e.requests_about(mark, &["life", &volume]);
    writes.retain(|k, _| !k.starts_with("get ") && !k.starts_with("list "));
    let seen = seen.lock().expect("statuses").clone();
    let statuses = writes
        .get("patch lustreworkspaces.workspaces.lustre.dev/status")
        .copied()
        .unwrap_or(0);
    println!(
        "a workspace's life ({}): {} writes, {statuses} of them its status:\n  {}",
        e.cluster.name(),
        writes.values().sum::<usize>(),
        seen.join("\n  ")
    );
    if e.cluster == Cluster::Real {
        claim_made_once_the_binder_has_the_volume(&e, &volume);
    }
    let phases: Vec<&str> = seen
        .iter()
        .map(|s| s.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        phases,
        [
            "Some(Provisioning)",
            "Some(Ready)",
            "Some(Deleting)",
            "gone"
        ],
        "{seen:#?}"
    );
    let minimal: BTreeMap<String, usize> = [
        ("patch lustreworkspaces.workspaces.lustre.dev", 2),
        ("patch lustreworkspaces.workspaces.lustre.dev/status", 3),
        ("patch persistentvolumes", 1),
        ("create persistentvolumeclaims", 1),
        ("delete persistentvolumeclaims", 1),
        ("delete persistentvolumes", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(writes, minimal, "{seen:#?}");
}

/// kube-controller-manager binds a claim that names a volume only if its binder has stored
/// the volume, and otherwise not before its resync (15 s by default): the operator creates
/// the claim after the binder has written the volume's first phase (from the audit log).
fn claim_made_once_the_binder_has_the_volume(e: &E2e, volume: &str) {
    let real = e.real();
    let seen = real
        .first(BINDER, "update", "persistentvolumes", volume)
        .expect("the binder's first write of the volume in the audit log");
    let made = real
        .first(OPERATOR_USER, "create", "persistentvolumeclaims", "life")
        .expect("the claim's creation in the audit log");
    assert!(
        made > seen,
        "claim created at {made}, before the binder wrote the volume's phase at {seen}"
    );
}
