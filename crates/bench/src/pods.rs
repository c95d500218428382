//! What the operator's pod watch costs (`--pods N`): once every claim is Bound, N pods that
//! name the workspaces' claims are created (they count as unfinished for the
//! idle clock), and the operator's resident memory is read before and after it has counted
//! them all (its `lustre_operator_pods_using_claims` metric says so); then they are deleted.

use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::world::for_each_workspace;

/// The figures of the pods phase.
#[derive(Debug, Default, Clone)]
pub(crate) struct PodFigures {
    pub count: usize,
    /// The operator's VmRSS before the pods and once it counted them, MiB.
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// From the first pod created to all of them counted, s.
    pub counted_s: f64,
}

/// A free loopback port for the operator's metrics.
pub(crate) fn free_metrics_addr() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// Creates `count` pods over the workspaces' claims (`names`: namespace and claim), waits
/// for the operator to count them, and reads its memory around it.
pub(crate) async fn pods_phase(
    client: &kube::Client,
    names: &[(String, String)],
    count: usize,
    pid: u32,
    metrics: &str,
) -> anyhow::Result<PodFigures> {
    let rss_before_mib = vm_rss(pid).context("the operator's VmRSS")?;
    let pods: Vec<(String, String)> = (0..count)
        .map(|i| {
            let (ns, claim) = &names[i % names.len()];
            (ns.clone(), format!("{claim}/{i}"))
        })
        .collect();
    let start = Instant::now();
    for_each_workspace(&pods, |ns, claim_and_index| {
        let client = client.clone();
        async move {
            let (claim, i) = claim_and_index
                .split_once('/')
                .context("claim/index")?;
            let pod: Pod = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("job-{i}"), "namespace": ns},
                "spec": {
                    "containers": [{"name": "train", "image": "public.ecr.aws/docker/library/python:3.12-slim",
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
                }
            }))?;
            Api::<Pod>::namespaced(client, &ns)
                .create(&PostParams::default(), &pod)
                .await?;
            Ok(())
        }
    })
    .await?;
    eprintln!("   created {count} pods naming the claims");
    let mut counted = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while counted < count && Instant::now() < deadline {
        counted = pods_counted(metrics).await.unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::ensure!(
        counted >= count,
        "the operator counted {counted} of {count} pods within 600 s"
    );
    let counted_s = start.elapsed().as_secs_f64();
    let rss_after_mib = vm_rss(pid).context("the operator's VmRSS")?;
    eprintln!(
        "   operator VmRSS {rss_before_mib:.1} MiB before the pods, {rss_after_mib:.1} MiB with {count} counted ({counted_s:.1} s)"
    );
    // The pods go (as a Job's ttlSecondsAfterFinished would take them): a scheduled pod that
    // names a claim keeps it through pvc-protection, and the workspaces' deletion follows.
    for_each_workspace(&pods, |ns, claim_and_index| {
        let client = client.clone();
        async move {
            let (_, i) = claim_and_index.split_once('/').context("claim/index")?;
            let params = kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            Api::<Pod>::namespaced(client, &ns)
                .delete(&format!("job-{i}"), &params)
                .await?;
            Ok(())
        }
    })
    .await?;
    eprintln!("   deleted the {count} pods");
    Ok(PodFigures {
        count,
        rss_before_mib,
        rss_after_mib,
        counted_s,
    })
}

/// The operator's `/metrics` page.
async fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// The value of the sample named `name` (with its labels, if any) on a `/metrics` page.
fn sample(body: &str, name: &str) -> anyhow::Result<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .with_context(|| format!("no {name} in /metrics"))?
        .trim()
        .parse::<f64>()
        .context("a number")
}

/// The operator's `lustre_operator_pods_using_claims`, read from its `/metrics`.
async fn pods_counted(addr: &str) -> anyhow::Result<usize> {
    let body = scrape(addr).await?;
    Ok(sample(&body, "lustre_operator_pods_using_claims")? as usize)
}

/// The operator's workspace reconciles so far: how many, and their seconds in all (its
/// `lustre_operator_reconcile_duration_seconds` histogram).
pub(crate) async fn reconciled(addr: &str) -> anyhow::Result<(f64, f64)> {
    let body = scrape(addr).await?;
    let metric = "lustre_operator_reconcile_duration_seconds";
    Ok((
        sample(&body, &format!("{metric}_count{{kind=\"workspace\"}}"))?,
        sample(&body, &format!("{metric}_sum{{kind=\"workspace\"}}"))?,
    ))
}

/// A histogram on the operator's `/metrics` page: its cumulative counts by bucket bound
/// (seconds), and its sum.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
}

/// What a histogram observed in a span: how many, their mean, and the bounds of the buckets
/// holding the p50 and the p99 (seconds; a bucket's bound, not the value).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observed {
    pub count: f64,
    pub mean_s: f64,
    pub p50_le: f64,
    pub p99_le: f64,
}

/// The operator's histogram `name` (without labels) as it stands.
pub(crate) async fn histogram(addr: &str, name: &str) -> anyhow::Result<Histogram> {
    read_histogram(&scrape(addr).await?, name)
}

/// Histogram `name` on a `/metrics` page.
fn read_histogram(body: &str, name: &str) -> anyhow::Result<Histogram> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets = body
        .lines()
        .filter_map(|l| {
            let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
            let le = match le {
                "+Inf" => f64::INFINITY,
                le => le.parse().ok()?,
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    Ok(Histogram {
        buckets,
        sum: sample(body, &format!("{name}_sum"))?,
    })
}

impl Histogram {
    /// What was observed after `before` was read (`None`: nothing).
    pub(crate) fn since(&self, before: &Histogram) -> Option<Observed> {
        let earlier = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c)
        };
        let buckets: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|&(le, c)| (le, c - earlier(le)))
            .collect();
        let count = buckets.last()?.1;
        if count <= 0.0 {
            return None;
        }
        let at = |q: f64| {
            buckets
                .iter()
                .find(|(_, c)| *c >= q * count)
                .map_or(f64::INFINITY, |(le, _)| *le)
        };
        Some(Observed {
            count,
            mean_s: (self.sum - before.sum) / count,
            p50_le: at(0.5),
            p99_le: at(0.99),
        })
    }
}

/// The operator's workspace wake-ups so far by source (`lustre_operator_wakes_total`).
pub(crate) async fn wakes(addr: &str) -> anyhow::Result<Vec<(String, f64)>> {
    by_label(addr, "lustre_operator_wakes_total", "source").await
}

/// A metric's series of one label, by that label's value.
pub(crate) async fn by_label(
    addr: &str,
    name: &str,
    label: &str,
) -> anyhow::Result<Vec<(String, f64)>> {
    let body = scrape(addr).await?;
    let prefix = format!("{name}{{{label}=\"");
    Ok(body
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (value_of_label, value) = rest.split_once("\"} ")?;
            Some((value_of_label.to_string(), value.trim().parse().ok()?))
        })
        .collect())
}

/// Resident memory now (VmRSS), MiB.
fn vm_rss(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(counts: [u32; 4], sum: f64) -> String {
        let [a, b, c, inf] = counts;
        format!(
            "# TYPE w histogram\nw_bucket{{le=\"0.5\"}} {a}\nw_bucket{{le=\"1\"}} {b}\nw_bucket{{le=\"5\"}} {c}\nw_bucket{{le=\"+Inf\"}} {inf}\nw_sum {sum}\nw_count {inf}\n"
        )
    }

    /// A span's figures come from the bucket counts' differences: what was observed before
    /// the span does not count.
    #[test]
    fn a_histogram_span_is_the_difference_of_two_readings() -> anyhow::Result<()> {
        let before = read_histogram(&page([10, 10, 10, 10], 2.0), "w")?;
        // 100 more: 40 at most 0.5 s, 30 more at most 1 s, 29 more at most 5 s, 1 above.
        let after = read_histogram(&page([50, 80, 109, 110], 152.0), "w")?;
        let o = after.since(&before).expect("observed");
        assert_eq!(o.count, 100.0);
        assert_eq!(o.mean_s, 1.5);
        assert_eq!(o.p50_le, 1.0, "the 50th is in the second bucket");
        assert_eq!(o.p99_le, 5.0, "the 99th is in the third");
        assert!(before.since(&before).is_none(), "nothing in an empty span");
        Ok(())
    }
}
