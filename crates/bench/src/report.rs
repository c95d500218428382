//! The markdown report: a table per size, and the real control plane's section kept or
//! replaced.

use crate::world::*;
use crate::{Args, Figures, Requests};

pub(crate) fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

pub(crate) fn ratio(a: f64, b: f64) -> String {
    if a <= 0.0 {
        return "—".into();
    }
    format!("1/{:.0}", b / a)
}

pub(crate) fn table(n: usize, args: &Args, o: &Figures, p: &Figures, c: &Figures) -> String {
    // A row of all three modes, and a row only the operator has.
    let all = |name: &str, value: &dyn Fn(&Figures) -> String, note: String| {
        format!(
            "| {name} | {} | {} | {} | {note} |\n",
            value(o),
            value(p),
            value(c)
        )
    };
    let only =
        |name: &str, value: String, note: &str| format!("| {name} | {value} | — | — | {note} |\n");
    let poll = args.poll_interval_seconds / 60.0;
    let rows = [
        all(
            "AWS calls per pending workspace per minute",
            &|f| format!("{:.4}", f.pending_calls_per_ws_min),
            format!(
                "{} of per-object, {} of observe-all",
                ratio(o.pending_calls_per_ws_min, p.pending_calls_per_ws_min),
                ratio(o.pending_calls_per_ws_min, c.pending_calls_per_ws_min)
            ),
        ),
        all(
            "… per pending workspace per operator poll interval",
            &|f| format!("{:.5}", f.pending_calls_per_ws_min * poll),
            String::new(),
        ),
        all(
            "AWS calls per Ready workspace per hour (hold)",
            &|f| format!("{:.3}", f.ready_calls_per_ws_hour),
            format!(
                "{} of observe-all",
                ratio(o.ready_calls_per_ws_hour, c.ready_calls_per_ws_hour)
            ),
        ),
        all(
            "Last create → all Ready (baselines: all known AVAILABLE), s",
            &|f| format!("{:.1}", f.last_create_to_all_ready_s),
            String::new(),
        ),
        all(
            "Last AVAILABLE → all Ready / known, s",
            &|f| format!("{:.1}", f.last_available_to_all_ready_s),
            String::new(),
        ),
        all(
            "AVAILABLE → PVC Bound / noticed, p50 / p99, ms",
            &|f| pair((f.available_to_ready_p50_ms, f.available_to_ready_p99_ms)),
            String::new(),
        ),
        only(
            "First poll answer showing AVAILABLE → PVC Bound, p50 / p99, ms",
            o.seen_to_bound_ms.map(pair).unwrap_or_default(),
            "baselines: noticing is that answer",
        ),
        only(
            "… of which poll answer → claim made (the operator, and the binder's first look at the volume) / claim made → Bound (Kubernetes), p50 / p99, ms",
            split(o),
            "",
        ),
        only(
            "… and poll answer → claim made cut: → volume made (the operator) + → the volume's phase past Pending (the binder) + → claim made (the operator), p50 / p99, ms",
            claim_steps(o),
            "",
        ),
        only(
            "… the operator's part, per workspace: poll answer → volume made plus the volume's phase → claim made, p50 / p99, ms",
            o.operator_part_ms.map(pair).unwrap_or_default(),
            "target < 2 s",
        ),
        only(
            "Reconciles from the first AVAILABLE to every claim Bound: count, mean ms",
            reconciles(o),
            "",
        ),
        only(
            "… in that span, the poller's wake → the workspace's reconcile start: count, mean, p50 / p99 bucket",
            observed(o.burst_wake_wait),
            "",
        ),
        only(
            "… of that wait, the poller's wake → the controller's queue takes it in: count, mean, p50 / p99 bucket",
            observed(o.burst_wake_received),
            "",
        ),
        only(
            "… and the poll rounds: count, mean, p50 / p99 bucket",
            observed(o.burst_poll_rounds),
            "",
        ),
        only(
            "… reconciles running as each began, itself included: count, mean, p50 / p99 bucket",
            counted(o.burst_active),
            "at the controller's concurrency: it waited for a slot",
        ),
        only(
            "… CPU in that span: the cores busy; the operator's threads on a CPU / waiting for one; its controller task busy (of it its watches)",
            cpu(o),
            "",
        ),
        all(
            "Last delete → AWS empty (baselines: known empty), s",
            &|f| format!("{:.1}", f.last_delete_to_empty_s),
            String::new(),
        ),
        all(
            "AWS calls, whole run",
            &|f| f.total_aws_calls.to_string(),
            String::new(),
        ),
        only(
            "First apply → every claim Bound, s",
            format!("{:.1}", o.first_apply_to_all_bound_s),
            "",
        ),
        only(
            "Kubernetes requests per workspace, create path (all / reads; Events apart)",
            requests(o.create_requests.as_ref()),
            "first apply → every claim Bound",
        ),
        only(
            "Kubernetes requests per workspace, whole run (all / reads; Events apart)",
            requests(o.run_requests.as_ref()),
            "",
        ),
        only(
            "Kubernetes writes per workspace, whole run, Events apart (of them its status)",
            writes(o),
            "minimal 9 (3)",
        ),
        only(
            "Statuses a watch saw per workspace, by phase and Ready reason",
            o.shown_steps.clone().unwrap_or_default(),
            "",
        ),
        only(
            "Drift (a file system failed behind the operator's back) noticed after, s",
            opt(o.drift_detected_s, 1),
            &format!("drift interval {} s", args.drift_interval_seconds),
        ),
        only("Operator peak RSS (VmHWM), MiB", opt(o.rss_mib, 1), ""),
        only(
            "Operator RSS (VmRSS) before → with the pods counted, MiB",
            pods(o),
            "--pods: pods naming the claims, created once all are Bound",
        ),
        only("Operator CPU, s", opt(o.cpu_s, 1), ""),
        only(
            "Benchmark process CPU (sandbox API server, simulated AWS, driver), s",
            opt(o.world_cpu_s, 1),
            "the same 2 cores as the operator",
        ),
    ];
    let mut out = format!(
        "\n### {n} workspaces\n\nFile systems CREATING for {:.0} s. Pending window (last create → first AVAILABLE): ours {:.0} s, per-object {:.0} s, observe-all {:.0} s.\n\n| Figure | ours | per-object (ACK, CSI driver) | observe-all (Crossplane) | ours vs baselines |\n|---|---|---|---|---|\n",
        create_delay(args, n),
        o.pending_window_s,
        p.pending_window_s,
        c.pending_window_s
    );
    out.push_str(&rows.concat());
    out.push_str(&by_kind(&[("ours", o)]));
    out
}

/// The operator on the sandbox and on the real control plane, side by side.
pub(crate) fn clusters_table(n: usize, args: &Args, s: &Figures, r: &Figures) -> String {
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
        pair((f.available_to_ready_p50_ms, f.available_to_ready_p99_ms))
    }));
    out.push_str(&both(
        "First poll answer showing AVAILABLE → PVC Bound, p50 / p99, ms",
        &|f| f.seen_to_bound_ms.map(pair).unwrap_or_default(),
    ));
    out.push_str(&both(
        "… of which poll answer → claim made (the operator, and the binder's first look at the volume) / claim made → Bound (Kubernetes), p50 / p99, ms",
        &split,
    ));
    out.push_str(&both(
        "… and poll answer → claim made cut: → volume made (the operator) + → the volume's phase past Pending (the binder) + → claim made (the operator), p50 / p99, ms",
        &claim_steps,
    ));
    out.push_str(&both(
        "… the operator's part, per workspace: poll answer → volume made plus the volume's phase → claim made, p50 / p99, ms (target < 2 s)",
        &|f| {
            f.operator_part_ms
                .map(pair)
                .unwrap_or_default()
        },
    ));
    out.push_str(&both(
        "… and poll answer → volume made cut by the audit log: → its apply received (the operator) + → response complete (kube-apiserver), p50 / p99, ms",
        &|f| {
            f.apply_split_ms
                .map(|s| pairs(&s))
                .unwrap_or_else(|| "—".into())
        },
    ));
    out.push_str(&both(
        "Reconciles from the first AVAILABLE to every claim Bound: count, mean ms",
        &reconciles,
    ));
    out.push_str(&both(
        "… in that span, the poller's wake → the workspace's reconcile start: count, mean, p50 / p99 bucket",
        &|f| observed(f.burst_wake_wait),
    ));
    out.push_str(&both(
        "… of that wait, the poller's wake → the controller's queue takes it in: count, mean, p50 / p99 bucket",
        &|f| observed(f.burst_wake_received),
    ));
    out.push_str(&both(
        "… and the poll rounds: count, mean, p50 / p99 bucket",
        &|f| observed(f.burst_poll_rounds),
    ));
    out.push_str(&both(
        "… reconciles running as each began, itself included: count, mean, p50 / p99 bucket",
        &|f| counted(f.burst_active),
    ));
    out.push_str(&both(
        "… CPU in that span: the cores busy; the operator's threads on a CPU / waiting for one; its controller task busy (of it its watches)",
        &cpu,
    ));
    out.push_str(&both("Last delete → AWS empty, s", &|f| {
        format!("{:.1}", f.last_delete_to_empty_s)
    }));
    out.push_str(&both("AWS calls, whole run", &|f| {
        f.total_aws_calls.to_string()
    }));
    out.push_str(&both("First apply → every claim Bound, s", &|f| {
        format!("{:.1}", f.first_apply_to_all_bound_s)
    }));
    out.push_str(&both(
        "Kubernetes requests per workspace, create path (all / reads; Events apart)",
        &|f| requests(f.create_requests.as_ref()),
    ));
    out.push_str(&both(
        "Kubernetes requests per workspace, whole run (all / reads; Events apart)",
        &|f| requests(f.run_requests.as_ref()),
    ));
    out.push_str(&both(
        "Kubernetes writes per workspace, whole run, Events apart (of them its status; minimal 9 and 3)",
        &writes,
    ));
    out.push_str(&both(
        "Statuses a watch saw per workspace, by phase and Ready reason",
        &|f| f.shown_steps.clone().unwrap_or_default(),
    ));
    out.push_str(&both("Drift noticed after, s", &|f| {
        opt(f.drift_detected_s, 1)
    }));
    out.push_str(&both("Operator peak RSS (VmHWM), MiB", &|f| {
        opt(f.rss_mib, 1)
    }));
    out.push_str(&both(
        "Operator RSS (VmRSS) before → with the pods counted, MiB",
        &pods,
    ));
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
    out.push_str(&by_kind(&[("sandbox", s), ("real control plane", r)]));
    out
}

/// `previous` (a document) with its section between the markers `begin` and `end` replaced by
/// `section` where it stands, everything else kept (the hand-written reading around it); the
/// section appended where the document has none.
pub(crate) fn with_section(previous: &str, (begin, end): (&str, &str), section: &str) -> String {
    let new = format!("{begin}\n{}\n{end}", section.trim_end());
    match previous
        .find(begin)
        .zip(previous.find(end))
        .filter(|(b, e)| b < e)
    {
        Some((b, e)) => format!("{}{new}{}", &previous[..b], &previous[e + end.len()..]),
        None if previous.trim().is_empty() => format!("# Benchmarks\n\n{new}\n"),
        None => format!("{}\n\n{new}\n", previous.trim_end()),
    }
}

/// Per workspace: all requests but Events, and the reads among them.
fn requests(r: Option<&Requests>) -> String {
    r.map(|r| format!("{:.2} / {:.2}", r.per_ws, r.reads_per_ws))
        .unwrap_or_default()
}

/// The operator's requests per workspace by verb and resource, on the create path and over
/// the whole run, a column pair per run.
fn by_kind(runs: &[(&str, &Figures)]) -> String {
    let mut out = String::from(
        "\nThe operator's Kubernetes requests per workspace, by verb and resource (each server's audit record, told by the operator's user agent): on the create path (first apply → every claim Bound) / over the whole run. Watches are long-lived: their count is per workspace too, and falls as workspaces grow.\n\n| Request |",
    );
    for (name, _) in runs {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(runs.len()));
    out.push('\n');
    let kinds: std::collections::BTreeSet<&String> = runs
        .iter()
        .flat_map(|(_, f)| f.run_requests.iter().flat_map(|r| r.by_kind.keys()))
        .collect();
    let per = |r: &Option<Requests>, what: &str| {
        r.as_ref()
            .and_then(|r| r.by_kind.get(what))
            .copied()
            .unwrap_or(0.0)
    };
    for what in kinds {
        out.push_str(&format!("| {what} |"));
        for (_, f) in runs {
            out.push_str(&format!(
                " {:.2} / {:.2} |",
                per(&f.create_requests, what),
                per(&f.run_requests, what)
            ));
        }
        out.push('\n');
    }
    out
}

/// The pods phase as a cell: `before → after (+growth) with N pods, counted in T s`.
fn pods(f: &Figures) -> String {
    match &f.pods {
        Some(p) => format!(
            "{:.1} → {:.1} (+{:.1}) with {} pods, counted in {:.1} s",
            p.rss_before_mib,
            p.rss_after_mib,
            p.rss_after_mib - p.rss_before_mib,
            p.count,
            p.counted_s
        ),
        None => "not run (--pods 0)".into(),
    }
}

/// The poll answer → Bound span cut where the claim appears.
fn split(f: &Figures) -> String {
    match (f.seen_to_claim_ms, f.claim_to_bound_ms) {
        (Some(a), Some(b)) => pairs(&[a, b]),
        _ => String::new(),
    }
}

/// The poll answer → claim made span cut where the volume appears and where the binder
/// stores it.
fn claim_steps(f: &Figures) -> String {
    f.claim_steps_ms.map(|s| pairs(&s)).unwrap_or_default()
}

/// A p50 / p99 pair, in whole units.
fn pair((p50, p99): (f64, f64)) -> String {
    format!("{p50:.0} / {p99:.0}")
}

/// Consecutive parts of a span, each a p50 / p99 pair.
fn pairs(parts: &[(f64, f64)]) -> String {
    parts
        .iter()
        .copied()
        .map(pair)
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Writes per workspace, Events apart, and of them status patches.
fn writes(f: &Figures) -> String {
    f.writes_per_ws
        .map(|(all, status)| format!("{all:.2} ({status:.2})"))
        .unwrap_or_default()
}

/// A histogram's span: count, mean, and the buckets of its p50 and p99, in seconds.
fn observed(o: Option<crate::pods::Observed>) -> String {
    span(o, " s")
}

/// The same for a histogram of counts (its "seconds" are counts).
fn counted(o: Option<crate::pods::Observed>) -> String {
    span(o, "")
}

fn span(o: Option<crate::pods::Observed>, unit: &str) -> String {
    o.map(|o| {
        format!(
            "{:.0}, {:.2}{unit}, ≤ {} / ≤ {}{unit}",
            o.count, o.mean_s, o.p50_le, o.p99_le
        )
    })
    .unwrap_or_default()
}

/// Where the CPU went in the burst (see [`crate::BurstCpu`]).
fn cpu(f: &Figures) -> String {
    f.burst_cpu
        .map(|c| {
            format!(
                "{:.0} % of {:.0} s; {:.1} / {:.1} s; {:.1} s ({:.1} s)",
                100.0 * c.machine_busy,
                c.span_s,
                c.on_cpu_s,
                c.run_queue_s,
                c.controller_s,
                c.watches_s
            )
        })
        .unwrap_or_default()
}

/// The reconciles of the AVAILABLE burst: how many, and how long each took on average.
fn reconciles(f: &Figures) -> String {
    f.burst_reconciles
        .map(|(n, ms)| format!("{n:.0}, {ms:.1}"))
        .unwrap_or_default()
}
