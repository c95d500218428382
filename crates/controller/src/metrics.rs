//! Prometheus metrics (prefix `lustre_operator_`, no per-object labels).

use std::collections::HashMap;
use std::sync::Mutex;

use lustre_api::{LustreWorkspace, LustreWorkspaceStatus, Phase};
use prometheus::{
    CounterVec, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// The controller's metrics, registered in one registry the binary serves at `/metrics`
/// (with the process's own on Linux: CPU seconds, resident memory, open file descriptors,
/// start time).
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub aws_calls: IntCounterVec,
    /// What woke workspaces: their own watch, a claim's, a volume's, a class's, a
    /// namespace's, the poller (a re-check a reconcile asked for is not counted).
    pub wakes: IntCounterVec,
    pub reconcile_duration: HistogramVec,
    /// Seconds from the poller's wake of a workspace (its file system's observation changed)
    /// to the start of its next reconcile: the controller's queue.
    pub wake_wait: Histogram,
    /// Seconds from the poller's wake of a workspace to the controller's queue taking it in
    /// (the rest of `wake_wait` is the queue itself: the wait for a slot, or for the
    /// workspace's running reconcile).
    pub wake_received: Histogram,
    /// Wall time the controller's one task spent in its polls, by part: `all` (the watches'
    /// decoding and caches, the queue, starting reconciles; not the reconciles, which run as
    /// tasks of their own) and `watches` (of it, the watches of claims, volumes, classes,
    /// namespaces and StorageClasses). Wall time: a poll the OS preempted counts whole.
    pub controller_busy: CounterVec,
    /// Workspace reconciles running now, and how many were running (itself included) as
    /// each began: a start at the controller's concurrency waited for a free slot.
    pub reconciles_active: IntGauge,
    pub active_at_start: Histogram,
    /// Seconds of one poll round: every due file system described, the cache updated, the
    /// changed ones' workspaces woken.
    pub poll_round: Histogram,
    pub time_to_ready: HistogramVec,
    pub workspaces: IntGaugeVec,
    /// 1 while this replica runs the controller (always 1 without leader election).
    pub leader: IntGauge,
    /// Data tasks.
    pub tasks: TaskMetrics,
    /// What each namespace holds, by class: workspaces, capacity, estimated cost.
    pub usage: UsageMetrics,
    phases: Mutex<HashMap<String, Phase>>,
}

/// Seconds of a reconcile.
const RECONCILE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Seconds of a wait inside the operator: milliseconds when idle, tens of seconds in a burst
/// of thousands.
const WAIT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0,
];

/// The histograms of the operator's own waits: the controller's queue after a poller's wake
/// (whole, and to the queue's intake), and the poll rounds.
fn wait_histograms(registry: &Registry) -> (Histogram, Histogram, Histogram) {
    let wait = |name: &str, help: &str| {
        let opts = HistogramOpts::new(name, help).buckets(WAIT_BUCKETS.to_vec());
        let h = must(Histogram::with_opts(opts));
        must(registry.register(Box::new(h.clone())));
        h
    };
    (
        wait(
            "lustre_operator_wake_wait_seconds",
            "Time from the poller's wake of a workspace to the start of its next reconcile",
        ),
        wait(
            "lustre_operator_wake_received_seconds",
            "Time from the poller's wake of a workspace to the controller's queue taking it in",
        ),
        wait(
            "lustre_operator_poll_round_seconds",
            "Duration of a poll round: describe the due file systems, update the cache, wake",
        ),
    )
}

/// The workspaces by phase (every phase at 0 to start with), the leader gauge, and the
/// process's own metrics on Linux.
fn gauges(registry: &Registry) -> (IntGaugeVec, IntGauge) {
    let workspaces = must(IntGaugeVec::new(
        Opts::new("lustre_operator_workspaces", "Workspaces by phase"),
        &["phase"],
    ));
    must(registry.register(Box::new(workspaces.clone())));
    let leader = must(IntGauge::new(
        "lustre_operator_leader",
        "1 while this replica runs the controller (holds the leader lease)",
    ));
    must(registry.register(Box::new(leader.clone())));
    #[cfg(target_os = "linux")]
    must(registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )));
    for p in Phase::ALL {
        workspaces.with_label_values(&[p.as_str()]).set(0);
    }
    (workspaces, leader)
}

/// `lustre_operator_reconciles_active` and `lustre_operator_reconciles_active_at_start`.
fn active(registry: &Registry) -> (IntGauge, Histogram) {
    let gauge = must(IntGauge::new(
        "lustre_operator_reconciles_active",
        "Workspace reconciles running now",
    ));
    must(registry.register(Box::new(gauge.clone())));
    let buckets = vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
    let opts = HistogramOpts::new(
        "lustre_operator_reconciles_active_at_start",
        "Workspace reconciles running as one began, itself included",
    );
    let h = must(Histogram::with_opts(opts.buckets(buckets)));
    must(registry.register(Box::new(h.clone())));
    (gauge, h)
}

/// A workspace reconcile counted in `reconciles_active` while this lives.
pub(crate) struct Running(IntGauge);

impl Running {
    pub(crate) fn start(metrics: &Metrics) -> Self {
        metrics.reconciles_active.inc();
        let active = metrics.reconciles_active.get();
        metrics.active_at_start.observe(active as f64);
        Self(metrics.reconciles_active.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `lustre_operator_controller_busy_seconds_total` (see [`Metrics::controller_busy`]).
fn busy_counter(registry: &Registry) -> CounterVec {
    let busy = must(CounterVec::new(
        Opts::new(
            "lustre_operator_controller_busy_seconds_total",
            "Wall time the controller's task spent in its polls, by part (all, watches)",
        ),
        &["part"],
    ));
    must(registry.register(Box::new(busy.clone())));
    busy
}

/// Seconds from creation to Ready: FSx takes minutes, a restore from backup up to an hour.
const READY_BUCKETS: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

fn must<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric definitions are static and valid: {e}"))
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let reconciles = counter(
            "lustre_operator_reconciles_total",
            "Reconciles by result (ok, error)",
            &["result"],
        );
        let failures = counter(
            "lustre_operator_reconcile_failures_total",
            "Failed reconciles by error category",
            &["category"],
        );
        let aws_calls = counter(
            "lustre_operator_aws_requests_total",
            "AWS calls by service, operation and outcome",
            &["service", "operation", "outcome"],
        );
        let wakes = counter(
            "lustre_operator_wakes_total",
            "Workspace wake-ups by source (workspace, claim, volume, class, namespace, poller)",
            &["source"],
        );
        let histogram = |name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets);
            let h = must(HistogramVec::new(opts, labels));
            must(registry.register(Box::new(h.clone())));
            h
        };
        let reconcile_duration = histogram(
            "lustre_operator_reconcile_duration_seconds",
            "Reconcile duration",
            RECONCILE_BUCKETS.to_vec(),
            &["kind"],
        );
        let (wake_wait, wake_received, poll_round) = wait_histograms(&registry);
        let controller_busy = busy_counter(&registry);
        let (reconciles_active, active_at_start) = active(&registry);
        let time_to_ready = histogram(
            "lustre_operator_time_to_ready_seconds",
            "Time from workspace creation to first Ready",
            READY_BUCKETS.to_vec(),
            &["deployment_type"],
        );
        let (workspaces, leader) = gauges(&registry);
        Self {
            tasks: TaskMetrics::new(&registry),
            usage: UsageMetrics::new(&registry),
            registry,
            reconciles,
            failures,
            aws_calls,
            wakes,
            reconcile_duration,
            wake_wait,
            wake_received,
            controller_busy,
            reconciles_active,
            active_at_start,
            poll_round,
            time_to_ready,
            workspaces,
            leader,
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts `n` workspaces woken by `source`.
    pub fn woke(&self, source: &str, n: usize) {
        self.wakes.with_label_values(&[source]).inc_by(n as u64);
    }

    /// Records a workspace's phase (`None`: the workspace is gone).
    pub fn set_phase(&self, uid: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        let old = match phase {
            Some(p) => phases.insert(uid.to_string(), p),
            None => phases.remove(uid),
        };
        if old == phase {
            return;
        }
        if let Some(o) = old {
            self.workspaces.with_label_values(&[o.as_str()]).dec();
        }
        if let Some(n) = phase {
            self.workspaces.with_label_values(&[n.as_str()]).inc();
        }
    }

    /// Records one reconcile: its duration, and its error's category when it failed.
    pub fn reconciled(&self, took: std::time::Duration, failed: Option<&'static str>) {
        self.reconcile_duration
            .with_label_values(&["workspace"])
            .observe(took.as_secs_f64());
        let result = if failed.is_some() { "error" } else { "ok" };
        self.reconciles.with_label_values(&[result]).inc();
        if let Some(category) = failed {
            self.failures.with_label_values(&[category]).inc();
        }
    }

    /// Records the time from a workspace's creation to its first Ready.
    pub fn became_ready(&self, ws: &LustreWorkspace, status: &LustreWorkspaceStatus) {
        let Some(created) = ws.metadata.creation_timestamp.as_ref() else {
            return;
        };
        let secs = (jiff::Timestamp::now().as_second() - created.0.as_second()).max(0) as f64;
        let kind = status
            .deployment_type
            .map(|d| d.as_str())
            .unwrap_or("unknown");
        self.time_to_ready.with_label_values(&[kind]).observe(secs);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl lustre_cloud::CallObserver for Metrics {
    fn observe(&self, service: &'static str, operation: &'static str, outcome: &'static str) {
        self.aws_calls
            .with_label_values(&[service, operation, outcome])
            .inc();
    }
}

/// Data task metrics.
#[derive(Debug)]
pub struct TaskMetrics {
    /// Finished data tasks by type and outcome.
    finished: IntCounterVec,
    /// FSx's time from start to end, by type.
    duration: HistogramVec,
}

impl TaskMetrics {
    fn new(registry: &Registry) -> Self {
        let finished = must(IntCounterVec::new(
            Opts::new(
                "lustre_operator_data_tasks_total",
                "Finished data tasks by type (Export, Import, Release) and outcome (Succeeded, Failed, Canceled)",
            ),
            &["type", "outcome"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "lustre_operator_data_task_duration_seconds",
                "Time a data task ran in FSx, start to end",
            )
            .buckets(vec![
                1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0, 43200.0,
            ]),
            &["type"],
        ));
        must(registry.register(Box::new(finished.clone())));
        must(registry.register(Box::new(duration.clone())));
        Self { finished, duration }
    }

    /// Counts a finished task, and how long FSx ran it when known.
    pub fn finished(&self, kind: &str, outcome: &str, seconds: Option<f64>) {
        self.finished.with_label_values(&[kind, outcome]).inc();
        if let Some(s) = seconds {
            self.duration.with_label_values(&[kind]).observe(s);
        }
    }
}

/// What one workspace that holds a file system adds to its namespace's usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    pub class: String,
    pub namespace: String,
    pub capacity_gib: i64,
    /// The estimate's currency and amount, when its class prices its tier.
    pub cost: Option<(String, f64)>,
}

impl Usage {
    /// A workspace's usage from its status: only one that holds a file system counts (FSx
    /// bills from creation to deletion).
    pub fn of(ws: &LustreWorkspace, status: &LustreWorkspaceStatus) -> Option<Self> {
        status.file_system_id.as_ref()?;
        let cost = status.estimated_monthly_cost.as_ref().and_then(|c| {
            let amount = c.amount.as_ref()?.parse().ok()?;
            Some((c.currency.clone(), amount))
        });
        Some(Self {
            class: status.class_name.clone().unwrap_or_default(),
            namespace: ws.metadata.namespace.clone().unwrap_or_default(),
            capacity_gib: status
                .storage_capacity_gib
                .map_or(i64::from(ws.spec.capacity_gib()), i64::from),
            cost,
        })
    }
}

/// Workspaces, capacity and estimated monthly cost by class and namespace (bounded labels:
/// classes and namespaces, never one series per workspace).
#[derive(Debug)]
pub struct UsageMetrics {
    workspaces: IntGaugeVec,
    capacity: IntGaugeVec,
    cost: GaugeVec,
    by_uid: Mutex<HashMap<String, Usage>>,
    /// Unfinished pods that name a claim, as the pod watch counts them (see `crate::pods`).
    pub pods_counted: IntGauge,
}

impl UsageMetrics {
    fn new(registry: &Registry) -> Self {
        let labels = ["class", "namespace"];
        let workspaces = must(IntGaugeVec::new(
            Opts::new(
                "lustre_operator_namespace_workspaces",
                "Workspaces holding a file system, by class and namespace",
            ),
            &labels,
        ));
        let capacity = must(IntGaugeVec::new(
            Opts::new(
                "lustre_operator_namespace_storage_capacity_gib",
                "Storage capacity of the file systems workspaces hold, by class and namespace",
            ),
            &labels,
        ));
        let cost = must(GaugeVec::new(
            Opts::new(
                "lustre_operator_estimated_monthly_cost",
                "Estimated monthly cost of the file systems workspaces hold, by class, namespace and currency (workspaces whose tier has no price are left out)",
            ),
            &["class", "namespace", "currency"],
        ));
        must(registry.register(Box::new(workspaces.clone())));
        must(registry.register(Box::new(capacity.clone())));
        must(registry.register(Box::new(cost.clone())));
        let pods_counted = must(IntGauge::new(
            "lustre_operator_pods_using_claims",
            "Unfinished pods that name a claim, as the operator's pod watch counts them (for expiry.afterIdle)",
        ));
        must(registry.register(Box::new(pods_counted.clone())));
        Self {
            workspaces,
            capacity,
            cost,
            by_uid: Mutex::new(HashMap::new()),
            pods_counted,
        }
    }

    /// Records what a workspace holds now (`None`: nothing, or it is gone).
    pub fn set(&self, uid: &str, usage: Option<Usage>) {
        let mut all = self.by_uid.lock().unwrap_or_else(|p| p.into_inner());
        let old = match usage.clone() {
            Some(u) => all.insert(uid.to_string(), u),
            None => all.remove(uid),
        };
        if old == usage {
            return;
        }
        for (u, sign) in [(old, -1), (usage, 1)] {
            let Some(u) = u else { continue };
            let labels = [u.class.as_str(), u.namespace.as_str()];
            self.workspaces.with_label_values(&labels).add(sign);
            self.capacity
                .with_label_values(&labels)
                .add(sign * u.capacity_gib);
            if let Some((currency, amount)) = &u.cost {
                self.cost
                    .with_label_values(&[u.class.as_str(), u.namespace.as_str(), currency])
                    .add(sign as f64 * amount);
            }
        }
    }
}
