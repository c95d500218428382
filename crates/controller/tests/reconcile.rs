//! The controller end to end in one process: the real reconciler and AWS adapter against the
//! simulated AWS (over HTTP) and the sandbox Kubernetes API server (over HTTP, kube-rs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass, Phase};
use lustre_cloud::aws::{AwsCloud, AwsSettings};
use lustre_cloud::naming;
use lustre_controller::metrics::Metrics;
use lustre_controller::poller::{PollIntervals, Poller};
use lustre_controller::{Context, ControllerConfig, SingleCloud};
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};
use serde_json::{Value, json};

struct World {
    sim: SimAws,
    client: Client,
    cloud: Arc<AwsCloud>,
    servers: lustre_sandbox::World,
}

async fn world() -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = SimConfig {
        timing: Timing {
            create_ms: 400,
            update_ms: 300,
            delete_ms: 300,
            association_create_ms: 150,
            association_delete_ms: 150,
            association_update_ms: 150,
            task_pending_ms: 100,
            task_run_ms: 400,
            task_cancel_ms: 100,
            backup_ms: 600,
            jitter: 0.1,
        },
        ..SimConfig::default()
    };
    let world = lustre_sandbox::World::start(config)
        .await
        .expect("sandbox and simulated AWS");
    let client =
        Client::try_from(Config::new(world.kube_url.parse().expect("url"))).expect("client");
    for crd in lustre_api::crd::crds() {
        Api::<CustomResourceDefinition>::all(client.clone())
            .create(&PostParams::default(), &crd)
            .await
            .expect("crd");
    }
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "ml", "labels": {"lustre": "enabled"}}}),
            )
            .expect("ns"),
        )
        .await
        .expect("namespace");
    let metrics = Arc::new(Metrics::new());
    let cloud = Arc::new(
        AwsCloud::new(
            &AwsSettings {
                region: Some("us-east-1".into()),
                endpoint_url: Some(world.aws_url.clone()),
                max_attempts: 3,
                static_credentials: Some(("AKIDSANDBOX".into(), "sandbox".into())),
                ..AwsSettings::default()
            },
            Some(metrics.clone()),
        )
        .await,
    );
    World {
        sim: world.sim.clone(),
        client,
        cloud,
        servers: world,
    }
}

fn start_operator(
    w: &World,
) -> (
    Arc<Context>,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (poller, wake) = Poller::new();
    let config = ControllerConfig {
        intervals: PollIntervals {
            pending: Duration::from_millis(200),
            drift: Duration::from_secs(600),
        },
        base_backoff: Duration::from_millis(200),
        claim_recheck: Duration::from_millis(200),
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(Context::new(
        w.client.clone(),
        Arc::new(SingleCloud(w.cloud.clone())),
        poller,
        Arc::new(Metrics::new()),
        config,
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(lustre_controller::run(ctx.clone(), wake, async move {
        let _ = rx.await;
    }));
    (ctx, task, tx)
}

async fn apply_class(client: &Client, extra: Value) {
    let mut spec = json!({
        "subnetId": "subnet-0123456789abcdef0",
        "securityGroup": {"clientSecurityGroupIds": ["sg-0123456789abcdef0"], "clientCidrs": ["10.0.0.0/16"]},
        "allowedDataRepositories": ["s3://ml-datasets/", "s3://ml-results/"],
        "allowedNamespaces": {"matchLabels": {"lustre": "enabled"}},
        "maxStorageCapacityGiB": 24000,
    });
    json_patch::merge(&mut spec, &extra);
    let class: LustreWorkspaceClass = serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspaceClass",
        "metadata": {"name": "standard", "annotations": {"workspaces.lustre.dev/is-default-class": "true"}},
        "spec": spec
    }))
    .expect("class");
    Api::<LustreWorkspaceClass>::all(client.clone())
        .patch(
            "standard",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&class),
        )
        .await
        .expect("class");
}

async fn create(client: &Client, name: &str, spec: Value) -> LustreWorkspace {
    let ws: LustreWorkspace = serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
        "metadata": {"name": name, "namespace": "ml"}, "spec": spec
    }))
    .expect("workspace");
    Api::<LustreWorkspace>::namespaced(client.clone(), "ml")
        .create(&PostParams::default(), &ws)
        .await
        .expect("create")
}

async fn wait_for(
    client: &Client,
    name: &str,
    what: &str,
    limit: Duration,
    f: impl Fn(&LustreWorkspace) -> bool,
) -> LustreWorkspace {
    let api: Api<LustreWorkspace> = Api::namespaced(client.clone(), "ml");
    let start = Instant::now();
    loop {
        let ws = api.get_opt(name).await.expect("get");
        if let Some(ws) = &ws
            && f(ws)
        {
            return ws.clone();
        }
        assert!(
            start.elapsed() < limit,
            "{name}: timed out waiting for {what}; last: {:#?}",
            ws.map(|w| w.status)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready(ws: &LustreWorkspace) -> bool {
    ws.status.as_ref().is_some_and(|s| {
        s.phase == Some(Phase::Ready) && s.observed_generation == ws.metadata.generation
    })
}

fn reason(ws: &LustreWorkspace) -> String {
    ws.status
        .as_ref()
        .and_then(|s| s.conditions.first())
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

/// Waits (10 s at most) for the workspace's Ready condition to have this reason.
async fn wait_for_reason(client: &Client, name: &str, why: &str) -> LustreWorkspace {
    wait_for(client, name, why, Duration::from_secs(10), |ws| {
        reason(ws) == why
    })
    .await
}

async fn gone(client: &Client, name: &str) {
    let api: Api<LustreWorkspace> = Api::namespaced(client.clone(), "ml");
    let start = Instant::now();
    while api.get_opt(name).await.expect("get").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(state: &Value, key: &str) -> usize {
    state[key].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test]
async fn create_scale_link_and_delete_through_the_real_adapter() {
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    let (_ctx, _task, _stop) = start_operator(&w);

    // SCRATCH_2 to Ready: claim bound, status complete.
    create(
        &w.client,
        "scratch",
        json!({"deploymentType": "SCRATCH_2", "storageCapacityGiB": 1200}),
    )
    .await;
    let ws = wait_for(
        &w.client,
        "scratch",
        "Ready",
        Duration::from_secs(30),
        ready,
    )
    .await;
    let s = ws.status.clone().expect("status");
    assert!(
        s.conditions.iter().all(|c| c.status == "True"),
        "{:#?}",
        s.conditions
    );
    let fs_id = s.file_system_id.clone().expect("fs id");
    assert!(s.dns_name.as_deref().is_some_and(|d| d.starts_with(&fs_id)));
    assert_eq!(s.claim_name.as_deref(), Some("scratch"));
    let pvc = Api::<PersistentVolumeClaim>::namespaced(w.client.clone(), "ml")
        .get("scratch")
        .await
        .expect("pvc");
    assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    let pv = Api::<PersistentVolume>::all(w.client.clone())
        .get(s.volume_name.as_deref().expect("pv"))
        .await
        .expect("pv");
    assert_eq!(
        pv.spec.and_then(|s| s.csi).map(|c| c.volume_handle),
        Some(fs_id.clone())
    );

    // PERSISTENT_2 with two repositories.
    create(&w.client, "train", json!({"deploymentType": "PERSISTENT_2", "storageCapacityGiB": 1200, "perUnitStorageThroughput": 125,
        "dataRepositories": [
            {"name": "datasets", "s3Path": "s3://ml-datasets/imagenet/", "fileSystemPath": "/datasets", "autoImport": ["NEW", "CHANGED"]},
            {"name": "results", "s3Path": "s3://ml-results/train/", "fileSystemPath": "/results", "autoExport": ["NEW"]}]})).await;
    let ws = wait_for(&w.client, "train", "Ready", Duration::from_secs(30), ready).await;
    assert_eq!(
        ws.status.as_ref().map(|s| s
            .data_repositories
            .iter()
            .filter(|d| d.lifecycle.as_deref() == Some("AVAILABLE"))
            .count()),
        Some(2)
    );
    let state = w.sim.snapshot();
    assert_eq!(
        (
            count(&state, "fileSystems"),
            count(&state, "dataRepositoryAssociations")
        ),
        (2, 2)
    );
    assert_eq!(
        count(&state, "securityGroups"),
        3,
        "node group + one per workspace"
    );

    // Scale up and drop a repository.
    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");
    api.patch("train", &PatchParams::default(), &Patch::Merge(json!({"spec": {"storageCapacityGiB": 2400, "dataRepositories": [
        {"name": "datasets", "s3Path": "s3://ml-datasets/imagenet/", "fileSystemPath": "/datasets", "autoImport": ["NEW", "CHANGED"]}]}})))
        .await
        .expect("scale");
    let ws = wait_for(
        &w.client,
        "train",
        "Ready at 2400 GiB",
        Duration::from_secs(30),
        |ws| ready(ws) && ws.status.as_ref().and_then(|s| s.storage_capacity_gib) == Some(2400),
    )
    .await;
    let pv = Api::<PersistentVolume>::all(w.client.clone())
        .get(
            ws.status
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .expect("pv"),
        )
        .await
        .expect("pv");
    assert_eq!(
        pv.spec
            .and_then(|s| s.capacity)
            .map(|c| c["storage"].0.clone())
            .as_deref(),
        Some("2400Gi")
    );
    let start = Instant::now();
    while count(&w.sim.snapshot(), "dataRepositoryAssociations") != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "removed repository still linked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delete while a pod mounts the claim: the file system stays until the pod goes.
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), "ml");
    pods.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "trainer"},
        "spec": {"containers": [{"name": "c", "image": "python"}], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "train"}}]}})).expect("pod"))
        .await
        .expect("pod");
    let before = api.get("train").await.expect("train");
    assert_eq!(
        before.metadata.finalizers.clone().unwrap_or_default(),
        ["workspaces.lustre.dev/cleanup"],
        "finalizer in place"
    );
    assert_eq!(
        pods.get("trainer")
            .await
            .expect("pod")
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Running"),
        "the pod mounts the bound claim"
    );
    api.delete("train", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        &w.client,
        "train",
        "ClaimInUse",
        Duration::from_secs(10),
        |ws| reason(ws) == "ClaimInUse",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        count(&w.sim.snapshot(), "fileSystems"),
        2,
        "the file system stays while the pod uses it"
    );
    pods.delete("trainer", &DeleteParams::default())
        .await
        .expect("pod gone");
    gone(&w.client, "train").await;
    api.delete("scratch", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&w.client, "scratch").await;
    let state = w.sim.snapshot();
    assert_eq!(
        (
            count(&state, "fileSystems"),
            count(&state, "dataRepositoryAssociations"),
            count(&state, "securityGroups")
        ),
        (0, 0, 1),
        "{state:#}"
    );
    assert!(
        Api::<PersistentVolume>::all(w.client.clone())
            .list(&Default::default())
            .await
            .expect("pvs")
            .items
            .is_empty(),
        "no orphaned PV"
    );
}

#[tokio::test]
async fn invalid_specs_and_missing_classes_cost_no_aws_call() {
    let w = world().await;
    let (_ctx, _task, _stop) = start_operator(&w);

    create(&w.client, "early", json!({"storageCapacityGiB": 1200})).await;
    let ws = wait_for(
        &w.client,
        "early",
        "ClassNotFound",
        Duration::from_secs(10),
        |ws| reason(ws) == "ClassNotFound",
    )
    .await;
    assert_eq!(ws.status.and_then(|s| s.phase), Some(Phase::Pending));
    create(&w.client, "outside", json!({"storageCapacityGiB": 1200, "dataRepositories": [{"name": "x", "s3Path": "s3://someone-elses-bucket/", "fileSystemPath": "/x"}]})).await;
    assert_eq!(
        w.sim.snapshot()["totalCalls"],
        0,
        "no AWS call without a class"
    );

    apply_class(&w.client, json!({})).await;
    let ws = wait_for(
        &w.client,
        "outside",
        "InvalidSpec",
        Duration::from_secs(10),
        |ws| reason(ws) == "InvalidSpec",
    )
    .await;
    let message = ws
        .status
        .as_ref()
        .and_then(|s| s.conditions.first())
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("spec.dataRepositories[0].s3Path")
            && message.contains("not allowed by class standard"),
        "{message}"
    );
    // The class appearing woke the waiting workspace too.
    wait_for(
        &w.client,
        "early",
        "Ready after the class appeared",
        Duration::from_secs(30),
        ready,
    )
    .await;
    let calls = w.sim.call_counts();
    assert_eq!(
        calls.get("CreateFileSystem"),
        Some(&1),
        "only the valid workspace reached AWS: {calls:?}"
    );
}

#[tokio::test]
async fn a_file_system_created_before_a_crash_is_not_created_twice() {
    let w = world().await;
    apply_class(&w.client, json!({"securityGroup": {"managed": false, "additionalSecurityGroupIds": ["sg-0123456789abcdef0"]}})).await;
    // The workspace exists and a previous operator created its file system, then died before
    // writing status (no finalizer, no status, nothing recorded in Kubernetes).
    let ws = create(&w.client, "survivor", json!({"storageCapacityGiB": 1200})).await;
    let uid = ws.metadata.uid.clone().expect("uid");
    let class: LustreWorkspaceClass = Api::<LustreWorkspaceClass>::all(w.client.clone())
        .get("standard")
        .await
        .expect("class");
    let labels = [("lustre".to_string(), "enabled".to_string())].into();
    // What the previous operator had looked up: the class's subnet (its VPC and zone).
    use lustre_cloud::Networking;
    let subnets = [w
        .cloud
        .subnet(&class.spec.subnets()[0])
        .await
        .expect("the class's subnet")];
    let inputs = lustre_controller::plan::Inputs {
        workspace: &ws,
        class: lustre_controller::plan::ClassLookup::Found(&class),
        namespace_labels: &labels,
        cluster_id: None,
        aws: lustre_controller::plan::AwsView {
            subnets: &subnets,
            ..Default::default()
        },
        kube: &Default::default(),
        budget: None,
        pods: Default::default(),
        now: jiff::Timestamp::now(),
    };
    let lustre_controller::plan::Action::CreateFileSystem(request) =
        lustre_controller::plan::next_action(&inputs)
    else {
        panic!("expected a create")
    };
    assert_eq!(request.client_token, naming::file_system_token(&uid));
    use lustre_cloud::FileSystems;
    let first = w
        .cloud
        .create_file_system(&request)
        .await
        .expect("pre-crash create");

    let (_ctx, _task, _stop) = start_operator(&w);
    let ws = wait_for(
        &w.client,
        "survivor",
        "Ready",
        Duration::from_secs(30),
        ready,
    )
    .await;
    assert_eq!(ws.status.and_then(|s| s.file_system_id), Some(first.id));
    assert_eq!(
        count(&w.sim.snapshot(), "fileSystems"),
        1,
        "the retried create returned the same file system"
    );
}

#[tokio::test]
async fn many_pending_workspaces_share_one_describe_per_poll() {
    let w = world().await;
    apply_class(&w.client, json!({"securityGroup": {"managed": false, "additionalSecurityGroupIds": ["sg-0123456789abcdef0"]}})).await;
    // Long enough that every file system is still CREATING while the window is measured.
    w.sim.set_timing(Timing {
        create_ms: 20_000,
        jitter: 0.0,
        ..Timing::default()
    });
    let (ctx, _task, _stop) = start_operator(&w);
    let n = 200;
    for i in 0..n {
        create(
            &w.client,
            &format!("ws-{i:03}"),
            json!({"storageCapacityGiB": 1200}),
        )
        .await;
    }
    let start = Instant::now();
    while ctx.poller.pending() < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} of {n} file systems registered",
            ctx.poller.pending()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Measure a window while all are CREATING.
    let before = w.sim.calls("DescribeFileSystems");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let during = w.sim.calls("DescribeFileSystems") - before;
    let rounds = 1_000 / 200;
    println!("{n} pending workspaces: {during} DescribeFileSystems in {rounds} poll intervals");
    assert!(
        during <= rounds as u64 + 1,
        "{during} calls in {rounds} intervals: batched, not per workspace"
    );
    for i in 0..n {
        wait_for(
            &w.client,
            &format!("ws-{i:03}"),
            "Ready",
            Duration::from_secs(120),
            ready,
        )
        .await;
    }
}

fn request(token: &str, tags: lustre_cloud::Tags) -> lustre_cloud::FileSystemRequest {
    lustre_cloud::FileSystemRequest::scratch(token, "subnet-0123456789abcdef0", tags)
}

#[tokio::test]
async fn a_failed_file_system_is_terminal_and_still_cleaned_up() {
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    w.sim.fail_next_create("The KMS key is disabled");
    let (_ctx, _task, _stop) = start_operator(&w);
    create(&w.client, "doomed", json!({"storageCapacityGiB": 1200})).await;
    let ws = wait_for(
        &w.client,
        "doomed",
        "FileSystemFailed",
        Duration::from_secs(30),
        |ws| reason(ws) == "FileSystemFailed",
    )
    .await;
    let s = ws.status.expect("status");
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(
        s.conditions[0].message, "The KMS key is disabled",
        "AWS's words, verbatim"
    );
    // No hot loop: a terminal state makes no further calls.
    let before = w.sim.snapshot()["totalCalls"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = w.sim.snapshot()["totalCalls"].as_u64().unwrap_or(0);
    assert!(after - before <= 1, "{} calls while FAILED", after - before);
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&w.client, "doomed").await;
    let state = w.sim.snapshot();
    assert_eq!(
        (
            count(&state, "fileSystems"),
            count(&state, "securityGroups")
        ),
        (0, 1),
        "{state:#}"
    );
}

#[tokio::test]
async fn adopting_keeps_the_file_system_and_refuses_another_workspaces() {
    use lustre_cloud::FileSystems;
    let w = world().await;
    apply_class(
        &w.client,
        json!({"adoption": {"fileSystemTags": {"lustre-adoptable": "true"}}}),
    )
    .await;
    let adoptable: lustre_cloud::Tags =
        [("lustre-adoptable".to_string(), "true".to_string())].into();
    let free = w
        .cloud
        .create_file_system(&request("made-by-hand", adoptable))
        .await
        .expect("free fs");
    let untagged = w
        .cloud
        .create_file_system(&request("made-by-hand-untagged", Default::default()))
        .await
        .expect("untagged fs");
    let foreign_tags = naming::owner_tags(
        &naming::Owner {
            namespace: "other".into(),
            name: "theirs".into(),
            uid: "not-this-one".into(),
            class: "standard".into(),
        },
        &Default::default(),
        &Default::default(),
    );
    let foreign = w
        .cloud
        .create_file_system(&request("someone-elses", foreign_tags))
        .await
        .expect("foreign fs");
    let (_ctx, _task, _stop) = start_operator(&w);

    create(&w.client, "adopter", json!({"storageCapacityGiB": 1200, "fileSystemId": free.id,
        "dataRepositories": [{"name": "d", "s3Path": "s3://ml-datasets/", "fileSystemPath": "/d"}]})).await;
    let ws = wait_for(
        &w.client,
        "adopter",
        "Ready",
        Duration::from_secs(30),
        ready,
    )
    .await;
    assert_eq!(
        ws.status.as_ref().and_then(|s| s.file_system_id.clone()),
        Some(free.id.clone())
    );
    let adopter_uid = ws.metadata.uid.clone().unwrap_or_default();
    let mark = |state: &Value, id: &str| {
        state["fileSystems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == id)
            .map(|f| f["tags"][lustre_api::constants::tags::ADOPTED_BY].clone())
            .unwrap_or_default()
    };
    assert_eq!(mark(&w.sim.snapshot(), &free.id), json!(adopter_uid));
    // Another workspace's, one the policy does not admit, one already adopted: one answer.
    let mut messages = std::collections::BTreeSet::new();
    for (name, id) in [
        ("thief", &foreign.id),
        ("untagged", &untagged.id),
        ("second", &free.id),
    ] {
        create(
            &w.client,
            name,
            json!({"storageCapacityGiB": 1200, "fileSystemId": id}),
        )
        .await;
        let ws = wait_for(
            &w.client,
            name,
            "AdoptionRefused",
            Duration::from_secs(30),
            |ws| reason(ws) == "AdoptionRefused",
        )
        .await;
        let message = ws
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .map(|c| c.message.replace(id.as_str(), "<id>"))
            .unwrap_or_default();
        assert!(
            message.contains("cannot be adopted by this workspace"),
            "{message}"
        );
        messages.insert(message);
    }
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        count(&w.sim.snapshot(), "securityGroups"),
        1,
        "adoption creates no security group"
    );

    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");
    api.delete("adopter", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&w.client, "adopter").await;
    for name in ["thief", "untagged", "second"] {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
        gone(&w.client, name).await;
    }
    let state = w.sim.snapshot();
    assert_eq!(
        count(&state, "fileSystems"),
        3,
        "adopted and foreign file systems are never deleted"
    );
    assert_eq!(
        mark(&state, &free.id),
        Value::Null,
        "the adopter's mark comes off with it"
    );
    assert_eq!(
        count(&state, "dataRepositoryAssociations"),
        0,
        "the link the workspace made is removed"
    );
}

#[tokio::test]
async fn a_retained_workspace_keeps_aws_and_links_repositories_added_later() {
    use k8s_openapi::api::core::v1::Event;
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    let (_ctx, _task, _stop) = start_operator(&w);
    create(
        &w.client,
        "keep",
        json!({"deploymentType": "PERSISTENT_2", "storageCapacityGiB": 1200,
        "perUnitStorageThroughput": 125, "deletionPolicy": "Retain"}),
    )
    .await;
    let ws = wait_for(&w.client, "keep", "Ready", Duration::from_secs(30), ready).await;
    let fs_id = ws
        .status
        .as_ref()
        .and_then(|s| s.file_system_id.clone())
        .expect("fs id");
    let sg_id = ws
        .status
        .as_ref()
        .and_then(|s| s.security_group_id.clone())
        .expect("sg id");

    // A repository added to a Ready workspace, and a throughput change, in one edit.
    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");
    api.patch("keep", &PatchParams::default(), &Patch::Merge(json!({"spec": {"perUnitStorageThroughput": 250,
        "dataRepositories": [{"name": "results", "s3Path": "s3://ml-results/keep/", "fileSystemPath": "/results", "autoExport": ["NEW", "CHANGED"]}]}})))
        .await
        .expect("edit");
    wait_for(
        &w.client,
        "keep",
        "Ready with the new repository",
        Duration::from_secs(30),
        |ws| {
            ready(ws)
                && ws.status.as_ref().is_some_and(|s| {
                    s.data_repositories.len() == 1
                        && s.data_repositories[0].lifecycle.as_deref() == Some("AVAILABLE")
                })
        },
    )
    .await;
    let state = w.sim.snapshot();
    let fs = &state["fileSystems"][0];
    assert_eq!(fs["perUnitStorageThroughput"], 250, "{fs:#}");
    assert_eq!(
        state["dataRepositoryAssociations"][0]["dataRepositoryPath"],
        "s3://ml-results/keep/"
    );
    assert_eq!(w.sim.calls("UpdateFileSystem"), 1);

    api.delete("keep", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&w.client, "keep").await;
    let state = w.sim.snapshot();
    assert_eq!(
        (
            count(&state, "fileSystems"),
            count(&state, "dataRepositoryAssociations"),
            count(&state, "securityGroups")
        ),
        (1, 1, 2),
        "Retain keeps the file system, its link and its security group: {state:#}"
    );
    assert_eq!(
        state["fileSystems"][0]["tags"]["workspaces.lustre.dev/retained"],
        "true"
    );
    assert_eq!(w.sim.calls("DeleteFileSystem"), 0);
    assert!(
        Api::<PersistentVolume>::all(w.client.clone())
            .list(&Default::default())
            .await
            .expect("pvs")
            .items
            .is_empty(),
        "the Kubernetes side is gone"
    );
    let events = Api::<Event>::namespaced(w.client.clone(), "ml")
        .list(&Default::default())
        .await
        .expect("events");
    let retained = events
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Retained"))
        .and_then(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        retained.contains(&fs_id) && retained.contains(&sg_id),
        "the Event names what was kept: {retained:?}"
    );
}

#[tokio::test]
async fn conflicts_retry_at_the_base_delay_and_aws_failures_back_off() {
    use lustre_cloud::{CloudError, ErrorKind};
    use lustre_controller::error::{Cause, Error, Step};
    let w = world().await;
    let (poller, _wake) = Poller::new();
    let ctx = Context::new(
        w.client.clone(),
        Arc::new(SingleCloud(w.cloud.clone())),
        poller,
        Arc::new(Metrics::new()),
        ControllerConfig {
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            ..ControllerConfig::default()
        },
    );
    let conflict = || {
        Error::new(
            Step::WriteStatus,
            Cause::Kube(kube::Error::Api(Box::new(
                kube::core::Status::failure("the object has been modified", "Conflict")
                    .with_code(409),
            ))),
        )
    };
    let throttled = || {
        Error::new(
            Step::ObserveFileSystem,
            Cause::Cloud(CloudError::new(
                ErrorKind::Throttled,
                "DescribeFileSystems",
                "Rate exceeded",
            )),
        )
    };
    // Ten conflicts in a row: every retry within the base delay and its jitter.
    for _ in 0..10 {
        let d = ctx.retry_delay("uid-a", &conflict()).expect("retried");
        assert!(d <= Duration::from_millis(2400), "{d:?}");
    }
    // AWS throttling grows the delay: 2, 4, 8, 16, 32 s (±20 %) ...
    let delays: Vec<Duration> = (0..5)
        .map(|_| ctx.retry_delay("uid-b", &throttled()).expect("retried"))
        .collect();
    assert!(
        delays[4] >= Duration::from_secs_f64(32.0 * 0.8),
        "{delays:?}"
    );
    // ... and a conflict in between neither resets nor grows it.
    let d = ctx.retry_delay("uid-b", &conflict()).expect("retried");
    assert!(d <= Duration::from_millis(2400), "{d:?}");
    let next = ctx.retry_delay("uid-b", &throttled()).expect("retried");
    assert!(
        next >= Duration::from_secs_f64(64.0 * 0.8),
        "{next:?} after {delays:?}"
    );
    // A request AWS calls invalid waits for a change of spec or class.
    let invalid = Error::new(
        Step::Act("CreateFileSystem"),
        Cause::Cloud(CloudError::new(
            ErrorKind::InvalidRequest,
            "CreateFileSystem",
            "bad",
        )),
    );
    assert_eq!(ctx.retry_delay("uid-c", &invalid), None);
}

#[tokio::test]
async fn a_volume_held_by_a_finalizer_after_its_delete_is_looked_at_again() {
    // kube-controller-manager's pv-protection holds a deleted PersistentVolume for a moment
    // after its claim goes, and nothing the operator watches changes when it lets go: found by
    // the benchmark on a real control plane, where 947 of 1,000 deletions stopped there.
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    let (_ctx, _task, _stop) = start_operator(&w);
    create(
        &w.client,
        "held",
        json!({"deploymentType": "SCRATCH_2", "storageCapacityGiB": 1200}),
    )
    .await;
    let ws = wait_for(&w.client, "held", "Ready", Duration::from_secs(30), ready).await;
    let pv = ws.status.and_then(|s| s.volume_name).expect("volume name");
    let volumes = Api::<PersistentVolume>::all(w.client.clone());
    let hold = |finalizers: Value| {
        let volumes = volumes.clone();
        let pv = pv.clone();
        async move {
            volumes
                .patch(
                    &pv,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
                )
                .await
                .expect("finalizers")
        }
    };
    hold(json!(["test.lustre.dev/hold"])).await;
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        &w.client,
        "held",
        "the volume deleted and held",
        Duration::from_secs(30),
        |ws| {
            ws.status
                .as_ref()
                .and_then(|s| s.conditions.first())
                .is_some_and(|c| c.message.contains("pv-protection the volume"))
        },
    )
    .await;
    assert!(
        volumes
            .get(&pv)
            .await
            .expect("held")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    // Let the operator settle on it, then let the volume go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hold(Value::Null).await;
    gone(&w.client, "held").await;
    assert_eq!(count(&w.sim.snapshot(), "fileSystems"), 0);
    let deletes = w
        .servers
        .kube
        .store()
        .audit
        .iter()
        .filter(|a| a.verb == "delete" && a.resource == "persistentvolumes")
        .count();
    assert_eq!(
        deletes, 1,
        "the volume's delete is sent once, then looked at"
    );
}

#[tokio::test]
async fn a_workspace_that_needs_a_person_is_warned_once_per_change_not_once_per_look() {
    use k8s_openapi::api::events::v1::Event;
    let w = world().await;
    let (ctx, _task, _stop) = start_operator(&w);
    apply_class(&w.client, json!({})).await;
    let outside = |bucket: &str| json!({"storageCapacityGiB": 1200, "dataRepositories": [{"name": "x", "s3Path": format!("s3://{bucket}/"), "fileSystemPath": "/x"}]});
    create(&w.client, "outside", outside("someone-elses-bucket")).await;
    wait_for_reason(&w.client, "outside", "InvalidSpec").await;
    // Three more looks at the same workspace (a label change wakes it each time).
    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");
    let reconciles = || ctx.metrics.reconciles.with_label_values(&["ok"]).get();
    for n in 0..3 {
        let before = reconciles();
        let patch = json!({"metadata": {"labels": {"look": n.to_string()}}});
        api.patch("outside", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("label");
        let start = Instant::now();
        while reconciles() == before {
            assert!(start.elapsed() < Duration::from_secs(10), "no reconcile");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let warnings = || async {
        let events = Api::<Event>::namespaced(w.client.clone(), "ml")
            .list(&Default::default())
            .await
            .expect("events");
        events
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
            .map(|e| e.series.as_ref().map_or(1, |s| s.count))
            .sum::<i32>()
    };
    assert_eq!(warnings().await, 1, "one Warning for one unchanged problem");
    // Another problem is news: a second Warning.
    api.patch(
        "outside",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": outside("another-bucket")})),
    )
    .await
    .expect("spec");
    let start = Instant::now();
    while warnings().await < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no Warning for the new problem"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(warnings().await, 2);
}

async fn create_task(client: &Client, name: &str, spec: Value) {
    let task: lustre_api::LustreDataTask = serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreDataTask",
        "metadata": {"name": name, "namespace": "ml"}, "spec": spec
    }))
    .expect("data task");
    Api::<lustre_api::LustreDataTask>::namespaced(client.clone(), "ml")
        .create(&PostParams::default(), &task)
        .await
        .expect("create task");
}

async fn wait_task(
    client: &Client,
    name: &str,
    what: &str,
    f: impl Fn(&lustre_api::LustreDataTaskStatus) -> bool,
) -> lustre_api::LustreDataTaskStatus {
    let api: Api<lustre_api::LustreDataTask> = Api::namespaced(client.clone(), "ml");
    let start = Instant::now();
    loop {
        let status = api
            .get_opt(name)
            .await
            .expect("get")
            .and_then(|t| t.status)
            .unwrap_or_default();
        if f(&status) {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}: timed out waiting for {what}; last: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn phase_is(p: lustre_api::DataTaskPhase) -> impl Fn(&lustre_api::LustreDataTaskStatus) -> bool {
    move |s| s.phase == Some(p)
}

/// Data tasks on one workspace: an export to Succeeded with its counts and report path; a
/// task refused before any AWS call (a path outside the links, an export into a read-only
/// prefix); two tasks run one after the other; a running task canceled by deleting it; then
/// a link's automatic export turned on in place (no unlink).
#[tokio::test]
async fn data_tasks_run_in_order_are_refused_before_aws_and_cancel_on_delete() {
    use lustre_api::DataTaskPhase::{Failed, Pending, Running, Succeeded};
    let w = world().await;
    apply_class(
        &w.client,
        json!({"readOnlyDataRepositories": ["s3://ml-datasets/"]}),
    )
    .await;
    let (_ctx, _task, _stop) = start_operator(&w);
    create(
        &w.client,
        "train",
        json!({"storageCapacityGiB": 1200, "dataRepositories": [
            {"name": "datasets", "s3Path": "s3://ml-datasets/imagenet/", "fileSystemPath": "/datasets"},
            {"name": "results", "s3Path": "s3://ml-results/train/", "fileSystemPath": "/results"},
        ]}),
    )
    .await;
    wait_for(&w.client, "train", "Ready", Duration::from_secs(30), ready).await;

    create_task(
        &w.client,
        "export-run-1",
        json!({"workspace": "train", "type": "Export", "paths": ["/results/run-1"], "report": {"enabled": true}}),
    )
    .await;
    let done = wait_task(&w.client, "export-run-1", "Succeeded", phase_is(Succeeded)).await;
    assert_eq!(
        (done.total_files, done.succeeded_files, done.failed_files),
        (Some(250), Some(250), Some(0))
    );
    assert_eq!(done.progress.as_deref(), Some("250/250"));
    assert_eq!(
        done.report_path.as_deref(),
        Some("s3://ml-results/train/lustre-task-reports")
    );
    assert!(done.start_time.is_some() && done.completion_time.is_some());
    let complete = done
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .expect("Complete");
    assert_eq!(complete.status, "True");
    let sent = w.sim.tasks();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].paths,
        ["results/run-1"],
        "export paths are relative to the mount"
    );

    // Refused with no AWS call: a path outside the links; an export into a read-only prefix.
    let before = w.sim.calls("CreateDataRepositoryTask");
    create_task(
        &w.client,
        "outside",
        json!({"workspace": "train", "type": "Export", "paths": ["/scratch"]}),
    )
    .await;
    create_task(
        &w.client,
        "into-read-only",
        json!({"workspace": "train", "type": "Export", "paths": ["/datasets/x"]}),
    )
    .await;
    let outside = wait_task(&w.client, "outside", "Failed", phase_is(Failed)).await;
    assert!(
        outside
            .message
            .as_deref()
            .is_some_and(|m| m.contains("/scratch is not at or under")),
        "{outside:?}"
    );
    let ro = wait_task(&w.client, "into-read-only", "Failed", phase_is(Failed)).await;
    assert!(
        ro.message
            .as_deref()
            .is_some_and(|m| m.contains("read-only")),
        "{ro:?}"
    );
    assert_eq!(w.sim.calls("CreateDataRepositoryTask"), before);

    // One after the other: the later one waits Pending, then runs.
    w.sim.set_timing(Timing {
        task_run_ms: 1_500,
        ..Timing::default()
    });
    create_task(&w.client, "release-old", json!({"workspace": "train", "type": "Release", "paths": ["/results"], "release": {"olderThanDays": 7}})).await;
    wait_task(&w.client, "release-old", "Running", phase_is(Running)).await;
    create_task(
        &w.client,
        "import-new",
        json!({"workspace": "train", "type": "Import", "paths": ["/datasets/new"]}),
    )
    .await;
    let queued = wait_task(&w.client, "import-new", "Pending", phase_is(Pending)).await;
    assert!(
        queued
            .message
            .as_deref()
            .is_some_and(|m| m.contains("release-old")),
        "{queued:?}"
    );
    wait_task(&w.client, "release-old", "Succeeded", phase_is(Succeeded)).await;
    wait_task(&w.client, "import-new", "Succeeded", phase_is(Succeeded)).await;
    let import = w
        .sim
        .tasks()
        .into_iter()
        .find(|t| t.task_type == "IMPORT_METADATA_FROM_REPOSITORY")
        .expect("import");
    assert_eq!(
        import.paths,
        ["s3://ml-datasets/imagenet/new"],
        "import paths are S3 paths"
    );

    // Deleting a running task cancels it in FSx.
    w.sim.set_timing(Timing {
        task_run_ms: 20_000,
        ..Timing::default()
    });
    create_task(
        &w.client,
        "long-export",
        json!({"workspace": "train", "type": "Export", "paths": ["/results"]}),
    )
    .await;
    wait_task(&w.client, "long-export", "Running", phase_is(Running)).await;
    Api::<lustre_api::LustreDataTask>::namespaced(w.client.clone(), "ml")
        .delete("long-export", &DeleteParams::default())
        .await
        .expect("delete");
    let api: Api<lustre_api::LustreDataTask> = Api::namespaced(w.client.clone(), "ml");
    let start = Instant::now();
    while api.get_opt("long-export").await.expect("get").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "long-export was not let go"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(w.sim.calls("CancelDataRepositoryTask"), 1);

    // Automatic export turned on for a link: the association is changed in place.
    let before = w.sim.snapshot()["dataRepositoryAssociations"].clone();
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .patch(
            "train",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"dataRepositories": [
                {"name": "datasets", "s3Path": "s3://ml-datasets/imagenet/", "fileSystemPath": "/datasets"},
                {"name": "results", "s3Path": "s3://ml-results/train/", "fileSystemPath": "/results", "autoExport": ["NEW", "CHANGED"]},
            ]}})),
        )
        .await
        .expect("turn on autoExport");
    wait_for(
        &w.client,
        "train",
        "Ready again",
        Duration::from_secs(20),
        |ws| {
            ready(ws)
                && ws.status.as_ref().is_some_and(|s| {
                    s.data_repositories
                        .iter()
                        .all(|d| d.lifecycle.as_deref() == Some("AVAILABLE"))
                })
        },
    )
    .await;
    let after = w.sim.snapshot()["dataRepositoryAssociations"].clone();
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(String::from))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&before), ids(&after), "the same associations");
    assert_eq!(w.sim.calls("UpdateDataRepositoryAssociation"), 1);
    assert_eq!(w.sim.calls("DeleteDataRepositoryAssociation"), 0);
    let results = after
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["fileSystemPath"] == "/results")
        .expect("results link");
    assert_eq!(results["autoExport"], json!(["NEW", "CHANGED"]));
    let canceled = w
        .sim
        .tasks()
        .into_iter()
        .filter(|t| t.task_type == "EXPORT_TO_REPOSITORY" && t.paths == ["results"])
        .count();
    assert_eq!(canceled, 1);
    assert!(w.sim.tasks().iter().any(|t| matches!(
        t.lifecycle,
        lustre_sandbox::aws::state::TaskLifecycle::Canceling
            | lustre_sandbox::aws::state::TaskLifecycle::Canceled
    )));

    // The workspace deleted while a data task runs: nothing is unlinked until it ends
    // (deleting the task cancels it), then the deletion goes on.
    create_task(
        &w.client,
        "slow-import",
        json!({"workspace": "train", "type": "Import", "paths": ["/datasets"]}),
    )
    .await;
    wait_task(&w.client, "slow-import", "Running", phase_is(Running)).await;
    let unlinks = w.sim.calls("DeleteDataRepositoryAssociation");
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .delete("train", &DeleteParams::default())
        .await
        .expect("delete");
    let waiting = wait_for(
        &w.client,
        "train",
        "waits for the task",
        Duration::from_secs(10),
        |ws| condition(ws, "Ready").is_some_and(|c| c.2.contains("still run on the file system")),
    )
    .await;
    assert_eq!(reason(&waiting), "Deleting");
    assert_eq!(w.sim.calls("DeleteDataRepositoryAssociation"), unlinks);
    Api::<lustre_api::LustreDataTask>::namespaced(w.client.clone(), "ml")
        .delete("slow-import", &DeleteParams::default())
        .await
        .expect("delete the task");
    gone(&w.client, "train").await;
}

/// A workspace's finalizer-held status conditions, by type.
fn condition(ws: &LustreWorkspace, kind: &str) -> Option<(String, String, String)> {
    ws.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The Events of this reason in the namespace, with their notes.
async fn notes(client: &Client, reason: &str) -> Vec<(String, String)> {
    use k8s_openapi::api::events::v1::Event;
    Api::<Event>::namespaced(client.clone(), "ml")
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| {
            (
                e.regarding.and_then(|r| r.name).unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// The export before deletion (`exportOnDelete`): the export runs after the claim is gone and
/// finishes before any association or the file system is deleted (the simulated AWS's call
/// log); a failed export with Block keeps the file system, says why and how to go on, and
/// the retry annotation starts a new export; with Continue the deletion goes on with a
/// Warning.
#[tokio::test]
async fn deleting_a_workspace_exports_first_and_a_failed_export_blocks_or_continues() {
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    let (_ctx, _task, _stop) = start_operator(&w);
    let spec = |extra: Value| {
        let mut spec = json!({"storageCapacityGiB": 1200, "dataRepositories": [
            {"name": "datasets", "s3Path": "s3://ml-datasets/imagenet/", "fileSystemPath": "/datasets", "autoImport": ["NEW"]},
            {"name": "results", "s3Path": "s3://ml-results/train/", "fileSystemPath": "/results", "exportOnDelete": true},
        ]});
        json_patch::merge(&mut spec, &extra);
        spec
    };
    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");

    // 1. The export runs and finishes before anything is unlinked or deleted (the unlinking
    // is slowed so the finished task can be read before its file system takes it away).
    create(&w.client, "train", spec(json!({}))).await;
    wait_for(&w.client, "train", "Ready", Duration::from_secs(30), ready).await;
    let quick = w.sim.timing();
    // Its two links were made one at a time: the second once the first was AVAILABLE.
    let creates: Vec<Instant> = w
        .sim
        .call_log()
        .iter()
        .filter(|c| c.operation == "CreateDataRepositoryAssociation")
        .map(|c| c.at)
        .collect();
    assert_eq!(creates.len(), 2);
    let least = Duration::from_millis(quick.association_create_ms).mul_f64(1.0 - quick.jitter);
    assert!(creates[1] - creates[0] >= least, "{creates:?}");
    w.sim.set_timing(Timing {
        task_run_ms: 1_500,
        association_delete_ms: 3_000,
        ..quick.clone()
    });
    api.delete("train", &DeleteParams::default())
        .await
        .expect("delete");
    let exporting = wait_for(
        &w.client,
        "train",
        "DataExported: Exporting",
        Duration::from_secs(20),
        |ws| condition(ws, "DataExported").is_some_and(|c| c.1 == "Exporting"),
    )
    .await;
    assert_eq!(reason(&exporting), "Exporting", "Ready says why it waits");
    let done = wait_for(
        &w.client,
        "train",
        "DataExported: Exported",
        Duration::from_secs(20),
        |ws| condition(ws, "DataExported").is_some_and(|c| c.0 == "True"),
    )
    .await;
    let tasks = w.sim.tasks();
    let last = done.status.and_then(|s| s.last_export).expect("lastExport");
    assert_eq!(
        (last.lifecycle.as_str(), last.paths.clone()),
        ("SUCCEEDED", vec!["/results".to_string()])
    );
    assert!(last.total_files.is_some_and(|n| n > 0) && last.failed_files == Some(0));
    assert_eq!(tasks.len(), 1, "one export");
    let export = &tasks[0];
    assert_eq!(
        (export.task_type.as_str(), export.paths.clone()),
        ("EXPORT_TO_REPOSITORY", vec!["results".to_string()])
    );
    assert_eq!(
        export.lifecycle,
        lustre_sandbox::aws::state::TaskLifecycle::Succeeded
    );
    gone(&w.client, "train").await;
    let log = w.sim.call_log();
    let first = |op: &str| {
        log.iter()
            .find(|c| c.operation == op && c.ok)
            .unwrap_or_else(|| panic!("no {op}"))
            .at
    };
    let ended = export.ended_at.expect("ended");
    assert!(first("CreateDataRepositoryTask") < first("DeleteDataRepositoryAssociation"));
    assert!(ended <= first("DeleteDataRepositoryAssociation"));
    assert!(ended <= first("DeleteFileSystem"));
    // Followed once per poll interval (200 ms here), not once per status write.
    let followed = first("DeleteDataRepositoryAssociation") - first("CreateDataRepositoryTask");
    let describes = w.sim.calls("DescribeDataRepositoryTasks");
    assert!(
        describes <= (followed.as_millis() / 200) as u64 + 2,
        "{describes} describes in {followed:?}"
    );
    let exported = notes(&w.client, "Exported").await;
    assert!(
        exported
            .iter()
            .any(|(ws, note)| ws == "train" && note.contains("SUCCEEDED")),
        "{exported:?}"
    );

    // 2. Block: a failed export keeps the file system and says how to go on.
    w.sim.set_timing(quick);
    create(&w.client, "eval", spec(json!({}))).await;
    let ready_eval = wait_for(&w.client, "eval", "Ready", Duration::from_secs(30), ready).await;
    let fs = ready_eval
        .status
        .and_then(|s| s.file_system_id)
        .expect("file system");
    w.sim
        .fail_next_task("Access Denied writing to s3://ml-results/train/");
    api.delete("eval", &DeleteParams::default())
        .await
        .expect("delete");
    let blocked = wait_for_reason(&w.client, "eval", "ExportFailed").await;
    let (status, _, message) = condition(&blocked, "DataExported").expect("DataExported");
    assert_eq!(status, "False");
    for words in [
        "Access Denied",
        "workspaces.lustre.dev/retry-export",
        "failurePolicy: Continue",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    let last = blocked
        .status
        .as_ref()
        .and_then(|s| s.last_export.clone())
        .expect("lastExport");
    assert_eq!(last.lifecycle, "FAILED");
    assert_eq!(last.paths, ["/results"]);
    // Still there after a few more looks, its links too.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let state = w.sim.snapshot();
    let kept = state["fileSystems"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["id"] == fs.as_str() && f["lifecycle"] == "AVAILABLE");
    assert!(kept, "the file system is kept: {state:#}");
    assert_eq!(
        w.sim.calls("DeleteDataRepositoryAssociation"),
        2,
        "only train's links"
    );
    let warned = notes(&w.client, "ExportFailed").await;
    assert_eq!(
        warned.iter().filter(|(ws, _)| ws == "eval").count(),
        1,
        "{warned:?}"
    );
    // Fixed and retried: a new export, then the deletion goes on.
    api.patch(
        "eval",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"workspaces.lustre.dev/retry-export": "1"}}}),
        ),
    )
    .await
    .expect("retry");
    gone(&w.client, "eval").await;
    assert_eq!(
        w.sim.calls("CreateDataRepositoryTask"),
        3,
        "train's export, eval's failed one and its retry"
    );

    // 3. Continue: the deletion goes on with a Warning.
    create(
        &w.client,
        "scratch",
        spec(json!({"deletionExport": {"failurePolicy": "Continue", "timeoutMinutes": 30}})),
    )
    .await;
    wait_for(
        &w.client,
        "scratch",
        "Ready",
        Duration::from_secs(30),
        ready,
    )
    .await;
    w.sim.fail_next_task("Access Denied");
    api.delete("scratch", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&w.client, "scratch").await;
    let warned = notes(&w.client, "ExportFailed").await;
    assert!(
        warned
            .iter()
            .any(|(ws, note)| ws == "scratch" && note.contains("deleting anyway")),
        "{warned:?}"
    );
    assert!(w.sim.tasks().is_empty(), "gone with their file systems");
    assert_eq!(w.sim.calls("CreateDataRepositoryTask"), 4);
}

/// The import on create (`importMetadataOnCreate`): once the link is AVAILABLE one FSx import
/// task loads its prefix and the workspace is Ready only after it; status records the link as
/// imported and a Ready workspace looks at no task again. A failed import stops with FSx's
/// words, and the retry annotation imports again.
#[tokio::test]
async fn a_link_imported_on_create_is_ready_after_its_import_and_a_failure_says_why() {
    let w = world().await;
    apply_class(&w.client, json!({})).await;
    let (ctx, _task, _stop) = start_operator(&w);
    let spec = |name: &str| {
        json!({"storageCapacityGiB": 1200, "dataRepositories": [
            {"name": "datasets", "s3Path": format!("s3://ml-datasets/{name}/"), "fileSystemPath": "/datasets", "importMetadataOnCreate": true},
            {"name": "results", "s3Path": format!("s3://ml-results/{name}/"), "fileSystemPath": "/results"},
        ]})
    };
    let quick = w.sim.timing();
    w.sim.set_timing(Timing {
        task_run_ms: 1_000,
        ..quick.clone()
    });
    create(&w.client, "seed", spec("seed")).await;
    let importing = wait_for(
        &w.client,
        "seed",
        "DataRepositoriesReady: Importing",
        Duration::from_secs(20),
        |ws| condition(ws, "DataRepositoriesReady").is_some_and(|c| c.1 == "Importing"),
    )
    .await;
    assert_eq!(
        importing.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Provisioning)
    );
    let seed = wait_for(&w.client, "seed", "Ready", Duration::from_secs(30), ready).await;
    let tasks = w.sim.tasks();
    assert_eq!(tasks.len(), 1, "one import");
    assert_eq!(
        (tasks[0].task_type.as_str(), tasks[0].paths.clone()),
        (
            "IMPORT_METADATA_FROM_REPOSITORY",
            vec!["s3://ml-datasets/seed/".to_string()]
        )
    );
    assert_eq!(
        tasks[0].lifecycle,
        lustre_sandbox::aws::state::TaskLifecycle::Succeeded
    );
    let imported: Vec<(String, Option<bool>)> = seed
        .status
        .as_ref()
        .map(|s| {
            s.data_repositories
                .iter()
                .map(|d| (d.name.clone(), d.imported))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        imported,
        [
            ("datasets".to_string(), Some(true)),
            ("results".to_string(), None)
        ]
    );
    let associations = w.sim.snapshot()["dataRepositoryAssociations"].clone();
    assert!(
        associations
            .as_array()
            .into_iter()
            .flatten()
            .all(|a| a["batchImportMetaDataOnCreate"] == false),
        "the operator runs the import itself: {associations:#}"
    );
    // Ready: another look costs no task describe.
    let describes = w.sim.calls("DescribeDataRepositoryTasks");
    let reconciles = || ctx.metrics.reconciles.with_label_values(&["ok"]).get();
    let before = reconciles();
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .patch(
            "seed",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"look": "again"}}})),
        )
        .await
        .expect("label");
    let start = Instant::now();
    while reconciles() == before {
        assert!(start.elapsed() < Duration::from_secs(10), "no reconcile");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.sim.calls("DescribeDataRepositoryTasks"), describes);

    // A failed import stops with FSx's words; the retry annotation imports again.
    w.sim.set_timing(quick);
    w.sim
        .fail_next_task("Access Denied reading s3://ml-datasets/broken/");
    create(&w.client, "broken", spec("broken")).await;
    let failed = wait_for_reason(&w.client, "broken", "ImportFailed").await;
    let message = condition(&failed, "Ready").map(|c| c.2).unwrap_or_default();
    for words in ["Access Denied", "workspaces.lustre.dev/retry-import"] {
        assert!(message.contains(words), "{words}: {message}");
    }
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Failed)
    );
    Api::<LustreWorkspace>::namespaced(w.client.clone(), "ml")
        .patch(
            "broken",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"workspaces.lustre.dev/retry-import": "1"}}}),
            ),
        )
        .await
        .expect("retry");
    wait_for(&w.client, "broken", "Ready", Duration::from_secs(30), ready).await;
    assert_eq!(w.sim.calls("CreateDataRepositoryTask"), 3);
}

/// The class's namespace limits: ten workspaces applied at once with room for three →
/// exactly the first three (by creation, then name) are made; the seven others say
/// OverBudget, have no finalizer and cost no AWS call; deleting one lets the next go ahead
/// by itself; a growth past the capacity limit is refused and the file system kept.
#[tokio::test]
async fn a_namespace_budget_admits_exactly_the_first_workspaces_and_the_next_when_one_goes() {
    let w = world().await;
    apply_class(
        &w.client,
        json!({"namespaceLimits": {"maxWorkspaces": 3, "maxStorageCapacityGiB": 3600}}),
    )
    .await;
    let (_ctx, _task, _stop) = start_operator(&w);
    for n in 0..10 {
        create(
            &w.client,
            &format!("ws-{n}"),
            json!({"storageCapacityGiB": 1200}),
        )
        .await;
    }
    for n in 0..3 {
        wait_for(
            &w.client,
            &format!("ws-{n}"),
            "Ready",
            Duration::from_secs(30),
            ready,
        )
        .await;
    }
    let api: Api<LustreWorkspace> = Api::namespaced(w.client.clone(), "ml");
    for n in 3..10 {
        let held = wait_for_reason(&w.client, &format!("ws-{n}"), "OverBudget").await;
        let message = condition(&held, "Ready").map(|c| c.2).unwrap_or_default();
        assert!(
            message.contains("namespace ml may have 3 workspace(s) of class standard"),
            "{message}"
        );
        assert_eq!(
            held.status.as_ref().and_then(|s| s.phase),
            Some(Phase::Pending)
        );
        assert!(held.metadata.finalizers.is_none_or(|f| f.is_empty()));
    }
    assert_eq!(
        (
            w.sim.calls("CreateSecurityGroup"),
            w.sim.calls("CreateFileSystem")
        ),
        (3, 3),
        "the seven waiting cost no AWS call"
    );

    // One goes: the oldest waiting one goes ahead by itself, and only it.
    api.delete("ws-1", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(&w.client, "ws-3", "Ready", Duration::from_secs(30), ready).await;
    gone(&w.client, "ws-1").await;
    for n in 4..10 {
        let still = api.get(&format!("ws-{n}")).await.expect("get");
        assert_eq!(reason(&still), "OverBudget", "ws-{n}");
    }
    assert_eq!(w.sim.calls("CreateFileSystem"), 4);

    // Growing past the namespace's 3600 GiB: refused, the file system kept at its size.
    api.patch(
        "ws-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"storageCapacityGiB": 2400}})),
    )
    .await
    .expect("grow");
    let refused = wait_for_reason(&w.client, "ws-0", "OverBudget").await;
    let message = condition(&refused, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(
        message.contains("growing: it keeps its current size"),
        "{message}"
    );
    assert_eq!(w.sim.calls("UpdateFileSystem"), 0);
    assert_eq!(
        refused.status.as_ref().and_then(|s| s.storage_capacity_gib),
        Some(1200)
    );

    // The platform team gives this namespace more room with its own limits (a Namespace
    // annotation): the next waiting one goes ahead and the growth goes through, by themselves.
    Api::<Namespace>::all(w.client.clone())
        .patch(
            "ml",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "limits.workspaces.lustre.dev/standard": "{\"maxWorkspaces\": 4, \"maxStorageCapacityGiB\": 6000}"
            }}})),
        )
        .await
        .expect("namespace limits");
    wait_for(&w.client, "ws-4", "Ready", Duration::from_secs(30), ready).await;
    wait_for(&w.client, "ws-0", "grown", Duration::from_secs(30), |ws| {
        ready(ws) && ws.status.as_ref().and_then(|s| s.storage_capacity_gib) == Some(2400)
    })
    .await;
    let still = api.get("ws-5").await.expect("get");
    assert_eq!(reason(&still), "OverBudget");
}
