//! The fault suite: the same workload (20 workspaces created, Ready, deleted) once on a calm
//! world and once with 30 % of AWS calls throttled, 10 % answered 5xx, some slowed down, every
//! 5th write to the Kubernetes API refused with 409 Conflict, watches cut every 2 s and the
//! API server's history compacted (so resumed watches get 410 Gone and re-list). Every
//! workspace must still reach Ready and delete cleanly, with AWS calls within 3x the calm
//! run (no hot loop), and the metrics must show the failures by category; it prints the calls
//! by operation. The operator runs with its default back-off (2 s doubling, capped at 300 s,
//! started over by a step that changed AWS). A workspace still waiting after 240 s counts as
//! stuck, and the suite prints its status and the operator's log lines about it; a claim or
//! volume left behind is printed with the log lines naming it.

mod real_cluster;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lustre_sandbox::aws::faults::{FaultKind, FaultRule};
use support::*;

const N: usize = 20;
/// Past this a workspace is stuck. Deletions took up to 211 s here while the deletions a
/// relist missed woke nothing (a workspace waited for its volume's re-check); since, the last
/// deletion was done after 15.8-67.6 s in eight runs (docs/reliability.md).
const LIMIT: Duration = Duration::from_secs(240);
/// A workspace this slow under faults has its log lines printed even when the suite passes.
const SLOW: Duration = Duration::from_secs(60);

struct Run {
    /// The AWS calls of the workload by operation.
    by_operation: BTreeMap<String, u64>,
    to_ready: Duration,
    to_gone: Duration,
    /// The workspace that took longest to reach Ready, how long, and the operator's log lines
    /// about it; the same for the last one to go.
    slowest_ready: Slowest,
    slowest_gone: Slowest,
    metrics: String,
    conflicts: u64,
}

impl Run {
    fn aws_calls(&self) -> u64 {
        self.by_operation.values().sum()
    }
}

struct Slowest {
    name: String,
    after: Duration,
    log: String,
}

fn manifest() -> String {
    (0..N)
        .map(|i| {
            let spec = if i % 2 == 0 {
                "deploymentType: SCRATCH_2\nstorageCapacityGiB: 1200".to_string()
            } else {
                format!("deploymentType: PERSISTENT_2\nstorageCapacityGiB: 1200\nperUnitStorageThroughput: 125\ndataRepositories:\n- {{name: d, s3Path: 's3://ml-datasets/w{i}/', fileSystemPath: /d}}")
            };
            workspace(&format!("w{i:02}"), &spec)
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn ready(w: &serde_json::Value) -> bool {
    w["status"]["phase"] == "Ready"
        && w["status"]["observedGeneration"] == w["metadata"]["generation"]
}

/// Every operator's log.
fn operator_logs(e: &E2e) -> String {
    e.operators
        .iter()
        .filter_map(|op| std::fs::read_to_string(&op.log).ok())
        .collect()
}

/// The last `n` lines of `log` about workspace `name`: they name it as
/// `workspace.name="w03"` or in `…/w03.ml` (the object ref).
fn about(log: &str, name: &str, n: usize) -> String {
    let (field, reference) = (format!("workspace.name=\"{name}\""), format!("/{name}.ml"));
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&field) || l.contains(&reference))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n  ")
}

/// The workspaces not Ready (or not gone), with their phase, conditions, finalizers and the
/// operator's last log lines about them.
fn stuck(e: &E2e) -> String {
    let log = operator_logs(e);
    e.sandbox()
        .store()
        .list_kind("workspaces.lustre.dev", "lustreworkspaces", "ml")
        .iter()
        .filter(|w| {
            w["status"]["phase"] != "Ready" || !w["metadata"]["deletionTimestamp"].is_null()
        })
        .map(|w| {
            let name = w["metadata"]["name"].as_str().unwrap_or_default();
            format!(
                "{name}: phase {} deleting {} finalizers {} conditions {}\n  {}",
                w["status"]["phase"],
                !w["metadata"]["deletionTimestamp"].is_null(),
                w["metadata"]["finalizers"],
                w["status"]["conditions"],
                about(&log, name, 15)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The operator's log lines naming any of these objects.
fn mentions(e: &E2e, objects: &[serde_json::Value]) -> String {
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    operator_logs(e)
        .lines()
        .filter(|l| names.iter().any(|n| l.contains(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names of the workspaces in `ml` that `pick` selects.
fn names(e: &E2e, pick: impl Fn(&serde_json::Value) -> bool) -> Vec<String> {
    e.sandbox()
        .store()
        .list_kind("workspaces.lustre.dev", "lustreworkspaces", "ml")
        .iter()
        .filter(|w| pick(w))
        .filter_map(|w| w["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Notes when each workspace first met a condition: `times` gains the names `now` holds.
fn note(times: &mut BTreeMap<String, Duration>, now: Vec<String>, start: Instant) {
    for name in now {
        times.entry(name).or_insert_with(|| start.elapsed());
    }
}

/// The workspace noted last, with the operator's log lines about it.
fn slowest(e: &E2e, times: &BTreeMap<String, Duration>) -> Slowest {
    let (name, after) = times
        .iter()
        .max_by_key(|(_, t)| **t)
        .map(|(n, t)| (n.clone(), *t))
        .unwrap_or_default();
    let log = about(&operator_logs(e), &name, 40);
    Slowest { name, after, log }
}

async fn workload(faulty: bool) -> Run {
    let mut e = E2e::start(quick()).await;
    // Two attempts per AWS call: most faults reach the reconciler (its back-off, its
    // metrics) instead of being absorbed by the SDK's retries.
    e.kill(0).await;
    let op = e.spawn_operator_env(
        &["--aws-max-attempts", "2"],
        &[("RUST_LOG", "info,lustre_controller=debug")],
    );
    let addr = e.metrics_addr(op).await; // past the start-up check
    let before = e.sim.call_counts();
    let stop = tokio_util_stop();
    if faulty {
        let rule = |operation: &str, kind: FaultKind, rate: f64| FaultRule {
            operation: operation.into(),
            kind,
            rate,
            limit: None,
            injected: 0,
        };
        e.sim.set_faults(
            7,
            vec![
                rule("*", FaultKind::Throttle, 0.3),
                rule("*", FaultKind::ServerError, 0.1),
                rule("fsx:*", FaultKind::Delay { ms: 150 }, 0.2),
            ],
        );
        {
            let mut store = e.sandbox().store();
            store.faults.conflict_one_in = 5;
            store.faults.watch_lifetime = Some(Duration::from_secs(2));
        }
        // The API server forgets old history now and then: a watch resumed from before it
        // gets 410 Gone and must re-list.
        let kube = e.sandbox().clone();
        let mut stopped = stop.1.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(1500)) => kube.store().compact(),
                    _ = stopped.changed() => return,
                }
            }
        });
    }

    let start = Instant::now();
    e.apply(&manifest()).await;
    let mut readied = BTreeMap::new();
    loop {
        note(&mut readied, names(&e, ready), start);
        if readied.len() == N {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{} of {N} Ready (faulty: {faulty})\n{}\n{}",
            readied.len(),
            stuck(&e),
            e.operator_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let to_ready = start.elapsed();

    let start = Instant::now();
    let all = names(&e, |_| true);
    e.ok(&["delete", "lws", "--all", "-n", "ml", "--wait=false"])
        .await;
    let mut gone = BTreeMap::new();
    loop {
        let present = names(&e, |_| true);
        let absent = all.iter().filter(|n| !present.contains(n)).cloned();
        note(&mut gone, absent.collect(), start);
        let s = e.sim.snapshot();
        if present.is_empty() && count(&s, "fileSystems") == 0 && count(&s, "securityGroups") == 1 {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{} workspaces left (faulty: {faulty}); AWS {s:#}\n{}\n{}",
            present.len(),
            stuck(&e),
            e.operator_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let to_gone = start.elapsed();
    let s = e.sim.snapshot();
    assert_eq!(count(&s, "dataRepositoryAssociations"), 0);
    let mut left = e.listed("api/v1", "persistentvolumes").await;
    left.extend(e.listed("api/v1", "persistentvolumeclaims").await);
    assert!(
        left.is_empty(),
        "orphaned volumes or claims: {}\n{}",
        serde_json::to_string_pretty(&left).unwrap_or_default(),
        mentions(&e, &left)
    );
    let _ = stop.0.send(true);
    let metrics = http_get(&addr, "/metrics").await.1;
    let conflicts = e.sandbox().store().faults.conflicts;
    let earlier = |op: &String| before.get(op).copied().unwrap_or(0);
    Run {
        by_operation: e
            .sim
            .call_counts()
            .into_iter()
            .map(|(op, n)| (op.clone(), n - earlier(&op)))
            .collect(),
        to_ready,
        to_gone,
        slowest_ready: slowest(&e, &readied),
        slowest_gone: slowest(&e, &gone),
        metrics,
        conflicts,
    }
}

fn tokio_util_stop() -> (
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<bool>,
) {
    tokio::sync::watch::channel(false)
}

/// The sum of a counter's series whose labels contain `label`.
fn sum(metrics: &str, name: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workspace_reaches_ready_and_deletes_cleanly_under_faults() {
    let calm = workload(false).await;
    let faulty = workload(true).await;
    let aws = "lustre_operator_aws_requests_total";
    let throttled = sum(&faulty.metrics, aws, "outcome=\"throttled\"");
    let transient = sum(&faulty.metrics, aws, "outcome=\"transient\"");
    let ratio = faulty.aws_calls() as f64 / calm.aws_calls() as f64;
    println!(
        "faults: {N}/{N} Ready and deleted under 30 % throttling, 10 % 5xx, slow FSx, 1 in 5 API writes refused ({} conflicts), watches cut every 2 s, history compacted",
        faulty.conflicts
    );
    println!(
        "faults: AWS calls {} vs {} calm ({ratio:.2}x); Ready after {:?} vs {:?}; AWS empty after {:?} vs {:?}; metrics: {throttled} throttled, {transient} transient AWS calls seen by the operator",
        faulty.aws_calls(),
        calm.aws_calls(),
        faulty.to_ready,
        calm.to_ready,
        faulty.to_gone,
        calm.to_gone
    );
    // Where the calls went: a hot loop shows as one operation far above its calm count.
    let by_operation: Vec<String> = faulty
        .by_operation
        .iter()
        .map(|(op, n)| format!("{op} {}->{n}", calm.by_operation.get(op).unwrap_or(&0)))
        .collect();
    let rounds = "lustre_operator_poll_round_seconds_count";
    println!(
        "faults: calls by operation, calm->faults: {}; poll rounds {}->{}",
        by_operation.join(", "),
        sum(&calm.metrics, rounds, ""),
        sum(&faulty.metrics, rounds, "")
    );
    // The tail: which workspace was last, and what the operator said of it when it was slow.
    for (what, w) in [
        ("Ready", &faulty.slowest_ready),
        ("gone", &faulty.slowest_gone),
    ] {
        println!("faults: last {what}: {} after {:?}", w.name, w.after);
        if w.after > SLOW {
            println!("  {}", w.log);
        }
    }
    assert!(
        ratio <= 3.0,
        "a hot loop? {ratio:.2}x the calm run's AWS calls"
    );
    assert!(throttled > 0 && transient > 0, "{}", faulty.metrics);
    assert!(faulty.conflicts > 0);
}
