//! The crash suite: the operator process is SIGKILLed right after each step of create, resize
//! and delete (the env-gated kill point `LUSTRE_KILL_POINT` in the controller: no sleeps, the
//! kill lands exactly between that step and the next thing the operator would do), then a
//! fresh process takes over. After each: exactly one security group, one file system and the
//! asked-for associations per workspace, no duplicate create; after deletion nothing is left
//! in the simulated AWS and no PersistentVolume or claim is orphaned.
//!
//! Each scenario prints one line; `docs/reliability.md` keeps a run's table.

mod real_cluster;
mod support;

use std::time::{Duration, Instant};

use support::*;

const NODE_GROUP: &str = "sg-0123456789abcdef0";

/// Waits for `done`, restarting the operator (without the kill point) whenever it died.
/// Returns how many times it had to.
async fn until(e: &mut E2e, op: &mut usize, what: &str, done: impl AsyncFn(&E2e) -> bool) -> usize {
    let start = Instant::now();
    let mut restarts = 0;
    loop {
        if done(e).await {
            return restarts;
        }
        if !e.running(*op) {
            *op = e.spawn_operator(&[]);
            restarts += 1;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; AWS: {:#}\n{}",
            e.sim.snapshot(),
            e.operator_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready_at(e: &E2e, capacity: i64) -> bool {
    e.workspace("w").await.is_some_and(|w| {
        w["status"]["phase"] == "Ready"
            && w["status"]["observedGeneration"] == w["metadata"]["generation"]
            && w["status"]["storageCapacityGiB"] == capacity
    })
}

/// (security groups, file systems, associations) the operator owns in the simulated AWS.
fn owned(e: &E2e) -> (usize, usize, usize) {
    let s = e.sim.snapshot();
    let sgs = s["securityGroups"]
        .as_array()
        .map(|a| a.iter().filter(|g| g["id"] != NODE_GROUP).count())
        .unwrap_or(0);
    (
        sgs,
        count(&s, "fileSystems"),
        count(&s, "dataRepositoryAssociations"),
    )
}

const SPEC: &str = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: {cap}\nperUnitStorageThroughput: 125\ndeletionPolicy: {policy}\ndataRepositories:\n- {name: datasets, s3Path: 's3://ml-datasets/a/', fileSystemPath: /datasets, autoImport: [NEW]}\n- {name: results, s3Path: 's3://ml-results/a/', fileSystemPath: /results, autoExport: [NEW]}";

fn spec(cap: u32, policy: &str) -> String {
    SPEC.replace("{cap}", &cap.to_string())
        .replace("{policy}", policy)
}

/// Create with two repositories, resize, delete; the operator dies at `point` on the way.
async fn crash_at(point: &str, policy: &str) -> String {
    let mut e = E2e::start(quick()).await;
    e.kill(0).await;
    let mut op = e.spawn_operator_env(&[], &[("LUSTRE_KILL_POINT", point)]);
    let mut restarts = 0;

    e.apply(&workspace("w", &spec(1200, policy))).await;
    restarts += until(&mut e, &mut op, "Ready", async |e| ready_at(e, 1200).await).await;
    let created = owned(&e);
    assert_eq!(created, (1, 1, 2), "{point}: after create");

    e.apply(&workspace("w", &spec(2400, policy))).await;
    restarts += until(&mut e, &mut op, "Ready at 2400 GiB", async |e| {
        ready_at(e, 2400).await
    })
    .await;
    let resized = owned(&e);
    assert_eq!(resized, (1, 1, 2), "{point}: after resize");
    assert_eq!(
        e.sim.snapshot()["fileSystems"][0]["storageCapacity"],
        2400,
        "{point}"
    );

    e.ok(&["delete", "lws", "w", "-n", "ml", "--wait=false"])
        .await;
    restarts += until(&mut e, &mut op, "deletion", async |e| {
        e.workspace("w").await.is_none()
    })
    .await;
    let left = owned(&e);
    let (pvs, pvcs) = (
        e.objects("api/v1", "persistentvolumes").await,
        e.objects("api/v1", "persistentvolumeclaims").await,
    );
    let creates = (
        e.sim.calls("CreateSecurityGroup"),
        e.sim.calls("CreateFileSystem"),
        e.sim.calls("CreateDataRepositoryAssociation"),
    );
    assert!(restarts >= 1, "{point}: the kill point was never reached");
    if policy == "Retain" {
        assert_eq!(left, (1, 1, 2), "{point}: Retain keeps the AWS side");
        assert_eq!(
            e.sim.snapshot()["fileSystems"][0]["tags"]["workspaces.lustre.dev/retained"],
            "true"
        );
    } else {
        assert_eq!(left, (0, 0, 0), "{point}: leaked in AWS");
    }
    assert_eq!((pvs, pvcs), (0, 0), "{point}: orphaned volume or claim");
    format!(
        "crash at {point:<22} ({}) restarts {restarts}  after create {created:?}  after resize {resized:?}  left after delete {left:?} + {pvs} PV {pvcs} PVC  create calls (SG, FS, DRA) {creates:?}",
        e.cluster.name()
    )
}

async fn matrix(points: &[&str], policy: &str) {
    let mut lines = Vec::new();
    for point in points {
        lines.push(crash_at(point, policy).await);
    }
    for l in lines {
        println!("{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_create_step_and_the_resize() {
    matrix(
        &[
            "CreateSecurityGroup",
            "AuthorizeRules",
            "CreateFileSystem",
            "CreateAssociations",
            "ApplyStorageClass",
            "ApplyVolume",
            "ApplyClaim",
            "UpdateFileSystem",
        ],
        "Delete",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_delete_step() {
    matrix(
        &[
            "DeleteClaim",
            "DeleteVolume",
            "DeleteAssociations",
            "DeleteFileSystem",
            "DeleteSecurityGroup",
        ],
        "Delete",
    )
    .await;
    matrix(&["TagRetained"], "Retain").await;
}

/// Killed right after the export before deletion was started (CreateDataRepositoryTask
/// accepted, nothing written yet): the next process finds the task by its tags and follows
/// it. One export; no unlink or delete was tried (refused or not) before it finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_the_export_before_deletion_started() {
    let mut e = E2e::start(quick()).await;
    e.kill(0).await;
    let mut op = e.spawn_operator_env(&[], &[("LUSTRE_KILL_POINT", "StartExport")]);
    let spec = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {name: datasets, s3Path: 's3://ml-datasets/a/', fileSystemPath: /datasets, autoImport: [NEW]}\n- {name: results, s3Path: 's3://ml-results/a/', fileSystemPath: /results, exportOnDelete: true}";
    e.apply(&workspace("w", spec)).await;
    until(&mut e, &mut op, "Ready", async |e| ready_at(e, 1200).await).await;
    e.sim.set_timing(Timing {
        task_run_ms: 2_000,
        ..quick()
    });
    e.ok(&["delete", "lws", "w", "-n", "ml", "--wait=false"])
        .await;
    let restarts = until(&mut e, &mut op, "deletion", async |e| {
        e.workspace("w").await.is_none()
    })
    .await;
    assert_eq!(restarts, 1, "killed once, at StartExport");
    assert_eq!(owned(&e), (0, 0, 0), "leaked in AWS");
    assert_eq!(e.sim.calls("CreateDataRepositoryTask"), 1, "one export");
    let log = e.sim.call_log();
    let at = |op: &str| {
        log.iter()
            .position(|c| c.operation == op)
            .unwrap_or_else(|| panic!("no {op} in the call log"))
    };
    let (created, unlinked) = (
        at("CreateDataRepositoryTask"),
        at("DeleteDataRepositoryAssociation"),
    );
    assert!(created < unlinked && unlinked < at("DeleteFileSystem"));
    let between: std::collections::BTreeSet<&str> = log[created + 1..unlinked]
        .iter()
        .map(|c| c.operation.as_str())
        .collect();
    assert!(
        between.iter().all(|op| op.starts_with("Describe")),
        "only looks while the export ran: {between:?}"
    );
    assert!(
        log.iter()
            .all(|c| c.ok || !c.operation.starts_with("Delete")),
        "no delete was refused"
    );
    println!(
        "crash at {:<22} ({}) restarts {restarts}  export tasks {}  calls between the export and the first unlink {between:?}",
        "StartExport",
        e.cluster.name(),
        e.sim.calls("CreateDataRepositoryTask")
    );
}

/// Killed right after FSx accepted a backup (before its id was written), then right after it
/// accepted a restore from that backup: the next process asks again with the same token and
/// follows the same backup and the same file system. One backup; one restored file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_a_backup_and_a_restore_started() {
    let mut e = E2e::start(quick()).await;
    let persistent =
        "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125";
    e.apply(&workspace("w", persistent)).await;
    e.wait_for("condition=Ready", "lws/w").await;
    e.kill(0).await;

    let mut op = e.spawn_operator_env(&[], &[("LUSTRE_KILL_POINT", "CreateBackup")]);
    e.apply("apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspaceBackup\nmetadata: {name: b, namespace: ml}\nspec: {workspace: w}\n")
        .await;
    let api = "apis/workspaces.lustre.dev/v1alpha1";
    let backup_restarts = until(&mut e, &mut op, "backup Available", async |e| {
        e.object(api, "lustreworkspacebackups", "ml", "b")
            .await
            .is_some_and(|b| b["status"]["phase"] == "Available")
    })
    .await;
    assert_eq!(backup_restarts, 1, "killed once, at CreateBackup");
    let backups = count(&e.sim.snapshot(), "backups");
    assert_eq!(backups, 1, "no second backup");
    e.kill(op).await;

    let mut op = e.spawn_operator_env(&[], &[("LUSTRE_KILL_POINT", "CreateFileSystemFromBackup")]);
    e.apply(&workspace(
        "r",
        &format!("{persistent}\nsource: {{backupName: b}}"),
    ))
    .await;
    let restore_restarts = until(&mut e, &mut op, "restored Ready", async |e| {
        e.workspace("r")
            .await
            .is_some_and(|w| w["status"]["phase"] == "Ready")
    })
    .await;
    assert_eq!(
        restore_restarts, 1,
        "killed once, at CreateFileSystemFromBackup"
    );
    let file_systems = count(&e.sim.snapshot(), "fileSystems");
    assert_eq!(file_systems, 2, "the workspace's and one restored");
    println!(
        "crash at {:<26} ({}) restarts {backup_restarts}  backups {backups}  CreateBackup calls {}\ncrash at {:<26} ({}) restarts {restore_restarts}  file systems {file_systems}  CreateFileSystemFromBackup calls {}",
        "CreateBackup",
        e.cluster.name(),
        e.sim.calls("CreateBackup"),
        "CreateFileSystemFromBackup",
        e.cluster.name(),
        e.sim.calls("CreateFileSystemFromBackup")
    );
}

/// Killed right after it deleted a workspace whose expiry passed (`ExportThenDelete`), before
/// it wrote anything more: the next process sees a deletion at or after the deadline, exports
/// every link once, then deletes; nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_an_expired_workspace_was_deleted() {
    let mut e = E2e::start(quick()).await;
    e.kill(0).await;
    let mut op = e.spawn_operator_env(&[], &[("LUSTRE_KILL_POINT", "Expire")]);
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(6);
    let at = jiff::Timestamp::from_second(at.as_second()).expect("time");
    let spec = format!(
        "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {{name: results, s3Path: 's3://ml-results/a/', fileSystemPath: /results}}\nexpiry: {{at: \"{at}\", action: ExportThenDelete}}"
    );
    e.apply(&workspace("w", &spec)).await;
    until(&mut e, &mut op, "Ready", async |e| ready_at(e, 1200).await).await;
    let restarts = until(&mut e, &mut op, "expiry and deletion", async |e| {
        e.workspace("w").await.is_none()
    })
    .await;
    assert_eq!(restarts, 1, "killed once, at Expire");
    assert_eq!(owned(&e), (0, 0, 0), "leaked in AWS");
    assert_eq!(e.sim.calls("CreateDataRepositoryTask"), 1, "one export");
    let log = e.sim.call_log();
    let at_op = |op: &str| {
        log.iter()
            .position(|c| c.operation == op)
            .unwrap_or_else(|| panic!("no {op} in the call log"))
    };
    assert!(at_op("CreateDataRepositoryTask") < at_op("DeleteDataRepositoryAssociation"));
    println!(
        "crash at {:<22} ({}) restarts {restarts}  export tasks {}  left {:?}",
        "Expire",
        e.cluster.name(),
        e.sim.calls("CreateDataRepositoryTask"),
        owned(&e)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_create_is_replaced_by_the_standby_without_duplicates() {
    let mut e = E2e::start(quick()).await;
    e.kill(0).await;
    let elected = |id: &'static str| {
        [
            "--leader-election",
            "--lease-namespace",
            LEASE_NS,
            "--lease-duration-seconds",
            "2",
            "--lease-renew-grace-seconds",
            "1",
            "--identity",
            id,
        ]
    };
    let a = e.spawn_operator_env(&elected("a"), &[("LUSTRE_KILL_POINT", "CreateFileSystem")]);
    let start = Instant::now();
    while e.lease_holder().await != "a" {
        assert!(start.elapsed() < Duration::from_secs(20), "a never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = e.spawn_operator(&elected("b"));
    e.apply(&workspace("w", &spec(1200, "Delete"))).await;
    let start = Instant::now();
    while e.running(a) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a never reached the kill point"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Instant::now();
    let mut op = b;
    until(&mut e, &mut op, "Ready under the new leader", async |e| {
        ready_at(e, 1200).await
    })
    .await;
    assert_eq!(op, b, "the standby did it, nobody was restarted");
    assert_eq!(e.lease_holder().await, "b");
    assert_eq!(owned(&e), (1, 1, 2));
    // The new leader never saw the id (the old one died before writing status): it repeats
    // the create with the same client token, and AWS answers with the same file system.
    assert_eq!(count(&e.sim.snapshot(), "fileSystems"), 1, "no duplicate");
    assert!(e.sim.calls("CreateFileSystem") <= 2);
    println!(
        "leader killed after CreateFileSystem ({}): standby finished the workspace {:?} later; (SG, FS, DRA) = {:?}",
        e.cluster.name(),
        killed.elapsed(),
        owned(&e)
    );
}
