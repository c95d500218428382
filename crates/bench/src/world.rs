//! The world a run measures in: the simulated AWS, the clock and the processes' usage, and
//! the helpers every mode shares.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lustre_api::LustreWorkspace;
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};

use crate::Args;

/// A workspace's phase as its status spells it.
pub(crate) fn phase_of(w: &LustreWorkspace) -> Option<String> {
    let phase = w.status.as_ref()?.phase.as_ref()?;
    serde_json::to_value(phase)
        .ok()?
        .as_str()
        .map(str::to_string)
}

/// The CREATING delay at `n` workspaces.
pub(crate) fn create_delay(args: &Args, n: usize) -> f64 {
    args.create_delay_seconds.unwrap_or(45.0 + 0.02 * n as f64)
}

pub(crate) fn timing(args: &Args, n: usize) -> Timing {
    Timing {
        create_ms: (create_delay(args, n) * 1000.0) as u64,
        update_ms: 2000,
        delete_ms: 5000,
        association_create_ms: 1000,
        association_delete_ms: 1000,
        jitter: args.jitter,
        ..Timing::default()
    }
}

pub(crate) async fn serve_sim(args: &Args, n: usize) -> anyhow::Result<(SimAws, String)> {
    let sim = SimAws::new(SimConfig {
        timing: timing(args, n),
        ..SimConfig::default()
    });
    let (addr, _) = sim
        .serve("127.0.0.1:0".parse()?, std::future::pending())
        .await?;
    Ok((sim, format!("http://{addr}")))
}

pub(crate) fn describes(sim: &SimAws) -> u64 {
    sim.calls("DescribeFileSystems") + sim.calls("DescribeDataRepositoryAssociations")
}

pub(crate) fn total(sim: &SimAws) -> u64 {
    sim.snapshot()["totalCalls"].as_u64().unwrap_or(0)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Waits (polling `f` every 200 ms) up to `limit`.
pub(crate) async fn until(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
) -> anyhow::Result<()> {
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

/// When the first file system became AVAILABLE (now, if none has yet).
pub(crate) fn first_available(sim: &SimAws) -> Instant {
    sim.available_times()
        .values()
        .min()
        .copied()
        .unwrap_or_else(Instant::now)
}

/// The pending window: from just after the last create until the first file system is
/// AVAILABLE. Returns (describe calls in it, its length).
pub(crate) async fn pending_window(sim: &SimAws) -> anyhow::Result<(u64, f64)> {
    let start = Instant::now();
    let before = describes(sim);
    until(
        "the first AVAILABLE file system",
        Duration::from_secs(3600),
        || !sim.available_times().is_empty(),
    )
    .await?;
    let window = first_available(sim)
        .saturating_duration_since(start)
        .as_secs_f64();
    Ok((describes(sim) - before, window))
}

pub(crate) fn proc_usage(pid: u32) -> (Option<f64>, Option<f64>) {
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
pub(crate) async fn for_each_workspace<F, Fut>(
    names: &[(String, String)],
    op: F,
) -> anyhow::Result<()>
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

/// A process's threads' time on a CPU and waiting for one (in the run queue) so far, seconds,
/// from `/proc/<pid>/task/*/schedstat` (a thread ended since is not counted).
pub(crate) fn sched_times(pid: u32) -> Option<(f64, f64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut on_cpu, mut waiting) = (0u64, 0u64);
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut fields = stat
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        on_cpu += fields.next().unwrap_or(0);
        waiting += fields.next().unwrap_or(0);
    }
    Some((on_cpu as f64 / 1e9, waiting as f64 / 1e9))
}

/// The machine's CPU time so far, all cores: (busy, all) in clock ticks, from `/proc/stat`
/// (idle and iowait are not busy).
pub(crate) fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    let all: u64 = ticks.iter().sum();
    Some((all - idle, all))
}
