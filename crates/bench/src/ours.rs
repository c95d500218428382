//! The operator's run: the real binary against the sandbox or a real control plane.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_sandbox::aws::{SimAws, SimConfig};
use serde_json::json;

use crate::cluster::{ApiServer, Cluster};
use crate::world::*;
use crate::{Args, Figures, Requests};

/// The workspaces the driver creates: `ws-00000` .. spread over the namespaces in turn.
fn workspace_names(namespaces: &[String], n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                namespaces[i % namespaces.len()].clone(),
                format!("ws-{i:05}"),
            )
        })
        .collect()
}

pub(crate) async fn ours(args: &Args, n: usize, cluster: Cluster) -> anyhow::Result<Figures> {
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
    let (sim, client) = (server.sim.clone(), server.client.clone());
    let namespaces = install(&client, args).await?;
    let control_plane_before: Vec<Option<f64>> = server
        .processes()
        .iter()
        .map(|p| proc_usage(p.pid).1)
        .collect();
    let metrics = crate::pods::free_metrics_addr()?;
    let mut operator = start_operator(args, &server, &dir, &metrics)?;
    let pid = operator.id().context("operator pid")?;
    eprintln!("   operator started (pid {pid}) on the {}", cluster.name());
    until(
        "the operator's start-up check",
        Duration::from_secs(60),
        || sim.calls("DescribeSubnets") > 0,
    )
    .await?;
    let audit_start = server.audit_mark();
    let (workspaces, claims, shown) = watch_world(&client);

    // Create.
    let names = workspace_names(&namespaces, n);
    let first_apply = Instant::now();
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
    let before_burst = crate::pods::reconciled(&metrics).await.ok();
    let wakes_before = crate::pods::wakes(&metrics).await.unwrap_or_default();
    let clocks_before = burst_clocks(&metrics).await;
    let cpu_before = CpuMark::now(&metrics, pid).await;
    until("all Ready", Duration::from_secs(3600), || {
        in_phase(&workspaces, "Ready") == n
    })
    .await?;
    let all_ready = Instant::now();
    eprintln!("   all Ready");
    f.last_create_to_all_ready_s = (all_ready - last_create).as_secs_f64();
    until("every claim Bound", Duration::from_secs(600), || {
        claims.lock().unwrap_or_else(|p| p.into_inner()).bound.len() >= n
    })
    .await?;
    f.first_apply_to_all_bound_s = first_apply.elapsed().as_secs_f64();
    f.burst_cpu = CpuMark::now(&metrics, pid).await.since(&cpu_before);
    if let (Some((n0, s0)), Ok((n1, s1))) = (before_burst, crate::pods::reconciled(&metrics).await)
    {
        f.burst_reconciles = Some((n1 - n0, 1000.0 * (s1 - s0) / (n1 - n0).max(1.0)));
    }
    if let Some([wait, received, rounds, active]) = clocks_before {
        let after = burst_clocks(&metrics).await;
        if let Some([wait1, received1, rounds1, active1]) = after {
            f.burst_wake_wait = wait1.since(&wait);
            f.burst_wake_received = received1.since(&received);
            f.burst_poll_rounds = rounds1.since(&rounds);
            f.burst_active = active1.since(&active);
        }
    }
    if let Some(c) = f.burst_cpu {
        eprintln!(
            "   CPU over the {:.0} s: cores {:.0} % busy; the operator on a CPU {:.1} s, waiting for one {:.1} s; its controller task busy {:.1} s (watches {:.1} s)",
            c.span_s,
            100.0 * c.machine_busy,
            c.on_cpu_s,
            c.run_queue_s,
            c.controller_s,
            c.watches_s
        );
    }
    for (what, o, unit) in [
        ("poller's wake → reconcile start", f.burst_wake_wait, " s"),
        (
            "poller's wake → the queue takes it in",
            f.burst_wake_received,
            " s",
        ),
        ("poll rounds", f.burst_poll_rounds, " s"),
        ("reconciles running as one began", f.burst_active, ""),
    ] {
        if let Some(o) = o {
            eprintln!(
                "   {what}: {:.0}, mean {:.3}{unit}, p50 ≤ {}{unit}, p99 ≤ {}{unit}",
                o.count, o.mean_s, o.p50_le, o.p99_le
            );
        }
    }
    let create_path = server.requests_since(audit_start);
    f.create_requests = Some(Requests::of(&create_path, n));
    eprintln!(
        "   every claim Bound {:.1} s after the first apply; {:.1} Kubernetes requests per workspace (Events apart)",
        f.first_apply_to_all_bound_s,
        f.create_requests.as_ref().map_or(0.0, |r| r.per_ws)
    );
    if let Some((count, mean_ms)) = f.burst_reconciles {
        eprintln!(
            "   from the first AVAILABLE to every claim Bound: {count:.0} reconciles, {mean_ms:.1} ms each on average"
        );
    }
    if let Ok(after) = crate::pods::wakes(&metrics).await {
        let per_ws: Vec<String> = after
            .iter()
            .map(|(source, v)| {
                let v0 = wakes_before
                    .iter()
                    .find(|(s, _)| s == source)
                    .map_or(0.0, |(_, v)| *v);
                format!("{source} {:.2}", (v - v0) / n as f64)
            })
            .collect();
        eprintln!("   wakes per workspace in that span: {}", per_ws.join(", "));
    }
    let applies = server.volume_applies_since(audit_start);
    ready_figures(&mut f, &sim, &workspaces, &claims, all_ready, &applies);
    if let Some(steps) = f.claim_steps_ms {
        eprintln!(
            "   poll answer → volume made (operator) / → its phase past Pending (binder) / → claim made (operator), p50 / p99 ms: {steps:.0?}"
        );
    }
    if let Some((p50, p99)) = f.operator_part_ms {
        eprintln!("   the operator's part of that, both added, p50 / p99 ms: {p50:.0} / {p99:.0}");
    }
    if let Some(split) = f.apply_split_ms {
        eprintln!(
            "   poll answer → the volume's apply received by kube-apiserver (operator) / → its response complete (kube-apiserver), p50 / p99 ms: {split:.0?}"
        );
    }
    if args.pods > 0 {
        f.pods = Some(crate::pods::pods_phase(&client, &names, args.pods, pid, &metrics).await?);
    }

    hold(&mut f, args, &sim, &workspaces, n).await;
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
    // 446.6 s at 10,000 on the real control plane (`6b6a475`): half an hour is a leak.
    let empty = until("AWS empty", Duration::from_secs(1800), || {
        sim.snapshot()["fileSystems"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    if let Err(e) = empty {
        return Err(e.context(format!("left in AWS: {}", left_in_aws(&sim))));
    }
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
    f.run_requests = Some(Requests::of(&server.requests_since(audit_start), n));
    f.statuses_shown = Some(shown.count() as f64 / n as f64);
    if let Some(r) = &f.run_requests {
        let sum = |keep: &dyn Fn(&str) -> bool| -> f64 {
            r.by_kind
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(_, v)| v)
                .sum()
        };
        let writes = sum(&|k| {
            ["create ", "patch ", "update ", "delete "]
                .iter()
                .any(|v| k.starts_with(v))
                && !k.contains("events")
        });
        let status = sum(&|k| k.starts_with("patch lustreworkspaces") && k.ends_with("/status"));
        eprintln!(
            "   whole run: {writes:.2} Kubernetes writes per workspace (Events apart), {status:.2} of them its status; {:.2} statuses shown per workspace",
            shown.count() as f64 / n as f64
        );
        f.writes_per_ws = Some((writes, status));
    }
    f.shown_steps = Some(shown.by_step(n));
    eprintln!(
        "   statuses shown by step, per workspace: {}",
        f.shown_steps.as_deref().unwrap_or_default()
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), operator.wait()).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(f)
}

/// The CRDs, the namespaces (labelled for the class) and the default class; returns the
/// namespaces' names.
async fn install(client: &kube::Client, args: &Args) -> anyhow::Result<Vec<String>> {
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
    Ok(namespaces)
}

/// The operator binary, run against the server and the simulated AWS, its log in `dir`.
fn start_operator(
    args: &Args,
    server: &ApiServer,
    dir: &std::path::Path,
    metrics: &str,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(dir.join("operator.log"))?;
    tokio::process::Command::new(&args.operator)
        .args([
            "run",
            "--metrics-addr",
            metrics,
            "--aws-endpoint-url",
            &server.aws_url,
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
        .context("starting lustre-operator")
}

/// Claims' first sightings (the operator made them) and first Bound moments, by
/// `namespace/name`; and, by the claim their `claimRef` names, volumes' first sightings
/// (the operator made them) and the first moment their phase left `Pending` (the binder
/// stored them).
#[derive(Default)]
struct ClaimTimes {
    made: BTreeMap<String, Instant>,
    bound: BTreeMap<String, Instant>,
    volume_made: BTreeMap<String, Instant>,
    volume_phase: BTreeMap<String, Instant>,
    /// Volume name → the claim key its `claimRef` names.
    volume_claims: BTreeMap<String, String>,
}

type Claims = Arc<std::sync::Mutex<ClaimTimes>>;

/// What the driver sees, through the API on either server: every workspace (a watch cache),
/// and the first time each claim is Bound (a watch of claims).
fn watch_world(client: &kube::Client) -> (reflector::Store<LustreWorkspace>, Claims, Shown) {
    let (workspaces, writer) = reflector::store::<LustreWorkspace>();
    let shown = Shown::default();
    let record = shown.clone();
    tokio::spawn(
        watcher(
            Api::<LustreWorkspace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .for_each(move |ws| {
            if let Ok(ws) = ws {
                record.saw(&ws);
            }
            async {}
        }),
    );
    let claims: Claims = Arc::default();
    {
        let claims = claims.clone();
        let seen = watcher(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .applied_objects();
        tokio::spawn(seen.for_each(move |claim| {
            if let Ok(c) = claim {
                let key = ns_key(c.metadata.namespace.as_deref(), c.metadata.name.as_deref());
                let now = Instant::now();
                let mut times = claims.lock().unwrap_or_else(|p| p.into_inner());
                times.made.entry(key.clone()).or_insert(now);
                if c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
                    times.bound.entry(key).or_insert(now);
                }
            }
            async {}
        }));
    }

    watch_volumes(client, claims.clone());
    (workspaces, claims, shown)
}

/// The operator's wake-wait, wake-received and poll-round histograms, and its reconciles
/// running as each began, as they stand (`None`: not read).
async fn burst_clocks(metrics: &str) -> Option<[crate::pods::Histogram; 4]> {
    Some([
        crate::pods::histogram(metrics, "lustre_operator_wake_wait_seconds")
            .await
            .ok()?,
        crate::pods::histogram(metrics, "lustre_operator_wake_received_seconds")
            .await
            .ok()?,
        crate::pods::histogram(metrics, "lustre_operator_poll_round_seconds")
            .await
            .ok()?,
        crate::pods::histogram(metrics, "lustre_operator_reconciles_active_at_start")
            .await
            .ok()?,
    ])
}

/// Where the CPU had gone at one moment: the machine's, the operator's threads', and the
/// operator's controller task's (see [`crate::BurstCpu`]).
struct CpuMark {
    at: Instant,
    machine: Option<(u64, u64)>,
    operator: Option<(f64, f64)>,
    busy: Vec<(String, f64)>,
}

impl CpuMark {
    async fn now(metrics: &str, pid: u32) -> Self {
        let busy = "lustre_operator_controller_busy_seconds_total";
        Self {
            at: Instant::now(),
            machine: machine_cpu(),
            operator: sched_times(pid),
            busy: crate::pods::by_label(metrics, busy, "part")
                .await
                .unwrap_or_default(),
        }
    }

    /// What went between `before` and this mark (`None` if a figure could not be read).
    fn since(&self, before: &CpuMark) -> Option<crate::BurstCpu> {
        let ((busy1, all1), (busy0, all0)) = (self.machine?, before.machine?);
        let ((cpu1, wait1), (cpu0, wait0)) = (self.operator?, before.operator?);
        let part =
            |mark: &CpuMark, name: &str| mark.busy.iter().find(|(p, _)| p == name).map(|(_, v)| *v);
        let grew = |name: &str| Some(part(self, name)? - part(before, name).unwrap_or(0.0));
        Some(crate::BurstCpu {
            span_s: (self.at - before.at).as_secs_f64(),
            machine_busy: (busy1 - busy0) as f64 / (all1 - all0).max(1) as f64,
            on_cpu_s: cpu1 - cpu0,
            run_queue_s: wait1 - wait0,
            controller_s: grew("all")?,
            watches_s: grew("watches")?,
        })
    }
}

/// The `namespace/name` key the driver's maps use for a namespaced object.
fn ns_key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

/// Records each volume's first sighting and the first moment its phase is past `Pending`,
/// by the claim its `claimRef` names.
fn watch_volumes(client: &kube::Client, claims: Claims) {
    let seen = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    tokio::spawn(seen.for_each(move |pv| {
        if let Ok(pv) = pv
            && let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
        {
            let key = ns_key(claim.namespace.as_deref(), claim.name.as_deref());
            let now = Instant::now();
            let mut times = claims.lock().unwrap_or_else(|p| p.into_inner());
            times
                .volume_claims
                .entry(pv.metadata.name.clone().unwrap_or_default())
                .or_insert_with(|| key.clone());
            times.volume_made.entry(key.clone()).or_insert(now);
            let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
            if phase.is_some_and(|p| p != "Pending") {
                times.volume_phase.entry(key).or_insert(now);
            }
        }
        async {}
    }));
}

/// What each workspace shows (phase, Ready's reason and message), how many times that
/// changed in all, and how many of those changes were to each step (phase and reason).
#[derive(Clone, Default)]
struct Shown(Arc<std::sync::Mutex<ShownState>>);

#[derive(Default)]
struct ShownState {
    now: BTreeMap<String, String>,
    changes: usize,
    by_step: BTreeMap<String, usize>,
}

impl Shown {
    fn saw(&self, ws: &LustreWorkspace) {
        let Some(status) = &ws.status else { return };
        let ready = status.conditions.first();
        let step = format!(
            "{}/{}",
            status.phase.map_or("-".into(), |p| format!("{p:?}")),
            ready.map_or("-", |c| c.reason.as_str())
        );
        let now = format!("{step} {}", ready.map_or("", |c| c.message.as_str()));
        let key = ns_key(
            ws.metadata.namespace.as_deref(),
            ws.metadata.name.as_deref(),
        );
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.now.get(&key) != Some(&now) {
            seen.now.insert(key, now);
            seen.changes += 1;
            *seen.by_step.entry(step).or_default() += 1;
        }
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).changes
    }

    /// The steps shown, per workspace, most shown first.
    fn by_step(&self, n: usize) -> String {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut steps: Vec<(&String, &usize)> = seen.by_step.iter().collect();
        steps.sort_by(|a, b| b.1.cmp(a.1));
        steps
            .iter()
            .map(|(step, count)| format!("{step} {:.2}", **count as f64 / n.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn in_phase(workspaces: &reflector::Store<LustreWorkspace>, phase: &str) -> usize {
    workspaces
        .state()
        .iter()
        .filter(|w| phase_of(w).as_deref() == Some(phase))
        .count()
}

/// From AVAILABLE (and from the operator's first sight of it) to each claim Bound, and that
/// last span cut where the claim appears: the operator's part (poll answer → claim made; it
/// includes the binder's first look at the volume, which the claim waits for) and
/// Kubernetes' (claim made → Bound, kube-controller-manager's PV binder on a real control
/// plane).
fn ready_figures(
    f: &mut Figures,
    sim: &SimAws,
    workspaces: &reflector::Store<LustreWorkspace>,
    claims: &Claims,
    all_ready: Instant,
    applies: &std::collections::HashMap<String, (Instant, Instant)>,
) {
    let available = sim.available_times();
    let seen = sim.seen_available_times();
    let last_available = available.values().max().copied().unwrap_or(all_ready);
    f.last_available_to_all_ready_s = all_ready
        .saturating_duration_since(last_available)
        .as_secs_f64();
    let times = claims.lock().unwrap_or_else(|p| p.into_inner());
    let applied: BTreeMap<&String, (Instant, Instant)> = applies
        .iter()
        .filter_map(|(volume, at)| Some((times.volume_claims.get(volume)?, *at)))
        .collect();
    let state = workspaces.state();
    let moments: Vec<Moments> = state
        .iter()
        .filter_map(|w| {
            let status = w.status.as_ref()?;
            let key = ns_key(
                Some(w.metadata.namespace.as_deref()?),
                Some(status.claim_name.as_deref()?),
            );
            let fs = status.file_system_id.as_deref()?;
            Some(Moments {
                available: available.get(fs).copied(),
                seen: seen.get(fs).copied(),
                volume_made: times.volume_made.get(&key).copied(),
                volume_phase: times.volume_phase.get(&key).copied(),
                apply: applied.get(&key).copied(),
                made: times.made.get(&key).copied(),
                bound: *times.bound.get(&key)?,
            })
        })
        .collect();
    let lags = |span: fn(&Moments) -> Option<(Instant, Instant)>| {
        let mut lags: Vec<f64> = moments
            .iter()
            .filter_map(span)
            .map(|(from, to)| to.saturating_duration_since(from).as_secs_f64() * 1000.0)
            .collect();
        lags.sort_by(f64::total_cmp);
        (percentile(&lags, 0.5), percentile(&lags, 0.99))
    };
    (f.available_to_ready_p50_ms, f.available_to_ready_p99_ms) =
        lags(|m| Some((m.available?, m.bound)));
    f.seen_to_bound_ms = Some(lags(|m| Some((m.seen?, m.bound))));
    f.seen_to_claim_ms = Some(lags(|m| Some((m.seen?, m.made?))));
    f.claim_to_bound_ms = Some(lags(|m| Some((m.made?, m.bound))));
    f.claim_steps_ms = Some([
        lags(|m| Some((m.seen?, m.volume_made?))),
        lags(|m| Some((m.volume_made?, m.volume_phase?))),
        lags(|m| Some((m.volume_phase?, m.made?))),
    ]);
    // The operator's two parts of one workspace's wait, added.
    let mut own: Vec<f64> = moments
        .iter()
        .filter_map(|m| {
            let volume = m.volume_made?.saturating_duration_since(m.seen?);
            let claim = m.made?.saturating_duration_since(m.volume_phase?);
            Some((volume + claim).as_secs_f64() * 1000.0)
        })
        .collect();
    own.sort_by(f64::total_cmp);
    f.operator_part_ms = Some((percentile(&own, 0.5), percentile(&own, 0.99)));
    if !applied.is_empty() {
        f.apply_split_ms = Some([
            lags(|m| Some((m.seen?, m.apply?.0))),
            lags(|m| Some((m.apply?.0, m.apply?.1))),
        ]);
    }
}

/// One workspace's moments: its file system AVAILABLE, the operator's first poll answer
/// showing it so, its volume made and stored by the binder (phase past `Pending`), its
/// claim first seen (made), and Bound.
struct Moments {
    available: Option<Instant>,
    seen: Option<Instant>,
    volume_made: Option<Instant>,
    volume_phase: Option<Instant>,
    /// Its volume's apply: received by kube-apiserver, response complete (audit log).
    apply: Option<(Instant, Instant)>,
    made: Option<Instant>,
    bound: Instant,
}

/// Holds every workspace Ready for the hold period, with one file system changed behind the
/// operator's back (drift), counting AWS calls.
async fn hold(
    f: &mut Figures,
    args: &Args,
    sim: &SimAws,
    workspaces: &reflector::Store<LustreWorkspace>,
    n: usize,
) {
    let hold_start = Instant::now();
    let before = total(sim);
    let victim = workspaces
        .state()
        .first()
        .and_then(|w| w.status.as_ref()?.file_system_id.clone());
    if let Some(id) = &victim {
        sim.fail_file_system(id, "benchmark: failed behind the operator's back");
    }
    let hold = Duration::from_secs_f64(args.hold_seconds);
    while hold_start.elapsed() < hold {
        if f.drift_detected_s.is_none() && in_phase(workspaces, "Failed") == 1 {
            f.drift_detected_s = Some(hold_start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.ready_calls_per_ws_hour =
        (total(sim) - before) as f64 / n as f64 / (args.hold_seconds / 3600.0);
}

/// The file systems still in the simulated AWS (the first 20): id, lifecycle and the
/// workspace their tags name.
fn left_in_aws(sim: &lustre_sandbox::aws::SimAws) -> String {
    let snapshot = sim.snapshot();
    let all = snapshot["fileSystems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named: Vec<String> = all
        .iter()
        .take(20)
        .map(|fs| {
            let tag = |k: &str| fs["tags"][k].as_str().unwrap_or("?").to_string();
            format!(
                "{} {} ({}/{})",
                fs["id"].as_str().unwrap_or("?"),
                fs["lifecycle"].as_str().unwrap_or("?"),
                tag(lustre_api::constants::tags::NAMESPACE),
                tag(lustre_api::constants::tags::NAME),
            )
        })
        .collect();
    format!("{} file systems: {}", all.len(), named.join(", "))
}
