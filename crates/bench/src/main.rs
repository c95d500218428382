//! `lustre-bench`: the operator at N workspaces against two polling baselines modelled on the
//! anchors' published behaviour, on the same simulated AWS, in one run.
//!
//! - **ours**: the real `lustre-operator` binary (a separate process) with the real AWS
//!   adapter, against the sandbox API server and the simulated AWS.
//! - **per-object** (ACK fsx-controller, aws-fsx-csi-driver): each pending file system is
//!   described on its own every 30 s; a Ready one is re-read on ACK's 10-hour resync.
//! - **observe-all** (Crossplane): every managed file system, pending or Ready, is described
//!   on its own every 60 s.
//!
//! The baselines are modes of this driver: it issues exactly the calls the model prescribes,
//! through the same AWS adapter, and the simulated AWS counts them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::FileSystems;
use lustre_cloud::aws::{AwsCloud, AwsSettings};
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};
use serde_json::json;

mod cluster;
use cluster::{ApiServer, Cluster};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "lustre-bench",
    about = "The operator at N workspaces against the anchors' polling baselines"
)]
struct Args {
    /// Workspace counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// Namespaces the workspaces are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// How long a simulated file system stays CREATING. Default: 45 s + 20 ms per workspace,
    /// so the operator has created every file system well before the first is AVAILABLE and
    /// the pending window after the last create spans several poll intervals (real FSx takes
    /// 5-10 minutes).
    #[arg(long)]
    create_delay_seconds: Option<f64>,
    /// Random stretch of the simulated delays (0.1 = ±10 %).
    #[arg(long, default_value_t = 0.1)]
    jitter: f64,
    /// The operator's poll interval (its default is 15).
    #[arg(long, default_value_t = 15.0)]
    poll_interval_seconds: f64,
    /// The operator's drift-check interval (its default is 600; shorter here so the hold
    /// period sees drift checks and a drift detection).
    #[arg(long, default_value_t = 60.0)]
    drift_interval_seconds: f64,
    /// How long all workspaces are held Ready while calls are counted.
    #[arg(long, default_value_t = 120.0)]
    hold_seconds: f64,
    /// The lustre-operator binary.
    #[arg(long)]
    operator: PathBuf,
    /// Write the results as markdown here (e.g. docs/benchmarks.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only the operator (e.g. under a profiler given as `--operator`), no baselines and
    /// no report: for finding where its time and memory go.
    #[arg(long)]
    operator_only: bool,
    /// More arguments for `lustre-operator run` (e.g. `--operator-arg=--concurrency=64`).
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// `real`: the operator on the sandbox and then on a real control plane (etcd,
    /// kube-apiserver, kube-controller-manager from `scripts/control-plane`, built first),
    /// compared in one table with the control plane's CPU and memory; no polling baselines
    /// (they make no Kubernetes call). Its section of `--out` is replaced, the rest kept.
    #[arg(long, value_enum, default_value = "sandbox")]
    cluster: Cluster,
}

/// The markers around the `--cluster real` section of the report.
const REAL_BEGIN: &str = "<!-- begin: scripts/bench --cluster real -->";
const REAL_END: &str = "<!-- end: scripts/bench --cluster real -->";

/// One mode's figures at one size.
#[derive(Debug, Default, Clone)]
struct Figures {
    /// Describe calls per pending workspace per minute, in the window after the last create
    /// while every file system is still CREATING.
    pending_calls_per_ws_min: f64,
    pending_window_s: f64,
    /// AWS calls per Ready workspace per hour during the hold.
    ready_calls_per_ws_hour: f64,
    last_create_to_all_ready_s: f64,
    /// From the moment the last file system became AVAILABLE to all Ready (ours) or all
    /// known AVAILABLE (baselines).
    last_available_to_all_ready_s: f64,
    /// AVAILABLE → PVC Bound (ours) or → noticed (baselines), milliseconds.
    available_to_ready_p50_ms: f64,
    available_to_ready_p99_ms: f64,
    /// First DescribeFileSystems answer showing AVAILABLE → PVC Bound (ours), milliseconds.
    seen_to_bound_ms: Option<(f64, f64)>,
    last_delete_to_empty_s: f64,
    total_aws_calls: u64,
    /// Kubernetes API writes by the operator per workspace (all, and without Events).
    writes_per_ws: Option<(f64, f64)>,
    /// The same writes by verb and resource (per workspace), to see where they go.
    writes_by_kind: BTreeMap<String, f64>,
    drift_detected_s: Option<f64>,
    rss_mib: Option<f64>,
    cpu_s: Option<f64>,
    /// CPU of this process (sandbox API server, simulated AWS, driver) during the run.
    world_cpu_s: Option<f64>,
    /// The real control plane's processes: name, peak RSS (MiB), CPU during the run (s).
    control_plane: Vec<(String, Option<f64>, Option<f64>)>,
}

/// A workspace's phase as its status spells it.
fn phase_of(w: &LustreWorkspace) -> Option<String> {
    let phase = w.status.as_ref()?.phase.as_ref()?;
    serde_json::to_value(phase)
        .ok()?
        .as_str()
        .map(str::to_string)
}

/// The CREATING delay at `n` workspaces.
fn create_delay(args: &Args, n: usize) -> f64 {
    args.create_delay_seconds.unwrap_or(45.0 + 0.02 * n as f64)
}

fn timing(args: &Args, n: usize) -> Timing {
    Timing {
        create_ms: (create_delay(args, n) * 1000.0) as u64,
        update_ms: 2000,
        delete_ms: 5000,
        association_create_ms: 1000,
        association_delete_ms: 1000,
        jitter: args.jitter,
    }
}

async fn serve_sim(args: &Args, n: usize) -> anyhow::Result<(SimAws, String)> {
    let sim = SimAws::new(SimConfig {
        timing: timing(args, n),
        ..SimConfig::default()
    });
    let (addr, _) = sim
        .serve("127.0.0.1:0".parse()?, std::future::pending())
        .await?;
    Ok((sim, format!("http://{addr}")))
}

fn describes(sim: &SimAws) -> u64 {
    sim.calls("DescribeFileSystems") + sim.calls("DescribeDataRepositoryAssociations")
}

fn total(sim: &SimAws) -> u64 {
    sim.snapshot()["totalCalls"].as_u64().unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Waits (polling `f` every 200 ms) up to `limit`.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while !f() {
        anyhow::ensure!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The pending window: from just after the last create until the first file system is
/// AVAILABLE. Returns (describe calls in it, its length).
async fn pending_window(sim: &SimAws) -> anyhow::Result<(u64, f64)> {
    let start = Instant::now();
    let before = describes(sim);
    until(
        "the first AVAILABLE file system",
        Duration::from_secs(3600),
        || !sim.available_times().is_empty(),
    )
    .await?;
    let first = sim
        .available_times()
        .values()
        .min()
        .copied()
        .unwrap_or_else(Instant::now);
    let window = first.saturating_duration_since(start).as_secs_f64();
    Ok((describes(sim) - before, window))
}

fn proc_usage(pid: u32) -> (Option<f64>, Option<f64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    let cpu = match (fields.get(11), fields.get(12)) {
        (Some(u), Some(s)) => match (u.parse::<f64>(), s.parse::<f64>()) {
            (Ok(u), Ok(s)) => Some((u + s) / ticks),
            _ => None,
        },
        _ => None,
    };
    (rss, cpu)
}

/// Runs `op(namespace, name)` for every workspace, 32 at a time (as a client applying many
/// manifests would); the first error fails the run.
async fn for_each_workspace<F, Fut>(names: &[(String, String)], op: F) -> anyhow::Result<()>
where
    F: Fn(String, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(names.iter().cloned())
        .map(|(ns, name)| op(ns, name))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn ours(args: &Args, n: usize, cluster: Cluster) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let world_cpu_before = proc_usage(std::process::id()).1;
    let dir = std::env::temp_dir().join(format!(
        "lustre-bench-{}-{}",
        std::process::id(),
        cluster.name().replace(' ', "-")
    ));
    std::fs::create_dir_all(&dir)?;
    let server = ApiServer::start(
        cluster,
        SimConfig {
            timing: timing(args, n),
            ..SimConfig::default()
        },
        &dir,
    )
    .await?;
    let (sim, client, aws_url) = (
        server.sim.clone(),
        server.client.clone(),
        server.aws_url.clone(),
    );
    for crd in lustre_api::crd::crds() {
        Api::<CustomResourceDefinition>::all(client.clone())
            .create(&PostParams::default(), &crd)
            .await?;
    }
    // kube-apiserver serves a new CRD's kind a moment after accepting it.
    let classes = Api::<LustreWorkspaceClass>::all(client.clone());
    let start = Instant::now();
    while classes.list(&ListParams::default().limit(1)).await.is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the CRDs were not served within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let namespaces: Vec<String> = (0..args.namespaces)
        .map(|i| format!("team-{i:02}"))
        .collect();
    for ns in &namespaces {
        let obj: Namespace = serde_json::from_value(
            json!({"metadata": {"name": ns, "labels": {"lustre": "enabled"}}}),
        )?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &obj)
            .await?;
    }
    let class: LustreWorkspaceClass = serde_json::from_value(json!({
        "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspaceClass",
        "metadata": {"name": "standard", "annotations": {"workspaces.lustre.dev/is-default-class": "true"}},
        "spec": {"subnetId": "subnet-0123456789abcdef0",
                 "securityGroup": {"managed": false, "additionalSecurityGroupIds": ["sg-0123456789abcdef0"]},
                 "allowedNamespaces": {"matchLabels": {"lustre": "enabled"}},
                 "maxStorageCapacityGiB": 2400}
    }))?;
    classes.create(&PostParams::default(), &class).await?;
    let control_plane_before: Vec<Option<f64>> = server
        .processes()
        .iter()
        .map(|p| proc_usage(p.pid).1)
        .collect();

    let log = std::fs::File::create(dir.join("operator.log"))?;
    let mut operator = tokio::process::Command::new(&args.operator)
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--aws-endpoint-url",
            &aws_url,
            "--aws-region",
            "us-east-1",
            "--poll-interval-seconds",
            &args.poll_interval_seconds.to_string(),
            "--drift-interval-seconds",
            &args.drift_interval_seconds.to_string(),
            "--cluster-id",
            "bench",
        ])
        .args(&args.operator_args)
        .env("KUBECONFIG", &server.kubeconfig)
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting lustre-operator")?;
    let pid = operator.id().context("operator pid")?;
    eprintln!("   operator started (pid {pid}) on the {}", cluster.name());
    until(
        "the operator's start-up check",
        Duration::from_secs(60),
        || sim.calls("DescribeSubnets") > 0,
    )
    .await?;
    let audit_start = server.audit_mark();

    // What the driver sees, through the API on either server: every workspace (a watch
    // cache), and the first time each claim is Bound (a watch of claims).
    let (workspaces, writer) = reflector::store::<LustreWorkspace>();
    tokio::spawn(
        watcher(
            Api::<LustreWorkspace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(writer)
        .for_each(|_| async {}),
    );
    let bound: Arc<std::sync::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    {
        let bound = bound.clone();
        let claims = watcher(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .applied_objects();
        tokio::spawn(claims.for_each(move |claim| {
            if let Ok(c) = claim
                && c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            {
                let key = format!(
                    "{}/{}",
                    c.metadata.namespace.unwrap_or_default(),
                    c.metadata.name.unwrap_or_default()
                );
                bound
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(key)
                    .or_insert_with(Instant::now);
            }
            async {}
        }));
    }

    // Create.
    let names: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                namespaces[i % namespaces.len()].clone(),
                format!("ws-{i:05}"),
            )
        })
        .collect();
    for_each_workspace(&names, |ns, name| {
        let client = client.clone();
        async move {
            let ws: LustreWorkspace = serde_json::from_value(json!({
                "apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"deploymentType": "SCRATCH_2", "storageCapacityGiB": 1200}
            }))?;
            Api::<LustreWorkspace>::namespaced(client, &ns)
                .create(&PostParams::default(), &ws)
                .await?;
            Ok(())
        }
    })
    .await?;
    let last_create = Instant::now();
    eprintln!("   created {n} workspaces");
    let (pending_calls, window) = pending_window(&sim).await?;
    eprintln!("   pending window {window:.0} s: {pending_calls} describe calls");
    f.pending_window_s = window;
    f.pending_calls_per_ws_min = pending_calls as f64 / n as f64 / (window / 60.0);

    let in_phase = |phase: &str| -> usize {
        workspaces
            .state()
            .iter()
            .filter(|w| phase_of(w).as_deref() == Some(phase))
            .count()
    };
    until("all Ready", Duration::from_secs(3600), || {
        in_phase("Ready") == n
    })
    .await?;
    let all_ready = Instant::now();
    eprintln!("   all Ready");
    f.last_create_to_all_ready_s = (all_ready - last_create).as_secs_f64();
    let available = sim.available_times();
    let seen = sim.seen_available_times();
    let last_available = available.values().max().copied().unwrap_or(all_ready);
    f.last_available_to_all_ready_s = all_ready
        .saturating_duration_since(last_available)
        .as_secs_f64();
    {
        let bound = bound.lock().unwrap_or_else(|p| p.into_inner());
        let state = workspaces.state();
        let lags = |from: &BTreeMap<String, Instant>| -> Vec<f64> {
            let mut lags: Vec<f64> = state
                .iter()
                .filter_map(|w| {
                    let status = w.status.as_ref()?;
                    let key = format!(
                        "{}/{}",
                        w.metadata.namespace.as_deref()?,
                        status.claim_name.as_deref()?
                    );
                    let at = from.get(status.file_system_id.as_deref()?)?;
                    Some(
                        bound
                            .get(&key)?
                            .saturating_duration_since(*at)
                            .as_secs_f64()
                            * 1000.0,
                    )
                })
                .collect();
            lags.sort_by(f64::total_cmp);
            lags
        };
        let from_available = lags(&available);
        f.available_to_ready_p50_ms = percentile(&from_available, 0.5);
        f.available_to_ready_p99_ms = percentile(&from_available, 0.99);
        let from_seen = lags(&seen);
        f.seen_to_bound_ms = Some((percentile(&from_seen, 0.5), percentile(&from_seen, 0.99)));
    }

    // Hold, with one file system changed behind the operator's back (drift).
    let hold_start = Instant::now();
    let before = total(&sim);
    let victim = workspaces
        .state()
        .first()
        .and_then(|w| w.status.as_ref()?.file_system_id.clone());
    if let Some(id) = &victim {
        sim.fail_file_system(id, "benchmark: failed behind the operator's back");
    }
    let hold = Duration::from_secs_f64(args.hold_seconds);
    while hold_start.elapsed() < hold {
        if f.drift_detected_s.is_none() && in_phase("Failed") == 1 {
            f.drift_detected_s = Some(hold_start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.ready_calls_per_ws_hour =
        (total(&sim) - before) as f64 / n as f64 / (args.hold_seconds / 3600.0);

    eprintln!("   held {} s", args.hold_seconds);
    // Delete.
    for_each_workspace(&names, |ns, name| {
        let client = client.clone();
        async move {
            Api::<LustreWorkspace>::namespaced(client, &ns)
                .delete(&name, &DeleteParams::default())
                .await?;
            Ok(())
        }
    })
    .await?;
    let last_delete = Instant::now();
    until("AWS empty", Duration::from_secs(3600), || {
        sim.snapshot()["fileSystems"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await?;
    f.last_delete_to_empty_s = last_delete.elapsed().as_secs_f64();
    until("every workspace gone", Duration::from_secs(600), || {
        workspaces.state().is_empty()
    })
    .await?;
    let (rss, cpu) = proc_usage(pid);
    f.rss_mib = rss;
    f.cpu_s = cpu;
    f.world_cpu_s = proc_usage(std::process::id())
        .1
        .zip(world_cpu_before)
        .map(|(after, before)| after - before);
    f.total_aws_calls = total(&sim);
    f.control_plane = server
        .processes()
        .iter()
        .zip(control_plane_before)
        .map(|(p, before)| {
            let (rss, cpu) = proc_usage(p.pid);
            (p.name.clone(), rss, cpu.zip(before).map(|(a, b)| a - b))
        })
        .collect();
    {
        // The driver's own writes (creating and deleting the workspaces) left out.
        let ours = server
            .writes_since(audit_start)
            .into_iter()
            .filter(|(verb, resource, sub)| {
                !(resource.starts_with("lustreworkspaces.")
                    && sub.is_empty()
                    && matches!(verb.as_str(), "create" | "delete"))
            });
        let (mut all, mut no_events) = (0usize, 0usize);
        for (verb, resource, sub) in ours {
            all += 1;
            if !resource.starts_with("events") {
                no_events += 1;
            }
            let what = if sub.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}/{sub}")
            };
            *f.writes_by_kind.entry(what).or_default() += 1.0 / n as f64;
        }
        f.writes_per_ws = Some((all as f64 / n as f64, no_events as f64 / n as f64));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), operator.wait()).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(f)
}

#[derive(Clone, Copy, Debug)]
enum Model {
    /// Pending: every `pending` s each on its own; Ready: every `ready` s each on its own.
    PerObject { pending: f64, ready: f64 },
    /// Every object on its own every `every` s, pending or Ready.
    ObserveAll { every: f64 },
}

async fn baseline(args: &Args, n: usize, model: Model) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let (sim, aws_url) = serve_sim(args, n).await?;
    let cloud = Arc::new(
        AwsCloud::new(
            &AwsSettings {
                region: Some("us-east-1".into()),
                endpoint_url: Some(aws_url),
                static_credentials: Some(("AKIDBENCH".into(), "bench".into())),
                ..AwsSettings::default()
            },
            None,
        )
        .await,
    );
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let cloud = cloud.clone();
            async move {
                cloud
                    .create_file_system(&lustre_cloud::FileSystemRequest {
                        security_group_ids: vec!["sg-0123456789abcdef0".into()],
                        ..lustre_cloud::FileSystemRequest::scratch(
                            format!("bench-{i}"),
                            "subnet-0123456789abcdef0",
                            Default::default(),
                        )
                    })
                    .await
                    .map(|fs| fs.id)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let last_create = Instant::now();
    let interval = match model {
        Model::PerObject { pending, .. } => pending,
        Model::ObserveAll { every } => every,
    };
    // Describe each given file system on its own; returns those seen AVAILABLE.
    let describe_each = |ids: Vec<String>| {
        let cloud = cloud.clone();
        async move {
            futures::stream::iter(ids)
                .map(|id| {
                    let cloud = cloud.clone();
                    async move {
                        let fs = cloud.describe_file_systems(std::slice::from_ref(&id)).await;
                        match fs {
                            Ok(v)
                                if v.first().is_some_and(|f| {
                                    f.lifecycle == lustre_cloud::Lifecycle::Available
                                }) =>
                            {
                                Some((id, Instant::now()))
                            }
                            _ => None,
                        }
                    }
                })
                .buffer_unordered(64)
                .filter_map(|x| async move { x })
                .collect::<Vec<_>>()
                .await
        }
    };
    // Rounds until every file system is known AVAILABLE; the pending window is measured on
    // the simulated AWS's counter meanwhile.
    let mut known: BTreeMap<String, Instant> = BTreeMap::new();
    let mut window: Option<(u64, f64)> = None;
    let before = describes(&sim);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(interval));
    while known.len() < n {
        tick.tick().await;
        if window.is_none() && !sim.available_times().is_empty() {
            let first = sim
                .available_times()
                .values()
                .min()
                .copied()
                .unwrap_or_else(Instant::now);
            // Calls before the first AVAILABLE: all rounds so far started before it.
            window = Some((
                describes(&sim) - before,
                first.saturating_duration_since(last_create).as_secs_f64(),
            ));
        }
        let todo: Vec<String> = match model {
            Model::PerObject { .. } => ids
                .iter()
                .filter(|i| !known.contains_key(*i))
                .cloned()
                .collect(),
            Model::ObserveAll { .. } => ids.clone(),
        };
        for (id, at) in describe_each(todo).await {
            known.entry(id).or_insert(at);
        }
    }
    let all_known = Instant::now();
    let (calls, win) = window.unwrap_or((
        describes(&sim) - before,
        last_create.elapsed().as_secs_f64(),
    ));
    f.pending_window_s = win;
    f.pending_calls_per_ws_min = calls as f64 / n as f64 / (win.max(1e-9) / 60.0);
    f.last_create_to_all_ready_s = (all_known - last_create).as_secs_f64();
    let available = sim.available_times();
    let last_available = available.values().max().copied().unwrap_or(all_known);
    f.last_available_to_all_ready_s = all_known
        .saturating_duration_since(last_available)
        .as_secs_f64();
    let mut lags: Vec<f64> = known
        .iter()
        .filter_map(|(id, at)| {
            Some(
                at.saturating_duration_since(*available.get(id)?)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    f.available_to_ready_p50_ms = percentile(&lags, 0.5);
    f.available_to_ready_p99_ms = percentile(&lags, 0.99);

    // Hold.
    let before = total(&sim);
    let hold_start = Instant::now();
    match model {
        Model::PerObject { ready, .. } => {
            // Each Ready object is re-read once per `ready` seconds at its own phase; in the
            // hold window that is the objects whose phase falls inside it (spread evenly).
            let due: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i as f64 / n as f64) * ready < args.hold_seconds)
                .map(|(_, id)| id.clone())
                .collect();
            describe_each(due).await;
        }
        Model::ObserveAll { every } => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every));
            while hold_start.elapsed().as_secs_f64() + 1e-3 < args.hold_seconds {
                tick.tick().await;
                if hold_start.elapsed().as_secs_f64() >= args.hold_seconds {
                    break;
                }
                describe_each(ids.clone()).await;
            }
        }
    }
    let rest = Duration::from_secs_f64(args.hold_seconds).saturating_sub(hold_start.elapsed());
    tokio::time::sleep(rest).await;
    f.ready_calls_per_ws_hour =
        (total(&sim) - before) as f64 / n as f64 / (args.hold_seconds / 3600.0);

    // Delete, then notice each one gone on the model's interval.
    futures::stream::iter(ids.clone())
        .map(|id| {
            let cloud = cloud.clone();
            async move {
                let _ = cloud
                    .delete_file_system(&id, &lustre_cloud::FileSystemDeletion::default())
                    .await;
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let last_delete = Instant::now();
    let mut left = ids.clone();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(match model {
        Model::PerObject { pending, .. } => pending,
        Model::ObserveAll { every } => every,
    }));
    while !left.is_empty() {
        tick.tick().await;
        let gone: Vec<String> = futures::stream::iter(left.clone())
            .map(|id| {
                let cloud = cloud.clone();
                async move {
                    match cloud.describe_file_systems(std::slice::from_ref(&id)).await {
                        Ok(v) if v.is_empty() => Some(id),
                        _ => None,
                    }
                }
            })
            .buffer_unordered(64)
            .filter_map(|x| async move { x })
            .collect()
            .await;
        left.retain(|i| !gone.contains(i));
    }
    f.last_delete_to_empty_s = last_delete.elapsed().as_secs_f64();
    f.total_aws_calls = total(&sim);
    Ok(f)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

fn ratio(a: f64, b: f64) -> String {
    if a <= 0.0 {
        return "—".into();
    }
    format!("1/{:.0}", b / a)
}

fn table(n: usize, args: &Args, o: &Figures, p: &Figures, c: &Figures) -> String {
    let rows: Vec<(&str, String, String, String, String)> = vec![
        (
            "AWS calls per pending workspace per minute",
            format!("{:.4}", o.pending_calls_per_ws_min),
            format!("{:.3}", p.pending_calls_per_ws_min),
            format!("{:.3}", c.pending_calls_per_ws_min),
            format!(
                "{} of per-object, {} of observe-all",
                ratio(o.pending_calls_per_ws_min, p.pending_calls_per_ws_min),
                ratio(o.pending_calls_per_ws_min, c.pending_calls_per_ws_min)
            ),
        ),
        (
            "… per pending workspace per operator poll interval",
            format!(
                "{:.5}",
                o.pending_calls_per_ws_min * args.poll_interval_seconds / 60.0
            ),
            format!(
                "{:.3}",
                p.pending_calls_per_ws_min * args.poll_interval_seconds / 60.0
            ),
            format!(
                "{:.3}",
                c.pending_calls_per_ws_min * args.poll_interval_seconds / 60.0
            ),
            String::new(),
        ),
        (
            "AWS calls per Ready workspace per hour (hold)",
            format!("{:.3}", o.ready_calls_per_ws_hour),
            format!("{:.3}", p.ready_calls_per_ws_hour),
            format!("{:.1}", c.ready_calls_per_ws_hour),
            format!(
                "{} of observe-all",
                ratio(o.ready_calls_per_ws_hour, c.ready_calls_per_ws_hour)
            ),
        ),
        (
            "Last create → all Ready (baselines: all known AVAILABLE), s",
            format!("{:.1}", o.last_create_to_all_ready_s),
            format!("{:.1}", p.last_create_to_all_ready_s),
            format!("{:.1}", c.last_create_to_all_ready_s),
            String::new(),
        ),
        (
            "Last AVAILABLE → all Ready / known, s",
            format!("{:.1}", o.last_available_to_all_ready_s),
            format!("{:.1}", p.last_available_to_all_ready_s),
            format!("{:.1}", c.last_available_to_all_ready_s),
            String::new(),
        ),
        (
            "AVAILABLE → PVC Bound / noticed, p50 / p99, ms",
            format!(
                "{:.0} / {:.0}",
                o.available_to_ready_p50_ms, o.available_to_ready_p99_ms
            ),
            format!(
                "{:.0} / {:.0}",
                p.available_to_ready_p50_ms, p.available_to_ready_p99_ms
            ),
            format!(
                "{:.0} / {:.0}",
                c.available_to_ready_p50_ms, c.available_to_ready_p99_ms
            ),
            String::new(),
        ),
        (
            "First poll answer showing AVAILABLE → PVC Bound, p50 / p99, ms",
            o.seen_to_bound_ms
                .map(|(a, b)| format!("{a:.0} / {b:.0}"))
                .unwrap_or_default(),
            "—".into(),
            "—".into(),
            "baselines: noticing is that answer".into(),
        ),
        (
            "Last delete → AWS empty (baselines: known empty), s",
            format!("{:.1}", o.last_delete_to_empty_s),
            format!("{:.1}", p.last_delete_to_empty_s),
            format!("{:.1}", c.last_delete_to_empty_s),
            String::new(),
        ),
        (
            "AWS calls, whole run",
            o.total_aws_calls.to_string(),
            p.total_aws_calls.to_string(),
            c.total_aws_calls.to_string(),
            String::new(),
        ),
        (
            "Kubernetes API writes per workspace (all / without Events; minimal 9)",
            o.writes_per_ws
                .map(|(a, b)| format!("{a:.2} / {b:.2}"))
                .unwrap_or_default(),
            "—".into(),
            "—".into(),
            String::new(),
        ),
        (
            "Drift (a file system failed behind the operator's back) noticed after, s",
            opt(o.drift_detected_s, 1),
            "—".into(),
            "—".into(),
            format!("drift interval {} s", args.drift_interval_seconds),
        ),
        (
            "Operator peak RSS (VmHWM), MiB",
            opt(o.rss_mib, 1),
            "—".into(),
            "—".into(),
            String::new(),
        ),
        (
            "Operator CPU, s",
            opt(o.cpu_s, 1),
            "—".into(),
            "—".into(),
            String::new(),
        ),
        (
            "Benchmark process CPU (sandbox API server, simulated AWS, driver), s",
            opt(o.world_cpu_s, 1),
            "—".into(),
            "—".into(),
            "the same 2 cores as the operator".into(),
        ),
    ];
    let mut out = format!(
        "\n### {n} workspaces\n\nFile systems CREATING for {:.0} s. Pending window (last create → first AVAILABLE): ours {:.0} s, per-object {:.0} s, observe-all {:.0} s.\n\n| Figure | ours | per-object (ACK, CSI driver) | observe-all (Crossplane) | ours vs baselines |\n|---|---|---|---|---|\n",
        create_delay(args, n),
        o.pending_window_s,
        p.pending_window_s,
        c.pending_window_s
    );
    for (name, a, b, c2, r) in rows {
        out.push_str(&format!("| {name} | {a} | {b} | {c2} | {r} |\n"));
    }
    out.push_str("\nOperator's Kubernetes writes per workspace, by verb and resource (audit log). The minimal 9 state transitions of a workspace here: finalizer on, status with the file system id, PersistentVolume, claim, status Ready, status Deleting, claim deleted, volume deleted, finalizer off (the StorageClass is one per class).\n\n| Write | per workspace |\n|---|---|\n");
    for (what, per) in &o.writes_by_kind {
        out.push_str(&format!("| {what} | {per:.2} |\n"));
    }
    out
}

/// The operator on the sandbox and on the real control plane, side by side.
fn clusters_table(n: usize, args: &Args, s: &Figures, r: &Figures) -> String {
    let both = |name: &str, value: &dyn Fn(&Figures) -> String| {
        format!("| {name} | {} | {} |\n", value(s), value(r))
    };
    let mut out = format!(
        "\n### {n} workspaces: sandbox and real control plane\n\nFile systems CREATING for {:.0} s; the same operator binary and settings on each.\n\n| Figure | sandbox | real control plane |\n|---|---|---|\n",
        create_delay(args, n)
    );
    out.push_str(&both("AWS calls per pending workspace per minute", &|f| {
        format!("{:.4}", f.pending_calls_per_ws_min)
    }));
    out.push_str(&both(
        "AWS calls per Ready workspace per hour (hold)",
        &|f| format!("{:.3}", f.ready_calls_per_ws_hour),
    ));
    out.push_str(&both("Last create → all Ready, s", &|f| {
        format!("{:.1}", f.last_create_to_all_ready_s)
    }));
    out.push_str(&both("Last AVAILABLE → all Ready, s", &|f| {
        format!("{:.1}", f.last_available_to_all_ready_s)
    }));
    out.push_str(&both("AVAILABLE → PVC Bound, p50 / p99, ms", &|f| {
        format!(
            "{:.0} / {:.0}",
            f.available_to_ready_p50_ms, f.available_to_ready_p99_ms
        )
    }));
    out.push_str(&both(
        "First poll answer showing AVAILABLE → PVC Bound, p50 / p99, ms",
        &|f| {
            f.seen_to_bound_ms
                .map(|(a, b)| format!("{a:.0} / {b:.0}"))
                .unwrap_or_default()
        },
    ));
    out.push_str(&both("Last delete → AWS empty, s", &|f| {
        format!("{:.1}", f.last_delete_to_empty_s)
    }));
    out.push_str(&both("AWS calls, whole run", &|f| {
        f.total_aws_calls.to_string()
    }));
    out.push_str(&both(
        "Kubernetes API writes per workspace (all / without Events)",
        &|f| {
            f.writes_per_ws
                .map(|(a, b)| format!("{a:.2} / {b:.2}"))
                .unwrap_or_default()
        },
    ));
    out.push_str(&both("Drift noticed after, s", &|f| {
        opt(f.drift_detected_s, 1)
    }));
    out.push_str(&both("Operator peak RSS (VmHWM), MiB", &|f| {
        opt(f.rss_mib, 1)
    }));
    out.push_str(&both("Operator CPU, s", &|f| opt(f.cpu_s, 1)));
    out.push_str(&format!(
        "| Benchmark process CPU, s (sandbox: API server + simulated AWS + driver; real: simulated AWS + driver) | {} | {} |\n",
        opt(s.world_cpu_s, 1),
        opt(r.world_cpu_s, 1)
    ));
    for (name, rss, cpu) in &r.control_plane {
        out.push_str(&format!(
            "| {name}: peak RSS (VmHWM), MiB / CPU during the run, s | (in the process above) | {} / {} |\n",
            opt(*rss, 0),
            opt(*cpu, 1)
        ));
    }
    out.push_str("\nThe operator's Kubernetes writes per workspace, by verb and resource (each server's audit record).\n\n| Write | sandbox | real control plane |\n|---|---|---|\n");
    let kinds: std::collections::BTreeSet<&String> = s
        .writes_by_kind
        .keys()
        .chain(r.writes_by_kind.keys())
        .collect();
    for what in kinds {
        let per =
            |f: &Figures| format!("{:.2}", f.writes_by_kind.get(what).copied().unwrap_or(0.0));
        out.push_str(&format!("| {what} | {} | {} |\n", per(s), per(r)));
    }
    out
}

/// `report` with the `--cluster real` section of `previous` (if any) carried over, or
/// replaced by `section`.
fn with_real_section(report: &str, previous: &str, section: Option<&str>) -> String {
    let old = previous
        .find(REAL_BEGIN)
        .zip(previous.find(REAL_END))
        .filter(|(b, e)| b < e)
        .map(|(b, e)| &previous[b..e + REAL_END.len()]);
    let new = section.map(|t| format!("{REAL_BEGIN}\n{t}\n{REAL_END}"));
    match (old, new) {
        // Replaced where it stands.
        (Some(old), Some(new)) if report.contains(old) => report.replace(old, &new),
        (_, Some(sec)) => format!("{}\n\n{sec}\n", report.trim_end()),
        // Carried over into a freshly written report.
        (Some(old), None) if !report.contains(old) => {
            format!("{}\n\n{old}\n", report.trim_end())
        }
        _ => report.to_string(),
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<f64>().ok())
                })
        })
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpus} CPUs, {mem} RAM")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let date = jiff::Zoned::now().strftime("%Y-%m-%d").to_string();
    let mut report = format!(
        "<!-- Written by scripts/bench (crates/bench). -->\n# Benchmarks\n\nRun on {date}, {}; `scripts/bench --sizes {}`.\n\nSettings: simulated file systems CREATING for {} (±{:.0} %), operator poll interval {} s (its default), drift interval {} s (its default is 600 s), hold {} s. Workload: SCRATCH_2 workspaces, 1200 GiB, no S3 links, spread over {} namespaces, class without a managed security group (the comparison is about watching file systems). The baselines are modes of the benchmark's driver issuing exactly the calls their model prescribes (per-object: each pending file system described on its own every 30 s, each Ready one once per 10 h; observe-all: each one described on its own every 60 s), through the same AWS adapter, against the same simulated AWS.\n",
        machine(),
        args.sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        match args.create_delay_seconds {
            Some(s) => format!("{s} s"),
            None => "45 s + 20 ms per workspace".into(),
        },
        args.jitter * 100.0,
        args.poll_interval_seconds,
        args.drift_interval_seconds,
        args.hold_seconds,
        args.namespaces
    );
    if args.cluster == Cluster::Real {
        let mut section = format!(
            "## The sandbox and a real control plane\n\nRun on {date}, {}; `scripts/bench --cluster real --sizes {}`. The operator at each size on the sandbox API server, then on etcd + kube-apiserver + kube-controller-manager 1.37 (`scripts/control-plane`, loopback, audit log of writes on): settings as above, one simulated AWS each. The control plane's processes share the machine's cores with the operator, the simulated AWS and this driver.\n",
            machine(),
            args.sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        for &n in &args.sizes {
            eprintln!("== {n} workspaces: the operator on the sandbox");
            let s = ours(&args, n, Cluster::Sandbox).await?;
            eprintln!("== {n} workspaces: the operator on the real control plane");
            let r = ours(&args, n, Cluster::Real).await?;
            let t = clusters_table(n, &args, &s, &r);
            println!("{t}");
            section.push_str(&t);
        }
        if let Some(out) = &args.out {
            let previous = std::fs::read_to_string(out).unwrap_or_default();
            let text = with_real_section(&previous, &previous, Some(&section));
            std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote the real control plane's section of {}",
                out.display()
            );
        }
        return Ok(());
    }
    for &n in &args.sizes {
        eprintln!("== {n} workspaces: ours (lustre-operator)");
        let o = ours(&args, n, Cluster::Sandbox).await?;
        if args.operator_only {
            eprintln!("{o:#?}");
            continue;
        }
        // The baselines only issue describe calls: both run at once, after ours (whose CPU
        // and latency figures must not share the machine).
        eprintln!("== {n} workspaces: per-object and observe-all baselines");
        let (p, c) = tokio::try_join!(
            baseline(
                &args,
                n,
                Model::PerObject {
                    pending: 30.0,
                    ready: 36_000.0,
                },
            ),
            baseline(&args, n, Model::ObserveAll { every: 60.0 }),
        )?;
        let t = table(n, &args, &o, &p, &c);
        println!("{t}");
        report.push_str(&t);
    }
    if let Some(out) = args.out.as_ref().filter(|_| !args.operator_only) {
        let previous = std::fs::read_to_string(out).unwrap_or_default();
        let report = with_real_section(&report, &previous, None);
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_section_is_replaced_in_place_or_carried_over() {
        let section = |t: &str| format!("{REAL_BEGIN}\n{t}\n{REAL_END}");
        let doc = format!("# B\n\ntables\n\n{}\n\n## Reading\n", section("old"));
        // `--cluster real`: replaced where it stands, the rest kept.
        let replaced = with_real_section(&doc, &doc, Some("new"));
        assert_eq!(replaced, doc.replace("\nold\n", "\nnew\n"));
        // The default run writes a fresh report and carries the section over.
        let fresh = with_real_section("# B\n\nnew tables\n", &doc, None);
        assert_eq!(fresh, format!("# B\n\nnew tables\n\n{}\n", section("old")));
        // No section yet: appended.
        assert_eq!(
            with_real_section("# B\n", "# B\n", Some("first")),
            format!("# B\n\n{}\n", section("first"))
        );
        assert_eq!(with_real_section("# B\n", "", None), "# B\n");
    }
}
