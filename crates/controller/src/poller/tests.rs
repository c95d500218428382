//! The poller's tests: rounds, wakes, regions, the cache.

use super::*;
use lustre_cloud::FileSystemRequest;
use lustre_cloud::FileSystems;
use lustre_cloud::memory::{MemoryCloud, aws_error};

fn follower(cloud: &Arc<MemoryCloud>, name: &str, uid: &str, region: &str) -> Follower {
    let mut workspace = ObjectRef::new(name).within("ml");
    workspace.extra.uid = Some(uid.to_string());
    Follower {
        workspace,
        region: Some(region.to_string()),
        cloud: cloud.clone(),
        links: true,
    }
}

/// A file system (CREATING) in the in-memory account.
async fn file_system(cloud: &MemoryCloud, token: &str) -> FileSystem {
    let request = FileSystemRequest::scratch(token, "subnet-1", Default::default());
    cloud.create_file_system(&request).await.expect("create")
}

fn drain(rx: &mut mpsc::UnboundedReceiver<ObjectRef<LustreWorkspace>>) -> Vec<String> {
    let mut woken = Vec::new();
    while let Ok(r) = rx.try_recv() {
        woken.push(r.name);
    }
    woken.sort();
    woken
}

/// A drift check is due every drift interval from the start of the previous one, however
/// long a round takes and whatever the pending interval (once, rounds were measured from
/// their end and a 60 s check slipped to the next 15 s tick: 75 s).
#[tokio::test(start_paused = true)]
async fn drift_checks_keep_their_own_deadline() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    cloud.set_latency("DescribeFileSystems", Duration::from_millis(500));
    let (poller, _wake) = Poller::new();
    poller.settle("fs-1", follower(&cloud, "w", "uid-w", "us-east-1"));
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(poller.clone().run(
        PollIntervals {
            pending: Duration::from_secs(15),
            drift: Duration::from_secs(60),
        },
        |_| {},
    ));
    tokio::time::sleep(Duration::from_secs(185)).await;
    task.abort();
    let at: Vec<f64> = cloud
        .called_at("DescribeFileSystems")
        .iter()
        .map(|t| (*t - start).as_secs_f64())
        .collect();
    assert_eq!(at, vec![0.0, 60.0, 120.0, 180.0]);
}

/// Two workspaces naming one file system (one of them refused its adoption) are both
/// followed: the second does not replace the first, and a change wakes both.
#[tokio::test]
async fn every_workspace_following_a_file_system_is_woken() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let fs = file_system(&cloud, "t-1").await;
    let (poller, mut wake) = Poller::new();
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    poller.watch(&fs.id, follower(&cloud, "b", "uid-b", "us-east-1"));
    assert_eq!(poller.pending(), 1, "one file system, described once");
    assert_eq!(poller.poll_once(false).await, 2);
    assert_eq!(drain(&mut wake), ["a", "b"]);
    // Only one of the woken reconciles watches it again: a change still wakes both.
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    assert_eq!(poller.poll_once(false).await, 0, "nothing changed");
    cloud.advance();
    assert_eq!(poller.poll_once(false).await, 2);
    assert_eq!(cloud.calls()["DescribeFileSystems"], 3);
    poller.watch(&fs.id, follower(&cloud, "b", "uid-b", "us-east-1"));
    // One stops following: the other still is.
    poller.forget(
        &fs.id,
        &follower(&cloud, "a", "uid-a", "us-east-1").workspace,
    );
    drain(&mut wake);
    cloud.set_lifecycle(&fs.id, Lifecycle::Failed, "broken");
    assert_eq!(poller.poll_once(false).await, 1);
    assert_eq!(drain(&mut wake), ["b"]);
}

/// A wake hands the file system to the reconcile it wakes: until that reconcile watches it
/// again (AWS still moving it), it is described only in drift rounds, so a workspace whose
/// reconcile fails and backs off is not described every pending interval meanwhile.
#[tokio::test]
async fn a_woken_workspaces_file_system_waits_for_its_reconcile() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let fs = file_system(&cloud, "t-1").await;
    let (poller, mut wake) = Poller::new();
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    assert_eq!(poller.poll_once(false).await, 1, "first seen: a change");
    assert_eq!(drain(&mut wake), ["a"]);
    assert_eq!(poller.pending(), 0);
    cloud.advance();
    for _ in 0..3 {
        assert_eq!(poller.poll_once(false).await, 0, "not due until watched");
    }
    assert_eq!(cloud.calls()["DescribeFileSystems"], 1);
    assert_eq!(poller.poll_once(true).await, 1, "a drift round sees it");
    assert_eq!(drain(&mut wake), ["a"]);
    // The reconcile finds it still moving and watches it again.
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    assert_eq!(poller.pending(), 1);
    assert_eq!(poller.poll_once(false).await, 0, "nothing changed");
    assert_eq!(cloud.calls()["DescribeFileSystems"], 3);
}

/// A round's wake is stamped once per workspace until its reconcile begins (the queue's wait
/// in `lustre_operator_wake_wait_seconds`); a second wake before then keeps the first stamp,
/// and a workspace no longer followed leaves no stamp behind.
#[tokio::test]
async fn a_wake_is_stamped_until_the_reconcile_takes_it() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let fs = file_system(&cloud, "t-1").await;
    let (poller, mut wake) = Poller::new();
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    poller.watch(&fs.id, follower(&cloud, "b", "uid-b", "us-east-1"));
    assert_eq!(poller.wake_taken("uid-a"), None, "not woken yet");
    assert_eq!(poller.poll_once(false).await, 2);
    let first = poller.wake_taken("uid-a").expect("woken by the round");
    assert_eq!(poller.wake_taken("uid-a"), None, "taken once");
    std::thread::sleep(Duration::from_millis(20));
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    cloud.advance();
    assert_eq!(poller.poll_once(false).await, 2);
    let later = poller
        .wake_taken("uid-b")
        .expect("still stamped from the first round");
    assert!(
        later >= first + Duration::from_millis(20),
        "{later:?} vs {first:?}"
    );
    poller.forget(
        &fs.id,
        &follower(&cloud, "a", "uid-a", "us-east-1").workspace,
    );
    assert_eq!(poller.wake_taken("uid-a"), None, "forgotten");
    drain(&mut wake);
}

/// Each region's file systems are described by that region's cloud, in one call.
#[tokio::test]
async fn rounds_are_grouped_by_region() {
    let east = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let west = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-2"));
    let (poller, _wake) = Poller::new();
    for (i, cloud, region) in [
        (1, &east, "us-east-1"),
        (2, &east, "us-east-1"),
        (3, &west, "us-west-2"),
    ] {
        let fs = file_system(cloud, &format!("t-{i}")).await;
        poller.watch(
            &fs.id,
            follower(cloud, &format!("w{i}"), &format!("u{i}"), region),
        );
    }
    poller.poll_once(false).await;
    assert_eq!(east.calls()["DescribeFileSystems"], 1);
    assert_eq!(west.calls()["DescribeFileSystems"], 1);
}

/// A failed association describe still lets the file systems' news through (once, a
/// group's updates were all dropped with it); the associations follow next round.
#[tokio::test]
async fn file_systems_are_updated_when_their_associations_cannot_be_described() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let fs = file_system(&cloud, "t-1").await;
    cloud.advance();
    let (poller, mut wake) = Poller::new();
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    poller.poll_once(false).await;
    drain(&mut wake);
    poller.watch(&fs.id, follower(&cloud, "a", "uid-a", "us-east-1"));
    cloud.set_lifecycle(&fs.id, Lifecycle::Failed, "broken");
    let throttled = aws_error(
        "DescribeDataRepositoryAssociations",
        "ThrottlingException",
        "slow down",
    );
    cloud.fail_next("DescribeDataRepositoryAssociations", throttled);
    assert_eq!(poller.poll_once(false).await, 1);
    assert_eq!(drain(&mut wake), ["a"]);
    let seen = poller
        .cached(&fs.id)
        .and_then(|o| o.file_system)
        .expect("cached");
    assert_eq!(seen.lifecycle, Lifecycle::Failed);
}

/// The cache keeps each file system's observation whole (tags, settings) with its own
/// associations only, read back as it was described.
#[tokio::test]
async fn each_file_system_is_cached_whole_with_its_own_associations() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let (poller, _wake) = Poller::new();
    let mut ids = Vec::new();
    for i in 1..=2 {
        let fs = file_system(&cloud, &format!("t-{i}")).await;
        cloud.advance();
        for path in ["/a", "/b"] {
            let request = lustre_cloud::DataRepositoryRequest {
                client_token: format!("dra-{i}{path}"),
                file_system_id: fs.id.clone(),
                file_system_path: path.into(),
                data_repository_path: format!("s3://bucket-{i}{path}/"),
                auto_import: vec![],
                auto_export: vec![],
                batch_import_meta_data_on_create: false,
                imported_file_chunk_size_mib: None,
                tags: [("k".to_string(), format!("v{i}"))].into(),
            };
            cloud
                .create_data_repository_association(&request)
                .await
                .expect("association");
        }
        poller.watch(
            &fs.id,
            follower(&cloud, &format!("w{i}"), &format!("u{i}"), "r"),
        );
        ids.push(fs.id);
    }
    poller.poll_once(false).await;
    for id in &ids {
        let seen = poller.cached(id).expect("cached");
        let described = cloud
            .describe_file_systems(std::slice::from_ref(id))
            .await
            .expect("describe");
        assert_eq!(seen.file_system.as_ref(), described.first());
        let paths: Vec<_> = seen
            .associations
            .iter()
            .map(|a| (a.file_system_id.as_str(), a.file_system_path.as_str()))
            .collect();
        assert_eq!(paths, [(id.as_str(), "/a"), (id.as_str(), "/b")]);
    }
}

/// A file system no workspace links to S3 wakes its workspaces as its page of the answer
/// arrives, not at the round's end (a round over thousands of file systems takes seconds on a
/// busy machine); a linked one waits for the round's associations; none wakes twice.
#[tokio::test(start_paused = true)]
async fn a_page_wakes_its_workspaces_before_the_round_ends() {
    let cloud = Arc::new(MemoryCloud::with_subnet("subnet-1", "vpc-1"));
    let a = file_system(&cloud, "t-a").await;
    let b = file_system(&cloud, "t-b").await;
    let c = file_system(&cloud, "t-c").await;
    cloud.set_latency("DescribeFileSystems", Duration::from_secs(1));
    cloud.set_page_size(1);
    let (poller, mut wake) = Poller::new();
    let unlinked = |name: &str, uid: &str| Follower {
        links: false,
        ..follower(&cloud, name, uid, "us-east-1")
    };
    poller.watch(&a.id, unlinked("a", "uid-a"));
    poller.watch(&b.id, unlinked("b1", "uid-b1"));
    poller.watch(&b.id, unlinked("b2", "uid-b2"));
    poller.watch(&c.id, follower(&cloud, "c", "uid-c", "us-east-1"));
    let round = tokio::spawn({
        let poller = poller.clone();
        async move { poller.poll_once(false).await }
    });
    // One page a second, in the order of the ids: a, b, c, then an empty last page.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(drain(&mut wake), ["a"]);
    assert!(poller.cached(&a.id).is_some(), "cached as it was woken");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(drain(&mut wake), ["b1", "b2"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        drain(&mut wake),
        Vec::<String>::new(),
        "c waits for the round"
    );
    assert_eq!(round.await.expect("round"), 4);
    assert_eq!(drain(&mut wake), ["c"]);
    assert_eq!(cloud.calls()["DescribeFileSystems"], 4);
    // The next round (drift included: each is at drift pace after its wake) sees no change.
    assert_eq!(poller.poll_once(true).await, 0);
    assert_eq!(drain(&mut wake), Vec::<String>::new());
    // Gone from the answer is gone, early or not; the others change and wake again.
    cloud.set_lifecycle(&a.id, Lifecycle::Deleting, "");
    cloud.advance();
    assert_eq!(poller.poll_once(true).await, 4);
    assert_eq!(drain(&mut wake), ["a", "b1", "b2", "c"]);
    assert!(poller.cached(&a.id).is_none_or(|o| o.file_system.is_none()));
}
