//! User stories of the FSx for Lustre settings beyond size: metadata IOPS, and the root squash
//! and logging a platform team sets on every file system of a class.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The one file system in the simulated AWS.
fn only_file_system(state: &Value) -> &Value {
    &state["fileSystems"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_rails_follow_the_class_and_metadata_iops_are_raised_once_per_six_hours() {
    let e = E2e::start(quick()).await;
    e.patch_class(
        r#"{"spec":{"maxMetadataIops":48000,
            "rootSquash":{"uidGid":"65534:65534","noSquashNids":["10.0.1.6@tcp"]},
            "logging":{"level":"WARN_ERROR"}}}"#,
    )
    .await;
    let spec =
        "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125";
    e.apply(&workspace("meta", spec)).await;
    e.wait_for("condition=Ready", "lws/meta").await;

    // Created with AUTOMATIC metadata and the class's guard rails, as AWS describes it.
    let state = e.sim.snapshot();
    let fs = only_file_system(&state);
    assert_eq!(
        fs["metadataConfiguration"],
        serde_json::json!({"Mode": "AUTOMATIC", "Iops": 1500}),
        "{fs:#}"
    );
    assert_eq!(
        fs["rootSquashConfiguration"],
        serde_json::json!({"RootSquash": "65534:65534", "NoSquashNids": ["10.0.1.6@tcp"]})
    );
    assert_eq!(fs["logConfiguration"]["Level"], "WARN_ERROR");
    assert_eq!(
        fs["logConfiguration"]["Destination"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/fsx/lustre"
    );
    assert_eq!(
        e.jsonpath("lws/meta", "{.status.metadataIops}").await,
        "1500"
    );
    assert_eq!(e.sim.calls("UpdateFileSystem"), 0);

    // Above the class's cap: refused by the operator, nothing sent.
    let asking = |iops: i32| format!("{spec}\nmetadata: {{mode: UserProvisioned, iops: {iops}}}");
    e.apply(&workspace("other", &asking(96000))).await;
    e.wait_for(
        "jsonpath={.status.conditions[0].reason}=InvalidSpec",
        "lws/other",
    )
    .await;
    let message = e
        .jsonpath("lws/other", "{.status.conditions[0].message}")
        .await;
    assert!(message.contains("at most 48000"), "{message}");
    assert_eq!(e.sim.calls("CreateFileSystem"), 1);
    e.ok(&["delete", "lws", "other", "-n", "ml", "--wait", TIMEOUT])
        .await;

    // A raise: in place, visible in status.
    e.apply(&workspace("meta", &asking(12000))).await;
    e.wait_for("jsonpath={.status.metadataIops}=12000", "lws/meta")
        .await;
    e.wait_for("condition=Ready", "lws/meta").await;
    assert_eq!(e.sim.calls("UpdateFileSystem"), 1);
    assert_eq!(
        only_file_system(&e.sim.snapshot())["metadataConfiguration"],
        serde_json::json!({"Mode": "USER_PROVISIONED", "Iops": 12000})
    );

    // The next raise waits for FSx's 6 hours, said in status; the claim stays usable.
    e.apply(&workspace("meta", &asking(24000))).await;
    e.wait_for("jsonpath={.status.observedGeneration}=3", "lws/meta")
        .await;
    let shown = e
        .jsonpath(
            "lws/meta",
            r#"{.status.conditions[?(@.type=="FileSystemReady")].message}"#,
        )
        .await;
    assert!(
        shown.contains("the raise to 24000 metadata IOPS goes in at"),
        "{shown}"
    );
    assert_eq!(e.jsonpath("lws/meta", "{.status.phase}").await, "Ready");
    assert_eq!(
        e.sim.calls("UpdateFileSystem"),
        1,
        "nothing FSx would refuse"
    );

    // The class relaxes root squash and changes the log level: applied to the file system.
    e.patch_class(
        r#"{"spec":{"rootSquash":{"uidGid":"0:0","noSquashNids":null},"logging":{"level":"ERROR_ONLY"}}}"#,
    )
    .await;
    let state = e
        .aws_until(
            "the class's new guard rails",
            Duration::from_secs(20),
            |s| {
                let fs = only_file_system(s);
                fs["rootSquashConfiguration"] == serde_json::json!({"RootSquash": "0:0"})
                    && fs["logConfiguration"]["Level"] == "ERROR_ONLY"
            },
        )
        .await;
    assert_eq!(e.sim.calls("UpdateFileSystem"), 2, "{state:#}");
    e.wait_for("condition=Ready", "lws/meta").await;
    let events = e.events("involvedObject.name=meta").await;
    assert!(events.contains("UpdatingFileSystem"), "{events}");
}

/// The all-traffic rules on the workspace's own security group, as `(peer kind, id)`.
fn all_traffic_peers(state: &Value, group: &str) -> Vec<(String, String)> {
    state["securityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["id"] == group)
        .flat_map(|g| g["ingress"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["protocol"] == "-1")
        .filter_map(|r| {
            let (kind, id) = r["peer"].as_object()?.iter().next()?;
            Some((kind.clone(), id.as_str()?.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn efa_is_refused_by_a_class_that_does_not_allow_it_and_set_up_by_one_that_does() {
    let e = E2e::start(quick()).await;
    let spec = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 2400\nperUnitStorageThroughput: 250\nefa: true";
    e.apply(&workspace("gpu", spec)).await;
    e.wait_for(
        "jsonpath={.status.conditions[0].reason}=InvalidSpec",
        "lws/gpu",
    )
    .await;
    let message = e
        .jsonpath("lws/gpu", "{.status.conditions[0].message}")
        .await;
    assert!(message.contains("does not allow EFA"), "{message}");
    let writes: u64 = ["CreateSecurityGroup", "CreateFileSystem"]
        .iter()
        .map(|op| e.sim.calls(op))
        .sum();
    assert_eq!(writes, 0, "refused before AWS: {:?}", e.sim.call_counts());

    // The platform team allows it: the same workspace goes ahead by itself.
    e.patch_class(r#"{"spec":{"efa":{"allowed":true}}}"#).await;
    e.wait_for("condition=Ready", "lws/gpu").await;
    let state = e.sim.snapshot();
    let group = e.jsonpath("lws/gpu", "{.status.securityGroupId}").await;
    let mut peers = all_traffic_peers(&state, &group);
    peers.sort();
    let mut expected = vec![
        ("cidr".to_string(), "10.0.0.0/16".to_string()),
        ("group".to_string(), "sg-0123456789abcdef0".to_string()),
        ("group".to_string(), group.clone()),
    ];
    expected.sort();
    assert_eq!(
        peers, expected,
        "all traffic from itself and the class's clients"
    );
    let fs = &state["fileSystems"][0];
    assert_eq!(fs["efaEnabled"], true, "{fs:#}");
    assert_eq!(fs["metadataConfiguration"]["Mode"], "AUTOMATIC");

    // EFA stays: kubectl apply of a change is refused with the rule's message.
    let out = e
        .kubectl(
            &["apply", "-f", "-"],
            Some(&workspace("gpu", &spec.replace("efa: true", "efa: false"))),
        )
        .await;
    let refused = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && refused.contains("efa is immutable"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_in_zone_b_lands_in_subnet_b_and_its_pods_stay_there() {
    let e = E2e::start(quick()).await;
    e.patch_class(
        r#"{"spec":{"subnetId":null,"subnetIds":["subnet-0123456789abcdef0","subnet-0fedcba9876543210"]}}"#,
    )
    .await;
    let spec = "deploymentType: SCRATCH_2\nstorageCapacityGiB: 1200";
    e.apply(&workspace(
        "zone-b",
        &format!("{spec}\navailabilityZone: us-east-1b"),
    ))
    .await;
    e.apply(&workspace("first", spec)).await;
    e.wait_for("condition=Ready", "lws/zone-b").await;
    e.wait_for("condition=Ready", "lws/first").await;

    let state = e.sim.snapshot();
    let subnet_of = |name: &str| {
        let id = state["fileSystems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["tags"]["workspaces.lustre.dev/name"] == name)
            .map(|f| f["subnetId"].clone());
        id.unwrap_or_else(|| panic!("no file system of {name}: {state:#}"))
    };
    assert_eq!(subnet_of("zone-b"), "subnet-0fedcba9876543210");
    assert_eq!(subnet_of("first"), "subnet-0123456789abcdef0");
    for (name, zone) in [("zone-b", "us-east-1b"), ("first", "us-east-1a")] {
        assert_eq!(
            e.jsonpath(&format!("lws/{name}"), "{.status.availabilityZone}")
                .await,
            zone
        );
        let pv = e
            .jsonpath(&format!("lws/{name}"), "{.status.volumeName}")
            .await;
        let affinity = e
            .ok(&[
                "get",
                "pv",
                &pv,
                "-o",
                "jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0]}",
            ])
            .await;
        let affinity: Value = serde_json::from_str(&affinity).expect("affinity JSON");
        assert_eq!(
            affinity,
            serde_json::json!({"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}),
            "{name}"
        );
    }
    let wide = e.ok(&["get", "lws", "-n", "ml", "-o", "wide"]).await;
    assert!(
        wide.lines().next().is_some_and(|h| h.contains("ZONE")) && wide.contains("us-east-1b"),
        "{wide}"
    );

    // A zone the class has no subnet in: refused after the subnets are read, nothing made.
    let made = e.sim.calls("CreateFileSystem");
    e.apply(&workspace(
        "zone-c",
        &format!("{spec}\navailabilityZone: us-east-1c"),
    ))
    .await;
    e.wait_for(
        "jsonpath={.status.conditions[0].reason}=InvalidSpec",
        "lws/zone-c",
    )
    .await;
    let message = e
        .jsonpath("lws/zone-c", "{.status.conditions[0].message}")
        .await;
    assert!(
        message.contains("its zones are us-east-1a, us-east-1b"),
        "{message}"
    );
    assert_eq!(e.sim.calls("CreateFileSystem"), made);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intelligent_tiering_workspace_gets_a_bound_claim() {
    let e = E2e::start(quick()).await;
    let spec = "deploymentType: PERSISTENT_2\nstorageType: INTELLIGENT_TIERING\nthroughputCapacity: 4000\nreadCache: {sizingMode: USER_PROVISIONED, sizeGiB: 512}";
    e.apply(&workspace("tiered", spec)).await;
    e.wait_for("condition=Ready", "lws/tiered").await;
    assert_eq!(e.jsonpath("pvc/tiered", "{.status.phase}").await, "Bound");
    assert_eq!(
        e.jsonpath("pvc/tiered", "{.status.capacity.storage}").await,
        "1Gi",
        "elastic storage: a nominal size"
    );
    let state = e.sim.snapshot();
    let fs = &state["fileSystems"][0];
    assert_eq!(fs["storageType"], "INTELLIGENT_TIERING", "{fs:#}");
    assert_eq!(fs["throughputCapacity"], 4000);
    assert_eq!(
        fs["readCache"],
        serde_json::json!({"SizingMode": "USER_PROVISIONED", "SizeGiB": 512})
    );
    assert_eq!(
        fs["metadataConfiguration"],
        serde_json::json!({"Mode": "USER_PROVISIONED", "Iops": 6000})
    );
    let basis = e
        .jsonpath("lws/tiered", "{.status.estimatedMonthlyCost.basis}")
        .await;
    assert!(basis.contains("billed by the data it holds"), "{basis}");

    // More throughput: in place.
    e.apply(&workspace("tiered", &spec.replace("4000", "8000")))
        .await;
    e.aws_until("throughput raised", Duration::from_secs(20), |s| {
        s["fileSystems"][0]["throughputCapacity"] == 8000
    })
    .await;
    e.wait_for("condition=Ready", "lws/tiered").await;

    // S3 links are refused at admission: FSx has none for Intelligent-Tiering.
    let linked = format!(
        "{spec}\ndataRepositories:\n- {{name: data, s3Path: s3://ml-datasets/, fileSystemPath: /data}}"
    );
    let out = e
        .kubectl(&["apply", "-f", "-"], Some(&workspace("tiered-2", &linked)))
        .await;
    let refused = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && refused.contains("cannot be linked to an INTELLIGENT_TIERING"),
        "{refused}"
    );
}

/// `placement: MatchPods`: the claim comes first, unbound, in a WaitForFirstConsumer
/// StorageClass; the test plays the scheduler (neither cluster runs one): it picks a node for
/// the first pod and writes it on the claim, as kube-scheduler does; the file system then goes
/// in that node's zone and its volume binds the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_pods_creates_the_file_system_in_the_first_pods_zone() {
    let e = E2e::start(quick()).await;
    e.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: gpu-b-1\n  labels: {topology.kubernetes.io/zone: us-east-1b}\n")
        .await;
    e.patch_class(
        r#"{"spec":{"subnetId":null,"subnetIds":["subnet-0123456789abcdef0","subnet-0fedcba9876543210"],"placement":"MatchPods"}}"#,
    )
    .await;
    e.apply(&workspace(
        "follows",
        "deploymentType: SCRATCH_2\nstorageCapacityGiB: 1200",
    ))
    .await;
    // The claim comes first (bounded poll: `kubectl wait` refuses an object not there yet).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let claim = loop {
        if let Some(c) = e
            .object("api/v1", "persistentvolumeclaims", "ml", "follows")
            .await
        {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no claim before a pod"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        claim["spec"]["storageClassName"],
        "lustre-standard-first-pod"
    );
    assert!(claim["spec"]["volumeName"].is_null(), "{claim:#}");
    e.wait_for(
        r#"jsonpath={.status.conditions[?(@.type=="FileSystemReady")].reason}=Waiting"#,
        "lws/follows",
    )
    .await;
    let says = e
        .jsonpath(
            "lws/follows",
            r#"{.status.conditions[?(@.type=="FileSystemReady")].message}"#,
        )
        .await;
    assert!(says.contains("waiting for the first pod"), "{says}");
    assert_eq!(
        e.sim.calls("CreateFileSystem"),
        0,
        "nothing made before a pod"
    );
    let binding = e
        .ok(&[
            "get",
            "storageclass",
            "lustre-standard-first-pod",
            "-o",
            "jsonpath={.volumeBindingMode} {.provisioner}",
        ])
        .await;
    assert_eq!(
        binding,
        "WaitForFirstConsumer workspaces.lustre.dev/first-pod"
    );

    // The scheduler's part: a node for the first pod, written on the claim.
    e.ok(&[
        "annotate",
        "pvc",
        "follows",
        "-n",
        "ml",
        "volume.kubernetes.io/selected-node=gpu-b-1",
    ])
    .await;
    e.wait_for("condition=Ready", "lws/follows").await;
    assert_eq!(e.jsonpath("pvc/follows", "{.status.phase}").await, "Bound");
    assert_eq!(
        e.jsonpath("lws/follows", "{.status.availabilityZone}")
            .await,
        "us-east-1b"
    );
    let state = e.sim.snapshot();
    assert_eq!(
        state["fileSystems"][0]["subnetId"], "subnet-0fedcba9876543210",
        "{state:#}"
    );
    let pv = e.jsonpath("lws/follows", "{.status.volumeName}").await;
    let zone = e
        .ok(&[
            "get",
            "pv",
            &pv,
            "-o",
            "jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]} {.spec.storageClassName}",
        ])
        .await;
    assert_eq!(zone, "us-east-1b lustre-standard-first-pod");
}
