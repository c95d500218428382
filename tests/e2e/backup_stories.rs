//! User stories of backups: keep a persistent workspace's data in an FSx backup, delete the
//! costly file system, and restore a new workspace from the backup later; the final backup a
//! deletion takes, restorable the same way; and what FSx cannot back up, refused before any
//! AWS call.

use serde_json::Value;

use crate::support::*;

const PERSISTENT: &str =
    "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125";

/// A `LustreWorkspaceBackup` of namespace `ml`.
fn backup(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspaceBackup\nmetadata:\n  name: {name}\n  namespace: ml\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    )
}

/// The backups in the simulated AWS.
fn backups(state: &Value) -> Vec<Value> {
    state["backups"].as_array().cloned().unwrap_or_default()
}

fn tag<'a>(backup: &'a Value, key: &str) -> Option<&'a str> {
    backup["Tags"]
        .as_array()?
        .iter()
        .find(|t| t["Key"] == key)?["Value"]
        .as_str()
}

/// Restores workspace `name` from `source` and waits for it to be Ready with its claim bound.
async fn restored(e: &E2e, name: &str, source: &str) {
    e.apply(&workspace(name, &format!("{PERSISTENT}\nsource: {source}")))
        .await;
    e.wait_for("condition=Ready", &format!("lws/{name}")).await;
    let claim = e
        .jsonpath(&format!("lws/{name}"), "{.status.claimName}")
        .await;
    assert_eq!(
        e.jsonpath(&format!("pvc/{claim}"), "{.status.phase}").await,
        "Bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_outlives_its_workspace_and_restores_into_a_new_one() {
    let e = E2e::start(quick()).await;
    e.apply(&workspace("train", PERSISTENT)).await;
    e.wait_for("condition=Ready", "lws/train").await;

    // A backup: PENDING to AVAILABLE, followed in status; one CreateBackup.
    e.apply(&backup("nightly", "workspace: train")).await;
    e.wait_for("jsonpath={.status.phase}=Available", "lwb/nightly")
        .await;
    e.wait_for("condition=Ready", "lwb/nightly").await;
    let id = e.jsonpath("lwb/nightly", "{.status.backupId}").await;
    assert!(id.starts_with("backup-"), "{id}");
    assert_eq!(
        e.jsonpath("lwb/nightly", "{.status.storageCapacityGiB}")
            .await,
        "1200"
    );
    assert_eq!(
        e.jsonpath("lwb/nightly", "{.status.progress}").await,
        "100%"
    );
    let listed = e.ok(&["get", "lwb", "-n", "ml"]).await;
    assert!(
        listed.contains("WORKSPACE") && listed.contains("Available") && listed.contains("train"),
        "{listed}"
    );
    assert_eq!(e.sim.calls("CreateBackup"), 1);
    let uid = e.jsonpath("lwb/nightly", "{.metadata.uid}").await;
    let state = e.sim.snapshot();
    let taken = &backups(&state)[0];
    assert_eq!(
        tag(taken, "workspaces.lustre.dev/backup-uid"),
        Some(uid.as_str())
    );
    assert_eq!(tag(taken, "workspaces.lustre.dev/namespace"), Some("ml"));
    let events = e.events("involvedObject.name=nightly").await;
    assert!(
        events.contains("Started") && events.contains("Available"),
        "{events}"
    );

    // The costly file system goes; the backup stays.
    e.ok(&["delete", "lws", "train", "-n", "ml", "--wait", TIMEOUT])
        .await;
    assert_eq!(backups(&e.sim.snapshot()).len(), 1);
    assert_eq!(
        e.jsonpath("lwb/nightly", "{.status.phase}").await,
        "Available"
    );

    // A restore asking for another size is refused with the backup's size, nothing made.
    e.apply(&workspace(
        "too-big",
        "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 2400\nperUnitStorageThroughput: 125\nsource: {backupName: nightly}",
    ))
    .await;
    e.wait_for(
        "jsonpath={.status.conditions[0].reason}=InvalidSpec",
        "lws/too-big",
    )
    .await;
    let said = e
        .jsonpath("lws/too-big", "{.status.conditions[0].message}")
        .await;
    assert!(said.contains("1200 GiB"), "{said}");
    assert_eq!(e.sim.calls("CreateFileSystemFromBackup"), 0);
    e.ok(&["delete", "lws", "too-big", "-n", "ml", "--wait", TIMEOUT])
        .await;

    // The restore: CreateFileSystemFromBackup, then the usual security group, volume, claim.
    restored(&e, "train-again", "{backupName: nightly}").await;
    assert_eq!(e.sim.calls("CreateFileSystemFromBackup"), 1);
    let state = e.sim.snapshot();
    let fs = state["fileSystems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["restoredFrom"] == id.as_str())
        .unwrap_or_else(|| panic!("a file system restored from {id}: {state:#}"));
    assert_eq!(fs["storageCapacity"], 1200);
    assert_eq!(
        e.jsonpath("lws/train-again", "{.status.fileSystemId}")
            .await,
        fs["id"].as_str().unwrap_or_default()
    );

    // Deleting the object deletes the backup (deletionPolicy Delete, the default).
    e.ok(&["delete", "lwb", "nightly", "-n", "ml", "--wait", TIMEOUT])
        .await;
    assert!(backups(&e.sim.snapshot()).is_empty());
    assert_eq!(e.sim.calls("DeleteBackup"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_backup_becomes_an_object_to_restore_from() {
    let e = E2e::start(quick()).await;
    e.apply(&workspace(
        "keep",
        &format!("{PERSISTENT}\nfinalBackupOnDelete: true"),
    ))
    .await;
    e.wait_for("condition=Ready", "lws/keep").await;
    let ws_uid = e.jsonpath("lws/keep", "{.metadata.uid}").await;
    e.ok(&["delete", "lws", "keep", "-n", "ml", "--wait", TIMEOUT])
        .await;

    // The deletion left an object for its final backup, kept by default.
    let name = format!("keep-final-{}", &ws_uid[..8]);
    let object = format!("lwb/{name}");
    e.wait_for("jsonpath={.status.phase}=Available", &object)
        .await;
    assert_eq!(e.jsonpath(&object, "{.spec.finalBackup}").await, "true");
    assert_eq!(
        e.jsonpath(&object, "{.spec.deletionPolicy}").await,
        "Retain"
    );
    let uid = e.jsonpath(&object, "{.metadata.uid}").await;
    let state = e.sim.snapshot();
    let taken = &backups(&state)[0];
    assert_eq!(
        tag(taken, "workspaces.lustre.dev/backup-uid"),
        Some(uid.as_str())
    );
    assert_eq!(
        tag(taken, "workspaces.lustre.dev/final-backup-of"),
        Some("ml/keep")
    );
    assert_eq!(e.sim.calls("CreateBackup"), 0, "the deletion took it");

    restored(&e, "keep-again", &format!("{{backupName: {name}}}")).await;

    // Retained: deleting the object keeps the backup (restorable by id).
    e.ok(&["delete", &object, "-n", "ml", "--wait", TIMEOUT])
        .await;
    assert_eq!(backups(&e.sim.snapshot()).len(), 1);
    assert_eq!(e.sim.calls("DeleteBackup"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_fsx_cannot_take_are_refused_before_any_aws_call() {
    let e = E2e::start(quick()).await;
    e.apply(&workspace("scratch", "storageCapacityGiB: 1200"))
        .await;
    e.apply(&workspace(
        "linked",
        &format!("{PERSISTENT}\ndataRepositories:\n- name: datasets\n  s3Path: s3://ml-datasets/imagenet/\n  fileSystemPath: /datasets"),
    ))
    .await;
    e.wait_for("condition=Ready", "lws/scratch").await;
    e.wait_for("condition=Ready", "lws/linked").await;
    let before = e.sim.call_counts();

    e.apply(&backup("of-scratch", "workspace: scratch")).await;
    e.apply(&backup("of-linked", "workspace: linked")).await;
    for (object, says) in [
        ("lwb/of-scratch", "PERSISTENT_2 file systems only"),
        ("lwb/of-linked", "linked to S3"),
    ] {
        e.wait_for("jsonpath={.status.phase}=Failed", object).await;
        let message = e.jsonpath(object, "{.status.message}").await;
        assert!(message.contains(says), "{object}: {message}");
        let reason = e
            .jsonpath(
                object,
                r#"{.status.conditions[?(@.type=="Failed")].reason}"#,
            )
            .await;
        assert_eq!(reason, "Refused");
    }
    let after = e.sim.call_counts();
    for op in ["CreateBackup", "DescribeBackups", "DeleteBackup"] {
        assert_eq!(
            after.get(op).copied().unwrap_or(0),
            before.get(op).copied().unwrap_or(0),
            "{op}"
        );
    }
    // A refused backup object holds nothing: it goes at once.
    e.ok(&[
        "delete",
        "lwb",
        "of-scratch",
        "of-linked",
        "-n",
        "ml",
        "--wait",
        TIMEOUT,
    ])
    .await;
}
