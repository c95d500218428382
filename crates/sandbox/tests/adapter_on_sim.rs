//! The real AWS adapter (`lustre_cloud::aws::AwsCloud`) against the simulated AWS over HTTP:
//! the whole life of a workspace's AWS resources, token idempotency, the errors the operator
//! relies on, and the same scenario under 30 % throttling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lustre_cloud::aws::{AwsCloud, AwsSettings};
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::*;
use lustre_sandbox::aws::faults::Faults;
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};

const SUBNET: &str = "subnet-0123456789abcdef0";
const NODES_SG: &str = "sg-0123456789abcdef0";

fn fast_timing() -> Timing {
    Timing {
        create_ms: 300,
        update_ms: 200,
        delete_ms: 300,
        association_create_ms: 100,
        association_delete_ms: 100,
        association_update_ms: 100,
        task_pending_ms: 100,
        task_run_ms: 400,
        task_cancel_ms: 100,
        backup_ms: 600,
        jitter: 0.2,
    }
}

async fn start(config: SimConfig) -> (SimAws, String, tokio::sync::oneshot::Sender<()>) {
    let sim = SimAws::new(config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (bound, _task) = sim
        .serve(addr, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    (sim, format!("http://{bound}"), tx)
}

async fn adapter(url: &str, max_attempts: u32) -> AwsCloud {
    adapter_observed(url, max_attempts, None).await
}

async fn adapter_observed(
    url: &str,
    max_attempts: u32,
    observer: Option<Arc<dyn CallObserver>>,
) -> AwsCloud {
    AwsCloud::new(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(url.to_string()),
            max_attempts,
            static_credentials: Some(("AKIDSIMULATED".into(), "simulated-secret".into())),
            ..AwsSettings::default()
        },
        observer,
    )
    .await
}

/// Counts the adapter's logical calls (each may be several HTTP attempts).
#[derive(Debug, Default)]
struct LogicalCalls(AtomicU64);

impl CallObserver for LogicalCalls {
    fn observe(&self, _service: &'static str, _operation: &'static str, _outcome: &'static str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn owner() -> Owner {
    Owner {
        namespace: "ml".into(),
        name: "train".into(),
        uid: "3d0f6a52-5c1b-4f7e-9a0d-2b8c4e6f1a3d".into(),
        class: "standard".into(),
    }
}

/// Polls `f` until it returns `Some`, failing after `deadline`.
async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Report {
    dependency_violations: u32,
    file_system_id: String,
}

/// Create SG → rules → FS → AVAILABLE → 2 DRAs → delete DRAs → delete FS (trying the SG too
/// early) → SG deleted once the FS is gone.
async fn scenario(cloud: &AwsCloud, sim: &SimAws) -> Report {
    let o = owner();
    let tags = naming::owner_tags(&o, &Default::default(), &Default::default());
    let subnet = cloud.subnet(SUBNET).await.expect("subnet");
    assert_eq!(subnet.availability_zone, "us-east-1a");
    let vpc = subnet.vpc_id;
    assert_eq!(vpc, "vpc-0123456789abcdef0");

    let sg = cloud
        .create_security_group(&SecurityGroupRequest {
            name: naming::security_group_name(&o.uid),
            description: "Lustre ports for ml/train".into(),
            vpc_id: vpc.clone(),
            tags: tags.clone(),
        })
        .await
        .expect("create sg");
    let rules = lustre_ingress(
        &sg,
        &[
            Peer::Group(NODES_SG.into()),
            Peer::Cidr("10.0.0.0/16".into()),
        ],
    );
    cloud
        .authorize_ingress(&sg, &rules)
        .await
        .expect("authorize");
    // Authorizing again (a retried reconcile) is not an error.
    cloud
        .authorize_ingress(&sg, &rules)
        .await
        .expect("authorize again");
    let seen = cloud
        .describe_security_groups(std::slice::from_ref(&sg))
        .await
        .expect("describe sg");
    assert_eq!(seen[0].ingress, rules);
    assert_eq!(
        cloud
            .find_security_groups_by_owner(&o.uid)
            .await
            .expect("find sg")[0]
            .id,
        sg
    );

    let request = FileSystemRequest {
        client_token: naming::file_system_token(&o.uid),
        deployment_type: DeploymentType::Scratch2,
        storage_capacity_gib: 1200,
        per_unit_storage_throughput: None,
        subnet_id: SUBNET.into(),
        security_group_ids: vec![sg.clone()],
        kms_key_id: None,
        lz4_compression: true,
        automatic_backup_retention_days: None,
        daily_automatic_backup_start_time: None,
        copy_tags_to_backups: false,
        backup_id: None,
        weekly_maintenance_start_time: None,
        file_system_type_version: "2.15".into(),
        metadata: None,
        root_squash: None,
        log: None,
        efa: false,
        tiering: None,
        tags: tags.clone(),
    };
    let fs = cloud.create_file_system(&request).await.expect("create fs");
    assert_eq!(fs.lifecycle, Lifecycle::Creating);
    let again = cloud
        .create_file_system(&request)
        .await
        .expect("same token");
    assert_eq!(again.id, fs.id, "same token, same file system");

    let available = wait_for("AVAILABLE", Duration::from_secs(20), || async {
        let found = cloud
            .describe_file_systems(std::slice::from_ref(&fs.id))
            .await
            .ok()?;
        found
            .into_iter()
            .find(|f| f.lifecycle == Lifecycle::Available)
    })
    .await;
    assert!(
        available
            .dns_name
            .as_deref()
            .is_some_and(|d| d.starts_with(&fs.id))
    );
    assert_eq!(available.mount_name.as_deref().map(str::len), Some(8));
    assert_eq!(
        cloud
            .find_file_systems_by_owner(&o.uid)
            .await
            .expect("find fs")
            .len(),
        1
    );

    let mut associations = Vec::new();
    for (path, s3) in [
        ("/datasets", "s3://ml-datasets/imagenet/"),
        ("/results", "s3://ml-results/train/"),
    ] {
        let dra = cloud
            .create_data_repository_association(&DataRepositoryRequest {
                client_token: naming::association_token(&o.uid, &fs.id, path, s3),
                file_system_id: fs.id.clone(),
                file_system_path: path.into(),
                data_repository_path: s3.into(),
                auto_import: vec![S3Event::New, S3Event::Changed],
                auto_export: vec![],
                batch_import_meta_data_on_create: false,
                imported_file_chunk_size_mib: None,
                tags: tags.clone(),
            })
            .await
            .expect("create dra");
        associations.push(dra.id);
    }
    wait_for(
        "associations AVAILABLE",
        Duration::from_secs(20),
        || async {
            let all = cloud
                .describe_data_repository_associations(std::slice::from_ref(&fs.id))
                .await
                .ok()?;
            (all.len() == 2 && all.iter().all(|a| a.lifecycle == Lifecycle::Available))
                .then_some(())
        },
    )
    .await;

    for id in &associations {
        cloud
            .delete_data_repository_association(id)
            .await
            .expect("delete dra");
    }
    wait_for("associations gone", Duration::from_secs(20), || async {
        let all = cloud
            .describe_data_repository_associations(std::slice::from_ref(&fs.id))
            .await
            .ok()?;
        all.is_empty().then_some(())
    })
    .await;

    cloud
        .delete_file_system(&fs.id, &FileSystemDeletion::default())
        .await
        .expect("delete fs");
    let mut dependency_violations = 0;
    let started = Instant::now();
    loop {
        match cloud.delete_security_group(&sg).await {
            Ok(()) => break,
            Err(e) if e.kind == ErrorKind::DependencyViolation => dependency_violations += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "security group never deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = sim.snapshot();
    assert_eq!(
        state["fileSystems"].as_array().map(Vec::len),
        Some(0),
        "{state:#}"
    );
    assert_eq!(
        state["dataRepositoryAssociations"].as_array().map(Vec::len),
        Some(0)
    );
    let groups: Vec<&str> = state["securityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["id"].as_str())
        .collect();
    assert_eq!(
        groups,
        [NODES_SG],
        "only the pre-existing node group is left"
    );
    Report {
        dependency_violations,
        file_system_id: fs.id,
    }
}

#[tokio::test]
async fn full_lifecycle_through_the_adapter() {
    let (sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 3).await;
    let report = scenario(&cloud, &sim).await;
    assert!(
        report.dependency_violations >= 1,
        "deleting the security group while the file system was DELETING must be refused at least once"
    );
    assert!(report.file_system_id.starts_with("fs-"));
    assert_eq!(
        sim.calls("CreateFileSystem"),
        2,
        "two creates, one file system"
    );
    println!(
        "lifecycle: {} DependencyViolation(s) retried; calls {:?}",
        report.dependency_violations,
        sim.call_counts()
    );
}

#[tokio::test]
async fn completes_under_30_percent_throttling_with_bounded_retries() {
    let rule = Faults::parse_rule("*:throttle:0.3").expect("rule");
    let (sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        faults: vec![rule],
        seed: 42,
        ..SimConfig::default()
    })
    .await;
    let max_attempts = 8;
    let logical = Arc::new(LogicalCalls::default());
    let cloud = adapter_observed(&url, max_attempts, Some(logical.clone())).await;
    scenario(&cloud, &sim).await;
    let state = sim.snapshot();
    let throttled: u64 = state["faultsInjected"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    let requests = state["totalCalls"].as_u64().unwrap_or(0);
    let calls = logical.0.load(Ordering::Relaxed);
    assert!(throttled > 0, "faults were injected");
    // Every logical call finished (the scenario completed) and none cost more HTTP requests
    // than the SDK's attempt budget: retries are bounded, not a loop.
    assert!(requests >= calls, "{requests} requests for {calls} calls");
    assert!(
        requests <= calls * u64::from(max_attempts),
        "{requests} requests for {calls} calls"
    );
    assert_eq!(
        requests - calls,
        throttled,
        "every extra request answered a throttle"
    );
    println!(
        "under 30 % throttling: {calls} adapter calls took {requests} HTTP requests ({throttled} throttled, {:.2} requests per call, bound {max_attempts})",
        requests as f64 / calls as f64
    );
}

#[tokio::test]
async fn errors_the_operator_relies_on() {
    let (sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let o = owner();
    let tags = naming::owner_tags(&o, &Default::default(), &Default::default());

    let e = cloud
        .subnet("subnet-0000000000000dead")
        .await
        .expect_err("unknown subnet");
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::NotFound, Some("InvalidSubnetID.NotFound"))
    );
    assert!(e.request_id.is_some());

    let request = SecurityGroupRequest {
        name: naming::security_group_name(&o.uid),
        description: "d".into(),
        vpc_id: "vpc-0123456789abcdef0".into(),
        tags: tags.clone(),
    };
    cloud.create_security_group(&request).await.expect("create");
    let e = cloud
        .create_security_group(&request)
        .await
        .expect_err("same name");
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Conflict, Some("InvalidGroup.Duplicate"))
    );

    let mut fs = FileSystemRequest {
        deployment_type: DeploymentType::Persistent2,
        ..FileSystemRequest::scratch(naming::file_system_token(&o.uid), SUBNET, tags)
    };
    let e = cloud
        .create_file_system(&fs)
        .await
        .expect_err("no throughput");
    assert_eq!(e.code.as_deref(), Some("InvalidPerUnitStorageThroughput"));
    fs.per_unit_storage_throughput = Some(250);
    fs.storage_capacity_gib = 3600;
    let e = cloud.create_file_system(&fs).await.expect_err("bad size");
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::InvalidRequest, Some("BadRequest"))
    );
    fs.security_group_ids = vec!["sg-00000000000000bad".into()];
    fs.storage_capacity_gib = 1200;
    let e = cloud.create_file_system(&fs).await.expect_err("bad sg");
    assert_eq!(e.code.as_deref(), Some("InvalidNetworkSettings"));
    fs.security_group_ids = vec![];
    let created = cloud.create_file_system(&fs).await.expect("valid");
    fs.storage_capacity_gib = 2400;
    let e = cloud
        .create_file_system(&fs)
        .await
        .expect_err("token reuse");
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Conflict, Some("IncompatibleParameterError"))
    );

    // FAILED with details, as AWS reports them.
    assert!(sim.fail_file_system(&created.id, "KMS key is disabled"));
    let failed = cloud
        .describe_file_systems(std::slice::from_ref(&created.id))
        .await
        .expect("describe");
    assert!(failed[0].lifecycle.is_failed());
    assert_eq!(
        failed[0].failure_message.as_deref(),
        Some("KMS key is disabled")
    );

    // A vanished id among many does not fail the batch.
    let found = cloud
        .describe_file_systems(&[created.id.clone(), "fs-0000000000000dead".into()])
        .await
        .expect("fallback");
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn resize_goes_updating_then_available_with_the_new_size() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 3).await;
    let o = owner();
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            client_token: naming::file_system_token(&o.uid),
            deployment_type: DeploymentType::Persistent2,
            storage_capacity_gib: 1200,
            per_unit_storage_throughput: Some(125),
            subnet_id: SUBNET.into(),
            security_group_ids: vec![],
            kms_key_id: None,
            lz4_compression: false,
            automatic_backup_retention_days: Some(7),
            daily_automatic_backup_start_time: None,
            copy_tags_to_backups: false,
            backup_id: None,
            weekly_maintenance_start_time: None,
            file_system_type_version: "2.15".into(),
            metadata: None,
            root_squash: None,
            log: None,
            efa: false,
            tiering: None,
            tags: Default::default(),
        })
        .await
        .expect("create");
    let e = cloud
        .update_file_system(
            &fs.id,
            &FileSystemUpdate {
                storage_capacity_gib: Some(2400),
                per_unit_storage_throughput: None,
                ..FileSystemUpdate::default()
            },
        )
        .await
        .expect_err("not while CREATING");
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    wait_for("AVAILABLE", Duration::from_secs(20), || async {
        let f = cloud
            .describe_file_systems(std::slice::from_ref(&fs.id))
            .await
            .ok()?;
        (f[0].lifecycle == Lifecycle::Available).then_some(())
    })
    .await;
    let e = cloud
        .update_file_system(
            &fs.id,
            &FileSystemUpdate {
                storage_capacity_gib: Some(3600),
                per_unit_storage_throughput: None,
                ..FileSystemUpdate::default()
            },
        )
        .await
        .expect_err("not a multiple of 2400");
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
    let updating = cloud
        .update_file_system(
            &fs.id,
            &FileSystemUpdate {
                storage_capacity_gib: Some(2400),
                per_unit_storage_throughput: Some(500),
                ..FileSystemUpdate::default()
            },
        )
        .await
        .expect("grow");
    assert_eq!(updating.lifecycle, Lifecycle::Updating);
    assert!(updating.update_in_progress);
    let done = wait_for("resized", Duration::from_secs(20), || async {
        let f = cloud
            .describe_file_systems(std::slice::from_ref(&fs.id))
            .await
            .ok()?;
        f.into_iter().find(|f| f.lifecycle == Lifecycle::Available)
    })
    .await;
    assert_eq!(
        (done.storage_capacity_gib, done.per_unit_storage_throughput),
        (2400, Some(500))
    );
    assert!(!done.update_in_progress);
    cloud
        .delete_file_system(
            &fs.id,
            &FileSystemDeletion {
                final_backup_tags: Some([("reason".to_string(), "final".to_string())].into()),
            },
        )
        .await
        .expect("delete with final backup");
}

/// TagResource and UntagResource through the adapter: an adopter's mark goes on and comes off,
/// the other tags stay.
#[tokio::test]
async fn tags_go_on_and_come_off() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 3).await;
    let fs = cloud
        .create_file_system(&FileSystemRequest::scratch(
            "made-by-hand",
            SUBNET,
            [("team".to_string(), "data".to_string())].into(),
        ))
        .await
        .expect("create");
    let mark = lustre_api::constants::tags::ADOPTED_BY.to_string();
    cloud
        .tag_resource(&fs.arn, &[(mark.clone(), "uid-1".to_string())].into())
        .await
        .expect("tag");
    let tags = |cloud: &AwsCloud| {
        let cloud = cloud.clone();
        let id = fs.id.clone();
        async move {
            cloud.describe_file_systems(&[id]).await.expect("describe")[0]
                .tags
                .clone()
        }
    };
    let tagged = tags(&cloud).await;
    assert_eq!(tagged.get(&mark).map(String::as_str), Some("uid-1"));
    cloud
        .untag_resource(&fs.arn, std::slice::from_ref(&mark))
        .await
        .expect("untag");
    let untagged = tags(&cloud).await;
    assert_eq!(untagged.get(&mark), None);
    assert_eq!(untagged.get("team").map(String::as_str), Some("data"));
}

/// An AVAILABLE file system (id) with one AVAILABLE association of `/datasets` to
/// `s3://ml-data/datasets/` (its id), exporting automatically when `auto_export`.
async fn linked_file_system(cloud: &AwsCloud, token: &str, auto_export: bool) -> (String, String) {
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            client_token: token.into(),
            deployment_type: DeploymentType::Persistent2,
            storage_capacity_gib: 1200,
            per_unit_storage_throughput: Some(125),
            subnet_id: SUBNET.into(),
            security_group_ids: vec![],
            kms_key_id: None,
            lz4_compression: false,
            automatic_backup_retention_days: None,
            daily_automatic_backup_start_time: None,
            copy_tags_to_backups: false,
            backup_id: None,
            weekly_maintenance_start_time: None,
            file_system_type_version: "2.15".into(),
            metadata: None,
            root_squash: None,
            log: None,
            efa: false,
            tiering: None,
            tags: Default::default(),
        })
        .await
        .expect("create");
    wait_for("AVAILABLE", Duration::from_secs(20), || async {
        let f = cloud
            .describe_file_systems(std::slice::from_ref(&fs.id))
            .await
            .ok()?;
        (f[0].lifecycle == Lifecycle::Available).then_some(())
    })
    .await;
    let dra = cloud
        .create_data_repository_association(&DataRepositoryRequest {
            client_token: format!("{token}-dra"),
            file_system_id: fs.id.clone(),
            file_system_path: "/datasets".into(),
            data_repository_path: "s3://ml-data/datasets/".into(),
            auto_import: vec![],
            auto_export: if auto_export {
                vec![S3Event::New, S3Event::Changed]
            } else {
                vec![]
            },
            batch_import_meta_data_on_create: false,
            imported_file_chunk_size_mib: None,
            tags: Default::default(),
        })
        .await
        .expect("link");
    association_available(cloud, &fs.id).await;
    (fs.id, dra.id)
}

async fn association_available(cloud: &AwsCloud, fs: &str) -> DataRepositoryAssociation {
    wait_for("association AVAILABLE", Duration::from_secs(20), || async {
        let d = cloud
            .describe_data_repository_associations(&[fs.to_string()])
            .await
            .ok()?;
        d.into_iter().find(|d| d.lifecycle == Lifecycle::Available)
    })
    .await
}

fn task(fs: &str, token: &str, task_type: TaskType, paths: &[&str]) -> DataTaskRequest {
    DataTaskRequest {
        client_token: token.into(),
        file_system_id: fs.into(),
        task_type,
        paths: paths.iter().map(|p| p.to_string()).collect(),
        release_older_than_days: (task_type == TaskType::Release).then_some(3),
        report_path: None,
        tags: Default::default(),
    }
}

async fn finished(cloud: &AwsCloud, id: &str) -> (DataTask, Vec<i64>) {
    let mut progress = Vec::new();
    let start = Instant::now();
    loop {
        let t = cloud
            .describe_data_repository_tasks(&[id.to_string()])
            .await
            .expect("describe")
            .pop()
            .expect("the task");
        if t.lifecycle.is_finished() {
            return (t, progress);
        }
        if t.lifecycle == TaskLifecycle::Executing {
            progress.push(t.succeeded);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "task {id} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Data repository tasks through the adapter, with FSx's documented rules: the lifecycle and
/// growing counts, one task at a time, a bad path failing the task (not the call), no delete
/// while a task runs, cancel, the report under a linked path, no export task beside automatic
/// export, a file system with no link refused, and an association updated in place.
#[tokio::test]
async fn data_repository_tasks_follow_fsx_rules() {
    let (sim, url, _stop) = start(SimConfig {
        timing: Timing {
            task_run_ms: 1_000,
            ..fast_timing()
        },
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let (fs, dra) = linked_file_system(&cloud, "tasks-fs", false).await;

    let mut export = task(&fs, "export-1", TaskType::Export, &["datasets/run-1"]);
    export.report_path = Some("s3://ml-data/datasets/reports".into());
    let started = cloud
        .create_data_repository_task(&export)
        .await
        .expect("export");
    assert_eq!(started.lifecycle, TaskLifecycle::Pending);
    assert_eq!(started.task_type, Some(TaskType::Export));
    // The same token and request: the same task.
    let again = cloud
        .create_data_repository_task(&export)
        .await
        .expect("replay");
    assert_eq!(again.id, started.id);
    let busy = cloud
        .create_data_repository_task(&task(&fs, "import-1", TaskType::Import, &[]))
        .await
        .expect_err("one task at a time");
    assert_eq!(busy.code.as_deref(), Some("DataRepositoryTaskExecuting"));
    assert_eq!(busy.kind, ErrorKind::DependencyViolation);
    let held = cloud
        .delete_file_system(&fs, &FileSystemDeletion::default())
        .await
        .expect_err("no delete while a task runs");
    assert_eq!(held.code.as_deref(), Some("BadRequest"));
    let (done, progress) = finished(&cloud, &started.id).await;
    assert_eq!(done.lifecycle, TaskLifecycle::Succeeded);
    assert_eq!((done.total, done.succeeded, done.failed), (250, 250, 0));
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress.iter().any(|&n| n > 0 && n < 250),
        "counts grow while it executes: {progress:?}"
    );
    assert_eq!(
        done.report_path.as_deref(),
        Some("s3://ml-data/datasets/reports")
    );
    assert!(done.started_at.is_some() && done.ended_at >= done.started_at);

    // A path outside the linked directories fails the task, not the call.
    let bad = cloud
        .create_data_repository_task(&task(&fs, "export-2", TaskType::Export, &["scratch/out"]))
        .await
        .expect("accepted");
    let (failed, _) = finished(&cloud, &bad.id).await;
    assert_eq!(failed.lifecycle, TaskLifecycle::Failed);
    assert!(
        failed
            .failure_message
            .is_some_and(|m| m.contains("scratch/out"))
    );

    // Cancel: CANCELING, then CANCELED; an ended task cannot be canceled.
    let release = cloud
        .create_data_repository_task(&task(&fs, "release-1", TaskType::Release, &["/"]))
        .await
        .expect("release");
    let canceling = cloud
        .cancel_data_repository_task(&release.id)
        .await
        .expect("cancel");
    assert_eq!(canceling, TaskLifecycle::Canceling);
    let (canceled, _) = finished(&cloud, &release.id).await;
    assert_eq!(canceled.lifecycle, TaskLifecycle::Canceled);
    let ended = cloud
        .cancel_data_repository_task(&release.id)
        .await
        .expect_err("ended");
    assert_eq!(ended.code.as_deref(), Some("DataRepositoryTaskEnded"));
    let missing = cloud
        .cancel_data_repository_task("task-0123456789abcdef0")
        .await
        .expect_err("no such task");
    assert_eq!(missing.kind, ErrorKind::NotFound);

    // The report must lie under a linked S3 path (the call is refused).
    let mut outside = task(
        &fs,
        "import-2",
        TaskType::Import,
        &["s3://ml-data/datasets/new"],
    );
    outside.report_path = Some("s3://ml-data/reports".into());
    let refused = cloud
        .create_data_repository_task(&outside)
        .await
        .expect_err("report outside the link");
    assert_eq!(refused.kind, ErrorKind::InvalidRequest);
    outside.report_path = None;
    let import = cloud
        .create_data_repository_task(&outside)
        .await
        .expect("import");
    assert_eq!(
        finished(&cloud, &import.id).await.0.lifecycle,
        TaskLifecycle::Succeeded
    );

    // Every task of the file system, by filter; ids that no longer exist are left out.
    let all = cloud
        .data_repository_tasks_of(std::slice::from_ref(&fs))
        .await
        .expect("by fs");
    assert_eq!(all.len(), 4);
    let some = cloud
        .describe_data_repository_tasks(&[import.id.clone(), "task-0fedcba987654321f".into()])
        .await
        .expect("by ids");
    assert_eq!(some.len(), 1);

    // Automatic export on: no export task; updated in place (no delete), export works again.
    let (fs2, dra2) = linked_file_system(&cloud, "tasks-fs-2", true).await;
    let e = cloud
        .create_data_repository_task(&task(&fs2, "export-3", TaskType::Export, &[]))
        .await
        .expect_err("auto-export is on");
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    let updating = cloud
        .update_data_repository_association(
            &dra2,
            &AssociationUpdate {
                auto_export: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .expect("update in place");
    assert_eq!(updating.lifecycle, Lifecycle::Updating);
    let after = association_available(&cloud, &fs2).await;
    assert_eq!(
        (after.id.as_str(), after.auto_export.len()),
        (dra2.as_str(), 0)
    );
    cloud
        .create_data_repository_task(&task(&fs2, "export-3", TaskType::Export, &[]))
        .await
        .expect("export once auto-export is off");
    assert_eq!(sim.calls("DeleteDataRepositoryAssociation"), 0);

    // A file system without a link takes no task.
    cloud
        .delete_data_repository_association(&dra)
        .await
        .expect("unlink");
    wait_for("unlinked", Duration::from_secs(20), || async {
        let d = cloud
            .describe_data_repository_associations(std::slice::from_ref(&fs))
            .await
            .ok()?;
        d.is_empty().then_some(())
    })
    .await;
    let e = cloud
        .create_data_repository_task(&task(&fs, "export-4", TaskType::Export, &[]))
        .await
        .expect_err("no link");
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

/// A PERSISTENT_2 file system's metadata configuration, over the wire: AUTOMATIC is echoed in
/// the description; USER_PROVISIONED needs IOPS from FSx's list; SCRATCH_2 takes none.
#[tokio::test]
async fn metadata_configuration_is_given_at_creation_as_fsx_takes_it() {
    let (sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let request = |token: &str, deployment, metadata| FileSystemRequest {
        deployment_type: deployment,
        per_unit_storage_throughput: (deployment == DeploymentType::Persistent2).then_some(125),
        metadata,
        ..FileSystemRequest::scratch(token, SUBNET, Default::default())
    };
    let automatic = cloud
        .create_file_system(&request(
            "meta-auto",
            DeploymentType::Persistent2,
            Some(MetadataConfiguration::Automatic),
        ))
        .await
        .expect("AUTOMATIC");
    let state = sim.snapshot();
    let made = state["fileSystems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == automatic.id.as_str())
        .expect("in the simulated AWS");
    assert_eq!(
        made["metadataConfiguration"],
        serde_json::json!({"Mode": "AUTOMATIC", "Iops": 1500})
    );
    assert_eq!(automatic.settings.metadata_iops, Some(1500));
    cloud
        .create_file_system(&request(
            "meta-12k",
            DeploymentType::Persistent2,
            Some(MetadataConfiguration::UserProvisioned(12000)),
        ))
        .await
        .expect("12000 IOPS");
    for (token, deployment, metadata) in [
        (
            "meta-1000",
            DeploymentType::Persistent2,
            Some(MetadataConfiguration::UserProvisioned(1000)),
        ),
        (
            "meta-scratch",
            DeploymentType::Scratch2,
            Some(MetadataConfiguration::Automatic),
        ),
    ] {
        let e = cloud
            .create_file_system(&request(token, deployment, metadata))
            .await
            .expect_err(token);
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{token}: {e:?}");
    }
}

/// `cloud`'s file system `id` once it is AVAILABLE again.
async fn available(cloud: &AwsCloud, id: &str) -> FileSystem {
    wait_for("AVAILABLE", Duration::from_secs(20), || async {
        let f = cloud.describe_file_systems(&[id.to_string()]).await.ok()?;
        f.into_iter()
            .find(|f| f.lifecycle == Lifecycle::Available && !f.update_in_progress)
    })
    .await
}

/// Metadata IOPS raised in place (once: the next raise waits 6 hours), root squash and
/// logging set at creation and changed in place, each as FSx checks them.
#[tokio::test]
async fn metadata_raises_root_squash_and_logging_change_in_place() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let squash = |uid_gid: &str| RootSquash {
        uid_gid: uid_gid.into(),
        no_squash_nids: vec!["10.0.[2-10].[1-255]@tcp".into()],
    };
    let log = |level, destination: Option<&str>| LogSettings {
        level,
        destination: destination.map(str::to_string),
    };
    let request = |token: &str, metadata, log| FileSystemRequest {
        deployment_type: DeploymentType::Persistent2,
        per_unit_storage_throughput: Some(125),
        metadata,
        root_squash: Some(squash("65534:65534")),
        log,
        ..FileSystemRequest::scratch(token, SUBNET, Default::default())
    };
    let made = cloud
        .create_file_system(&request(
            "settings-1",
            Some(MetadataConfiguration::Automatic),
            Some(log(LogLevel::WarnError, None)),
        ))
        .await
        .expect("create");
    assert_eq!(made.settings.root_squash, Some(squash("65534:65534")));
    assert_eq!(
        made.settings.log,
        Some(log(
            LogLevel::WarnError,
            Some("arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/lustre")
        )),
        "FSx's default group"
    );
    let foreign = "arn:aws:logs:us-east-1:999999999999:log-group:/aws/fsx/lustre";
    let e = cloud
        .create_file_system(&request(
            "settings-2",
            None,
            Some(log(LogLevel::ErrorOnly, Some(foreign))),
        ))
        .await
        .expect_err("another account's log group");
    assert_eq!(e.code.as_deref(), Some("BadRequest"), "{e:?}");
    let plain = cloud
        .create_file_system(&request("settings-3", None, None))
        .await
        .expect("no metadata configuration");

    available(&cloud, &made.id).await;
    let raise = |iops| FileSystemUpdate {
        metadata: Some(MetadataConfiguration::UserProvisioned(iops)),
        ..FileSystemUpdate::default()
    };
    let e = cloud
        .update_file_system(&made.id, &raise(1000))
        .await
        .expect_err("not on the list");
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
    cloud
        .update_file_system(&made.id, &raise(12000))
        .await
        .expect("raise");
    let raised = available(&cloud, &made.id).await;
    assert_eq!(
        raised.settings.metadata,
        Some(MetadataConfiguration::UserProvisioned(12000))
    );
    assert_eq!(raised.settings.metadata_iops, Some(12000));
    let changed = raised.settings.metadata_changed_at.expect("listed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        now.abs_diff(changed.unsigned_abs()) < 60,
        "{changed} vs {now}"
    );
    let e = cloud
        .update_file_system(&made.id, &raise(24000))
        .await
        .expect_err("within 6 hours");
    assert!(e.message.contains("6 hours"), "{e:?}");

    cloud
        .update_file_system(
            &made.id,
            &FileSystemUpdate {
                root_squash: Some(squash("0:0")),
                log: Some(log(LogLevel::Disabled, None)),
                ..FileSystemUpdate::default()
            },
        )
        .await
        .expect("guard rails");
    let relaxed = available(&cloud, &made.id).await;
    assert_eq!(relaxed.settings.root_squash, Some(squash("0:0")));
    assert_eq!(relaxed.settings.log, Some(log(LogLevel::Disabled, None)));

    available(&cloud, &plain.id).await;
    let e = cloud
        .update_file_system(&plain.id, &raise(12000))
        .await
        .expect_err("no metadata configuration to change");
    assert!(e.message.contains("no metadata configuration"), "{e:?}");
}

/// EFA over the wire: refused while the group lets only the Lustre ports in, created once the
/// all-traffic rules (EC2's `-1`, no ports) are on it, and described as EFA-enabled.
#[tokio::test]
async fn efa_needs_the_all_traffic_rules_on_its_security_group() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let vpc = cloud.subnet(SUBNET).await.expect("subnet").vpc_id;
    let sg = cloud
        .create_security_group(&SecurityGroupRequest {
            name: "efa-group".into(),
            description: "EFA".into(),
            vpc_id: vpc,
            tags: Default::default(),
        })
        .await
        .expect("create sg");
    let clients = [Peer::Group(NODES_SG.into())];
    cloud
        .authorize_ingress(&sg, &lustre_ingress(&sg, &clients))
        .await
        .expect("Lustre ports");
    let request = |token: &str| FileSystemRequest {
        deployment_type: DeploymentType::Persistent2,
        per_unit_storage_throughput: Some(250),
        metadata: Some(MetadataConfiguration::UserProvisioned(12000)),
        efa: true,
        security_group_ids: vec![sg.clone()],
        ..FileSystemRequest::scratch(token, SUBNET, Default::default())
    };
    let e = cloud
        .create_file_system(&request("efa-1"))
        .await
        .expect_err("Lustre ports only");
    assert!(
        e.message
            .contains("Insufficient security group permissions"),
        "{e:?}"
    );
    let all = efa_ingress(&sg, &clients);
    cloud
        .authorize_ingress(&sg, &all)
        .await
        .expect("all traffic");
    let seen = cloud
        .describe_security_groups(std::slice::from_ref(&sg))
        .await
        .expect("describe sg");
    for r in &all {
        assert!(
            seen[0].ingress.contains(r),
            "{r:?} in {:?}",
            seen[0].ingress
        );
    }
    let made = cloud
        .create_file_system(&request("efa-2"))
        .await
        .expect("EFA file system");
    assert!(made.settings.efa);
    let scratch = FileSystemRequest {
        efa: true,
        security_group_ids: vec![sg.clone()],
        ..FileSystemRequest::scratch("efa-3", SUBNET, Default::default())
    };
    let e = cloud
        .create_file_system(&scratch)
        .await
        .expect_err("SCRATCH_2");
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
}

/// Intelligent-Tiering over the wire: elastic (no capacity sent or reported), a throughput
/// and a read cache, provisioned metadata IOPS, no S3 links, throughput raised in place.
#[tokio::test]
async fn intelligent_tiering_is_created_by_throughput_without_links() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let request = |token: &str, metadata| FileSystemRequest {
        deployment_type: DeploymentType::Persistent2,
        metadata: Some(metadata),
        tiering: Some(Tiering {
            throughput_capacity: 4000,
            read_cache: ReadCache {
                sizing_mode: ReadCacheSizing::UserProvisioned,
                size_gib: Some(512),
            },
        }),
        ..FileSystemRequest::scratch(token, SUBNET, Default::default())
    };
    let e = cloud
        .create_file_system(&request("it-1", MetadataConfiguration::Automatic))
        .await
        .expect_err("AUTOMATIC");
    assert!(
        e.message.contains("AUTOMATIC mode is not supported"),
        "{e:?}"
    );
    let made = cloud
        .create_file_system(&request(
            "it-2",
            MetadataConfiguration::UserProvisioned(6000),
        ))
        .await
        .expect("Intelligent-Tiering");
    assert!(made.settings.intelligent_tiering);
    assert_eq!(made.settings.throughput_capacity, Some(4000));
    assert_eq!(made.storage_capacity_gib, 0, "no capacity reported");
    let fs = available(&cloud, &made.id).await;
    let e = cloud
        .create_data_repository_association(&DataRepositoryRequest {
            client_token: "it-link".into(),
            file_system_id: fs.id.clone(),
            file_system_path: "/datasets".into(),
            data_repository_path: "s3://ml-data/datasets/".into(),
            auto_import: vec![],
            auto_export: vec![],
            batch_import_meta_data_on_create: false,
            imported_file_chunk_size_mib: None,
            tags: Default::default(),
        })
        .await
        .expect_err("no S3 links on Intelligent-Tiering");
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
    let raise = |t| FileSystemUpdate {
        throughput_capacity: Some(t),
        ..FileSystemUpdate::default()
    };
    let e = cloud
        .update_file_system(&fs.id, &raise(6000))
        .await
        .expect_err("not a multiple of 4000");
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
    cloud
        .update_file_system(&fs.id, &raise(8000))
        .await
        .expect("raise");
    let raised = available(&cloud, &fs.id).await;
    assert_eq!(raised.settings.throughput_capacity, Some(8000));
}

/// Backups through the adapter as FSx takes them: persistent and unlinked only, one at a time,
/// the same token for the same backup, PENDING to AVAILABLE with progress; a restore at the
/// backup's capacity only (a backup being restored from cannot be deleted); the backup
/// outlives its file system.
#[tokio::test]
async fn backups_are_taken_followed_restored_and_deleted_as_fsx_does() {
    let (_sim, url, _stop) = start(SimConfig {
        timing: fast_timing(),
        ..SimConfig::default()
    })
    .await;
    let cloud = adapter(&url, 1).await;
    let persistent = |token: &str, gib: i32| FileSystemRequest {
        deployment_type: DeploymentType::Persistent2,
        per_unit_storage_throughput: Some(125),
        storage_capacity_gib: gib,
        ..FileSystemRequest::scratch(token, SUBNET, Default::default())
    };
    let fs = cloud
        .create_file_system(&persistent("bk-fs", 2400))
        .await
        .expect("create");
    available(&cloud, &fs.id).await;
    let tags: Tags = [(
        "workspaces.lustre.dev/backup-uid".to_string(),
        "u-1".to_string(),
    )]
    .into();
    let request = BackupRequest {
        client_token: "lwb-1".into(),
        file_system_id: fs.id.clone(),
        tags: tags.clone(),
    };
    let first = cloud.create_backup(&request).await.expect("backup");
    assert_eq!(first.lifecycle, BackupLifecycle::Pending);
    assert_eq!(first.storage_capacity_gib, 2400);
    assert_eq!(first.deployment_type, DeploymentType::Persistent2);
    assert_eq!(
        first
            .tags
            .get("workspaces.lustre.dev/backup-uid")
            .map(String::as_str),
        Some("u-1")
    );
    let again = cloud.create_backup(&request).await.expect("same token");
    assert_eq!(again.id, first.id, "the same token gives the same backup");
    let second = BackupRequest {
        client_token: "lwb-2".into(),
        ..request.clone()
    };
    let busy = cloud
        .create_backup(&second)
        .await
        .expect_err("one at a time");
    assert_eq!(
        (busy.kind, busy.code.as_deref()),
        (ErrorKind::DependencyViolation, Some("BackupInProgress"))
    );
    let early = cloud
        .create_file_system(&FileSystemRequest {
            backup_id: Some(first.id.clone()),
            ..persistent("bk-restore-early", 2400)
        })
        .await
        .expect_err("not AVAILABLE yet");
    assert_eq!(early.kind, ErrorKind::InvalidRequest, "{early:?}");
    let seen = std::sync::Mutex::new(Vec::new());
    let done = wait_for("AVAILABLE", Duration::from_secs(20), || async {
        let b = cloud
            .describe_backups(std::slice::from_ref(&first.id))
            .await
            .ok()?;
        seen.lock().expect("lock").push(b[0].lifecycle.clone());
        (b[0].lifecycle == BackupLifecycle::Available).then(|| b[0].clone())
    })
    .await;
    assert_eq!(done.progress_percent, Some(100));
    let seen = seen.into_inner().expect("lock");
    assert!(
        seen.contains(&BackupLifecycle::Creating) || seen.contains(&BackupLifecycle::Transferring),
        "{seen:?}"
    );
    let of_fs = cloud
        .backups_of(std::slice::from_ref(&fs.id))
        .await
        .expect("by file system");
    assert_eq!(
        of_fs.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str()]
    );

    let wrong = cloud
        .create_file_system(&FileSystemRequest {
            backup_id: Some(first.id.clone()),
            ..persistent("bk-restore-1200", 1200)
        })
        .await
        .expect_err("capacity must be the backup's");
    assert!(wrong.message.contains("2400"), "{wrong:?}");
    let restored = cloud
        .create_file_system(&FileSystemRequest {
            backup_id: Some(first.id.clone()),
            ..persistent("bk-restore", 2400)
        })
        .await
        .expect("restore");
    assert_eq!(restored.storage_capacity_gib, 2400);
    let replay = cloud
        .create_file_system(&FileSystemRequest {
            backup_id: Some(first.id.clone()),
            ..persistent("bk-restore", 2400)
        })
        .await
        .expect("the same token");
    assert_eq!(
        replay.id, restored.id,
        "no second file system for the same token"
    );
    let held = cloud
        .delete_backup(&first.id)
        .await
        .expect_err("being restored from");
    assert_eq!(
        (held.kind, held.code.as_deref()),
        (ErrorKind::DependencyViolation, Some("BackupRestoring"))
    );
    available(&cloud, &restored.id).await;

    cloud
        .delete_file_system(&fs.id, &FileSystemDeletion::default())
        .await
        .expect("delete");
    wait_for("file system gone", Duration::from_secs(20), || async {
        let f = cloud.describe_file_systems(&[]).await.ok()?;
        (!f.iter().any(|f| f.id == fs.id)).then_some(())
    })
    .await;
    let kept = cloud
        .describe_backups(std::slice::from_ref(&first.id))
        .await
        .expect("kept");
    assert_eq!(kept.len(), 1, "a backup outlives its file system");
    cloud
        .delete_backup(&first.id)
        .await
        .expect("delete the backup");
    let gone = cloud
        .describe_backups(std::slice::from_ref(&first.id))
        .await
        .expect("describe");
    assert!(
        gone.is_empty(),
        "a deleted backup is not described: {gone:?}"
    );
    let again = cloud.delete_backup(&first.id).await.expect_err("gone");
    assert_eq!(again.kind, ErrorKind::NotFound);

    let scratch = cloud
        .create_file_system(&FileSystemRequest::scratch(
            "bk-scratch",
            SUBNET,
            Default::default(),
        ))
        .await
        .expect("scratch");
    available(&cloud, &scratch.id).await;
    let refused = cloud
        .create_backup(&BackupRequest {
            client_token: "lwb-3".into(),
            file_system_id: scratch.id.clone(),
            tags: tags.clone(),
        })
        .await
        .expect_err("no backups of scratch");
    assert_eq!(refused.kind, ErrorKind::InvalidRequest, "{refused:?}");
    let (linked, _) = linked_file_system(&cloud, "bk-linked", false).await;
    let refused = cloud
        .create_backup(&BackupRequest {
            client_token: "lwb-4".into(),
            file_system_id: linked,
            tags,
        })
        .await
        .expect_err("no backups of linked file systems");
    assert_eq!(refused.kind, ErrorKind::InvalidRequest, "{refused:?}");
}
