//! The polling baselines: the calls their models prescribe, through the same AWS adapter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lustre_cloud::FileSystems;
use lustre_cloud::aws::{AwsCloud, AwsSettings};
use lustre_sandbox::aws::SimAws;

use crate::world::*;
use crate::{Args, Figures};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Model {
    /// Pending: every `pending` s each on its own; Ready: every `ready` s each on its own.
    PerObject { pending: f64, ready: f64 },
    /// Every object on its own every `every` s, pending or Ready.
    ObserveAll { every: f64 },
}

impl Model {
    /// How often a pending file system is described.
    fn pending_every(self) -> f64 {
        match self {
            Model::PerObject { pending, .. } => pending,
            Model::ObserveAll { every } => every,
        }
    }
}

/// A client of the simulated AWS through the real adapter.
async fn adapter(aws_url: String) -> Arc<AwsCloud> {
    Arc::new(
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
    )
}

/// Creates `n` SCRATCH_2 file systems, 32 at a time; returns their ids.
async fn create_all(cloud: &Arc<AwsCloud>, n: usize) -> anyhow::Result<Vec<String>> {
    Ok(futures::stream::iter(0..n)
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
        .collect::<Result<_, _>>()?)
}

/// Describes each given file system on its own, 64 at a time; returns those seen AVAILABLE
/// and when.
async fn available_among(cloud: &Arc<AwsCloud>, ids: Vec<String>) -> Vec<(String, Instant)> {
    futures::stream::iter(ids)
        .map(|id| {
            let cloud = cloud.clone();
            async move {
                let fs = cloud.describe_file_systems(std::slice::from_ref(&id)).await;
                match fs {
                    Ok(v)
                        if v.first()
                            .is_some_and(|f| f.lifecycle == lustre_cloud::Lifecycle::Available) =>
                    {
                        Some((id, Instant::now()))
                    }
                    _ => None,
                }
            }
        })
        .buffer_unordered(64)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Describes each given file system on its own; returns those that are gone.
async fn gone_among(cloud: &Arc<AwsCloud>, ids: Vec<String>) -> Vec<String> {
    futures::stream::iter(ids)
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
        .await
}

pub(crate) async fn baseline(args: &Args, n: usize, model: Model) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let (sim, aws_url) = serve_sim(args, n).await?;
    let cloud = adapter(aws_url).await;
    let ids = create_all(&cloud, n).await?;
    let last_create = Instant::now();
    until_all_known(&mut f, &sim, &cloud, &ids, model, last_create).await;
    hold(&mut f, args, &sim, &cloud, &ids, model).await;

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
    let mut tick = tokio::time::interval(Duration::from_secs_f64(model.pending_every()));
    while !left.is_empty() {
        tick.tick().await;
        let gone = gone_among(&cloud, left.clone()).await;
        left.retain(|i| !gone.contains(i));
    }
    f.last_delete_to_empty_s = last_delete.elapsed().as_secs_f64();
    f.total_aws_calls = total(&sim);
    Ok(f)
}

/// Polling rounds on the model's interval until every file system is known AVAILABLE, with
/// the pending window measured on the simulated AWS's counter meanwhile.
async fn until_all_known(
    f: &mut Figures,
    sim: &SimAws,
    cloud: &Arc<AwsCloud>,
    ids: &[String],
    model: Model,
    last_create: Instant,
) {
    let n = ids.len();
    let mut known: BTreeMap<String, Instant> = BTreeMap::new();
    let mut window: Option<(u64, f64)> = None;
    let before = describes(sim);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(model.pending_every()));
    while known.len() < n {
        tick.tick().await;
        if window.is_none() && !sim.available_times().is_empty() {
            let first = first_available(sim);
            // Calls before the first AVAILABLE: all rounds so far started before it.
            window = Some((
                describes(sim) - before,
                first.saturating_duration_since(last_create).as_secs_f64(),
            ));
        }
        let todo: Vec<String> = match model {
            Model::PerObject { .. } => ids
                .iter()
                .filter(|i| !known.contains_key(*i))
                .cloned()
                .collect(),
            Model::ObserveAll { .. } => ids.to_vec(),
        };
        for (id, at) in available_among(cloud, todo).await {
            known.entry(id).or_insert(at);
        }
    }
    let all_known = Instant::now();
    let (calls, win) =
        window.unwrap_or((describes(sim) - before, last_create.elapsed().as_secs_f64()));
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
}

/// Every file system held AVAILABLE for the hold period, re-read as the model prescribes;
/// counts the calls.
async fn hold(
    f: &mut Figures,
    args: &Args,
    sim: &SimAws,
    cloud: &Arc<AwsCloud>,
    ids: &[String],
    model: Model,
) {
    let n = ids.len();
    let before = total(sim);
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
            available_among(cloud, due).await;
        }
        Model::ObserveAll { every } => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every));
            while hold_start.elapsed().as_secs_f64() + 1e-3 < args.hold_seconds {
                tick.tick().await;
                if hold_start.elapsed().as_secs_f64() >= args.hold_seconds {
                    break;
                }
                available_among(cloud, ids.to_vec()).await;
            }
        }
    }
    let rest = Duration::from_secs_f64(args.hold_seconds).saturating_sub(hold_start.elapsed());
    tokio::time::sleep(rest).await;
    f.ready_calls_per_ws_hour =
        (total(sim) - before) as f64 / n as f64 / (args.hold_seconds / 3600.0);
}
