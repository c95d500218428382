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

use anyhow::Context as _;
use clap::Parser;

mod baselines;
mod cluster;
mod ours;
mod pods;
mod report;
mod world;

use baselines::{Model, baseline};
use cluster::Cluster;
use ours::ours;
use report::{clusters_table, table, with_section};

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
    /// no report: for finding where its time and memory go. With `--cluster real`, on the
    /// real control plane alone.
    #[arg(long)]
    operator_only: bool,
    /// Pods to create once every claim is Bound, naming the workspaces' claims in turn; the
    /// operator's VmRSS is reported before them and once it has counted them all, then they
    /// are deleted (a pod naming a claim holds it). 0: none.
    #[arg(long, default_value_t = 0)]
    pods: usize,
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
const REAL: (&str, &str) = (
    "<!-- begin: scripts/bench --cluster real -->",
    "<!-- end: scripts/bench --cluster real -->",
);
/// The markers around the default run's section (the baselines' comparison).
const TABLES: (&str, &str) = (
    "<!-- begin: scripts/bench (written by crates/bench; the reading around it is hand-written) -->",
    "<!-- end: scripts/bench -->",
);

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
    /// Of that: the answer → the claim made (the operator's part), milliseconds.
    seen_to_claim_ms: Option<(f64, f64)>,
    /// The claim made → Bound (Kubernetes' part), milliseconds.
    claim_to_bound_ms: Option<(f64, f64)>,
    /// The poll answer → claim made, cut where the volume appears and where the binder
    /// stores it: poll answer → volume made (the operator), volume made → its phase past
    /// `Pending` (the binder), that → claim made (the operator); p50 / p99 ms each.
    claim_steps_ms: Option<[(f64, f64); 3]>,
    /// On the real control plane, poll answer → volume made cut by kube-apiserver's audit
    /// log: → the apply received (the operator: wake, queue, its work), → its response
    /// complete (kube-apiserver); p50 / p99 ms each.
    apply_split_ms: Option<[(f64, f64); 2]>,
    /// The operator's part of poll answer → claim made, per workspace: poll answer → volume
    /// made plus the binder's phase → claim made; p50 / p99 ms.
    operator_part_ms: Option<(f64, f64)>,
    /// From the first AVAILABLE to every claim Bound (ours): the operator's workspace
    /// reconciles, how many and their mean duration in ms (its `/metrics`). With the
    /// controller's concurrency they bound how fast a burst can be worked off.
    burst_reconciles: Option<(f64, f64)>,
    /// Over the same span, the operator's own clocks: the poller's wake of a workspace →
    /// its reconcile's start (`lustre_operator_wake_wait_seconds`), and the poll rounds
    /// (`lustre_operator_poll_round_seconds`).
    burst_wake_wait: Option<pods::Observed>,
    burst_poll_rounds: Option<pods::Observed>,
    /// Over the same span: the poller's wake → the controller's queue taking it in
    /// (`lustre_operator_wake_received_seconds`).
    burst_wake_received: Option<pods::Observed>,
    /// Over the same span: the workspace reconciles running as each began, itself included
    /// (`lustre_operator_reconciles_active_at_start`; a count in the `Observed`'s seconds).
    burst_active: Option<pods::Observed>,
    /// Over the same span, where the CPU went.
    burst_cpu: Option<BurstCpu>,
    /// Statuses each workspace showed over the run, per workspace: the changes of its phase
    /// or its Ready condition's reason or message that the driver's watch saw (a relist can
    /// hide one: a floor). Status writes above it changed other fields only.
    statuses_shown: Option<f64>,
    /// Of those, per workspace, by step (phase and Ready's reason), most shown first.
    shown_steps: Option<String>,
    /// Kubernetes writes per workspace over the whole run, Events apart, and of them its
    /// status patches.
    writes_per_ws: Option<(f64, f64)>,
    last_delete_to_empty_s: f64,
    total_aws_calls: u64,
    /// From the first apply to every workspace Ready with its claim Bound.
    first_apply_to_all_bound_s: f64,
    /// The operator's Kubernetes requests on the create path: from the first apply to every
    /// claim Bound.
    create_requests: Option<Requests>,
    /// The same over the whole run (create, hold with a drift, delete).
    run_requests: Option<Requests>,
    drift_detected_s: Option<f64>,
    rss_mib: Option<f64>,
    cpu_s: Option<f64>,
    /// CPU of this process (sandbox API server, simulated AWS, driver) during the run.
    world_cpu_s: Option<f64>,
    /// The real control plane's processes: name, peak RSS (MiB), CPU during the run (s).
    control_plane: Vec<(String, Option<f64>, Option<f64>)>,
    /// With `--pods`: the operator's memory around them.
    pods: Option<pods::PodFigures>,
}

/// Where the CPU went over the burst (first AVAILABLE → every claim Bound).
#[derive(Debug, Default, Clone, Copy)]
struct BurstCpu {
    span_s: f64,
    /// The machine's cores busy, as a fraction of all of them.
    machine_busy: f64,
    /// The operator's threads on a CPU, and runnable but waiting for one (schedstat), s.
    on_cpu_s: f64,
    run_queue_s: f64,
    /// The controller's one task busy in its polls (`lustre_operator_controller_busy_seconds_total`):
    /// in all, and of it in the watches of claims, volumes, classes, namespaces and
    /// StorageClasses, s.
    controller_s: f64,
    watches_s: f64,
}

/// The operator's Kubernetes requests per workspace.
#[derive(Debug, Default, Clone)]
struct Requests {
    /// All but Events.
    per_ws: f64,
    /// Of those, reads (get, list).
    reads_per_ws: f64,
    /// Events (created or patched).
    events_per_ws: f64,
    /// By verb and resource, Events included.
    by_kind: BTreeMap<String, f64>,
}

impl Requests {
    /// The requests of `n` workspaces, per workspace.
    fn of(requests: &[lustre_sandbox::kube::store::AuditEntry], n: usize) -> Self {
        let per = 1.0 / n.max(1) as f64;
        let mut r = Requests::default();
        for a in requests {
            *r.by_kind.entry(a.request()).or_default() += per;
            if a.resource.starts_with("events") {
                r.events_per_ws += per;
                continue;
            }
            r.per_ws += per;
            if matches!(a.verb.as_str(), "get" | "list") {
                r.reads_per_ws += per;
            }
        }
        r
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
        "Run on {date}, {}; `scripts/bench --sizes {}`.\n\nSettings: simulated file systems CREATING for {} (±{:.0} %), operator poll interval {} s (its default), drift interval {} s (its default is 600 s), hold {} s. Workload: SCRATCH_2 workspaces, 1200 GiB, no S3 links, spread over {} namespaces, class without a managed security group (the comparison is about watching file systems). The baselines are modes of the benchmark's driver issuing exactly the calls their model prescribes (per-object: each pending file system described on its own every 30 s, each Ready one once per 10 h; observe-all: each one described on its own every 60 s), through the same AWS adapter, against the same simulated AWS.\n",
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
    if args.cluster == Cluster::Real && args.operator_only {
        // The real control plane alone, no report: its figures printed.
        for &n in &args.sizes {
            eprintln!("== {n} workspaces: the operator on the real control plane");
            let r = ours(&args, n, Cluster::Real).await?;
            eprintln!("{r:#?}");
        }
        return Ok(());
    }
    if args.cluster == Cluster::Real {
        let mut section = format!(
            "## The sandbox and a real control plane\n\nRun on {date}, {}; `scripts/bench --cluster real --sizes {}`. The operator at each size on the sandbox API server, then on etcd + kube-apiserver + kube-controller-manager 1.37 (`scripts/control-plane`, loopback, audit log of the operator's requests on): settings as above, one simulated AWS each. The control plane's processes share the machine's cores with the operator, the simulated AWS and this driver.\n",
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
            let text = with_section(&previous, REAL, &section);
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
        let report = with_section(&previous, TABLES, &report);
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_where_it_stands_and_the_reading_around_it_kept() {
        let marked = |(b, e): (&str, &str), t: &str| format!("{b}\n{t}\n{e}");
        let doc = format!(
            "# B\n\n{}\n\n## Reading\n\n{}\n\n## More reading\n",
            marked(TABLES, "old tables"),
            marked(REAL, "old real")
        );
        assert_eq!(
            with_section(&doc, REAL, "new real\n"),
            doc.replace("\nold real\n", "\nnew real\n")
        );
        assert_eq!(
            with_section(&doc, TABLES, "new tables"),
            doc.replace("\nold tables\n", "\nnew tables\n")
        );
        // No section yet: appended; no document yet: a titled one.
        assert_eq!(
            with_section("# B\n", REAL, "first"),
            format!("# B\n\n{}\n", marked(REAL, "first"))
        );
        assert_eq!(
            with_section("", TABLES, "t"),
            format!("# Benchmarks\n\n{}\n", marked(TABLES, "t"))
        );
    }
}
