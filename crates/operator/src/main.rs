//! `lustre-operator`: runs the LustreWorkspace controller with a small HTTP server for
//! `/metrics`, `/healthz` and `/readyz`, stopping both on SIGTERM / SIGINT.

mod clouds;
mod health;
mod leader;
mod startup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lustre_controller::metrics::Metrics;
use lustre_controller::poller::{PollIntervals, Poller};
use lustre_controller::{Context, ControllerConfig};

use crate::clouds::RegionalClouds;
use crate::health::Health;

/// jemalloc rather than the C library's malloc: the watches' bursts (thousands of objects
/// decoded and dropped in a moment) left glibc's per-thread arenas holding what they freed.
/// At 3,000 workspaces one binary's peak RSS was 140.5 MiB with glibc's malloc, 93.6 with
/// mimalloc and 89.5 with jemalloc preloaded (docs/benchmarks.md, "Allocator"); its settings
/// (one arena, freed pages returned at once) are compiled in from `.cargo/config.toml`.
/// Without the `jemalloc` feature the C library's malloc serves, which heap profilers such
/// as heaptrack see.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "lustre-operator",
    version,
    about = "Provisions FSx for Lustre file systems, their S3 links and the claims pods mount, from LustreWorkspace objects"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    Run(Box<Run>),
    /// Print the CustomResourceDefinitions as YAML.
    Crdgen,
    /// Print the version.
    Version,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Parser, Debug)]
struct Run {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "LUSTRE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// AWS region (else the SDK's: AWS_REGION, profile, instance metadata).
    #[arg(long, env = "AWS_REGION")]
    aws_region: Option<String>,
    /// AWS endpoint override for FSx and EC2 (the sandbox's simulated AWS, a VPC endpoint).
    #[arg(long, env = "LUSTRE_AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Attempts per AWS call (the SDK retries throttling and 5xx with jittered back-off).
    #[arg(long, env = "LUSTRE_AWS_MAX_ATTEMPTS", default_value_t = 5)]
    aws_max_attempts: u32,
    /// Use the SDK's adaptive retry mode (client-side rate limiting when throttled).
    #[arg(long, env = "LUSTRE_AWS_ADAPTIVE_RETRY")]
    aws_adaptive_retry: bool,
    /// Seconds between batched polls of file systems waiting on AWS.
    #[arg(long, env = "LUSTRE_POLL_INTERVAL_SECONDS", default_value_t = 15.0)]
    poll_interval_seconds: f64,
    /// Seconds between drift checks of Ready workspaces.
    #[arg(long, env = "LUSTRE_DRIFT_INTERVAL_SECONDS", default_value_t = 600.0)]
    drift_interval_seconds: f64,
    /// Longest wait before retrying a workspace whose reconcile keeps failing (the wait
    /// starts at 2 s and doubles, with jitter).
    #[arg(long, env = "LUSTRE_MAX_BACKOFF_SECONDS", default_value_t = 300.0)]
    max_backoff_seconds: f64,
    /// Workspaces reconciled at once. A reconcile mostly waits on the API server: after a
    /// poll round finds thousands of file systems AVAILABLE, 64 at once took the operator's
    /// part of the wait for the claim from 36.6 to 14.2 s p99 at 10,000 workspaces on a real
    /// control plane, and from 2.37 to 1.35 s at 1,000, against 16 (docs/benchmarks.md).
    #[arg(long, env = "LUSTRE_CONCURRENCY", default_value_t = 64)]
    concurrency: u16,
    /// Log format (the level comes from RUST_LOG, e.g. `info,lustre_controller=debug`).
    #[arg(long, env = "LUSTRE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Run the controller only while holding a coordination.k8s.io Lease, so several
    /// replicas can run with one active.
    #[arg(long, env = "LUSTRE_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LUSTRE_LEASE_NAME", default_value = "lustre-operator")]
    lease_name: String,
    /// Namespace of the Lease (else POD_NAMESPACE, the service account's namespace, or
    /// `default`).
    #[arg(long, env = "LUSTRE_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Seconds a leader's lease lasts without renewal: a standby takes over within this.
    #[arg(long, env = "LUSTRE_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds before expiry at which the leader renews (also the clock skew tolerated).
    #[arg(long, env = "LUSTRE_LEASE_RENEW_GRACE_SECONDS", default_value_t = 5)]
    lease_renew_grace_seconds: u64,
    /// This replica's identity in the Lease (else POD_NAME, else host name + random suffix).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Namespaces whose workspaces to reconcile, comma-separated (default: all). One
    /// namespace also narrows the watches to it.
    #[arg(long, env = "LUSTRE_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// This install's id (e.g. the EKS cluster's name): tagged `workspaces.lustre.dev/cluster`
    /// on every AWS resource the operator creates. The shipped IAM policy lets the role create
    /// and change only resources whose tag equals the role's own tag of that key, so two
    /// installs in one account cannot touch each other's. Letters, digits, - and _ (1-100).
    #[arg(long, env = "LUSTRE_CLUSTER_ID", value_parser = parse_cluster_id)]
    cluster_id: Option<String>,
    /// Watch pods (list + watch) to know when a workspace's claim is idle, for
    /// `expiry.afterIdle`. Only a count per claim is kept, never the pods. `--watch-pods=false`
    /// turns idle expiry off (times and the class's maxLifetime still apply).
    #[arg(long, env = "LUSTRE_WATCH_PODS", default_value_t = true, action = clap::ArgAction::Set)]
    watch_pods: bool,
    /// Skip the start-up check that the AWS region, credentials and read permissions work.
    #[arg(long, env = "LUSTRE_SKIP_AWS_PREFLIGHT")]
    skip_aws_preflight: bool,
    /// Kubeconfig file (else KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Seconds to let in-flight reconciles finish on SIGTERM before exiting anyway.
    #[arg(long, env = "LUSTRE_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube_runtime=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// A cluster id: what an EKS cluster name may be (and a valid AWS tag value).
fn parse_cluster_id(s: &str) -> Result<String, String> {
    let ok = (1..=100).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(
            "1-100 letters, digits, - or _, starting with a letter or digit (an EKS cluster name)"
                .into(),
        )
    }
}

async fn run(args: Run) -> anyhow::Result<()> {
    init_logging(args.log_format);
    if args.cluster_id.is_none() {
        tracing::warn!(
            "no --cluster-id: AWS resources are not tagged with this install's id; the shipped IAM policy (deploy/iam/policy.json) refuses creates without it"
        );
    }
    let client = startup::client(args.kubeconfig.as_deref()).await?;
    startup::check_crds(&client).await?;
    let metrics = Arc::new(Metrics::new());
    let clouds = RegionalClouds::start(&args, metrics.clone()).await?;
    let (poller, wake) = Poller::new();
    let ctx = Arc::new(Context::new(
        client,
        clouds,
        poller,
        metrics.clone(),
        controller_config(&args),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health = Health {
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        leader: Arc::new(AtomicBool::new(false)),
        elected: args.leader_election,
    };
    let server = health::serve(args.metrics_addr, health.clone(), stop_rx.clone()).await?;
    tokio::spawn(health::shutdown_signal(stop_tx));
    health.ready.store(true, Ordering::Relaxed);
    if args.leader_election {
        leader::run_elected(&args, ctx, wake, stop_rx, &health).await?;
    } else {
        metrics.leader.set(1);
        let grace = Duration::from_secs(args.shutdown_grace_seconds);
        leader::run_controller(ctx, wake, stop_rx, None, grace).await;
    }
    server.await??;
    tracing::info!("stopped");
    Ok(())
}

/// The controller's settings from the flags.
fn controller_config(args: &Run) -> ControllerConfig {
    ControllerConfig {
        intervals: PollIntervals {
            pending: Duration::from_secs_f64(args.poll_interval_seconds.max(0.05)),
            drift: Duration::from_secs_f64(args.drift_interval_seconds.max(1.0)),
        },
        concurrency: args.concurrency.max(1),
        max_backoff: Duration::from_secs_f64(args.max_backoff_seconds.max(1.0)),
        cluster_id: args.cluster_id.clone(),
        watch_pods: args.watch_pods,
        namespaces: args
            .watch_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect(),
        ..ControllerConfig::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli
        .command
        .unwrap_or_else(|| Command::Run(Box::new(Run::parse_from(["lustre-operator"]))))
    {
        Command::Run(args) => run(*args).await,
        Command::Crdgen => {
            for (_, yaml) in lustre_api::crd::rendered() {
                print!("---\n{yaml}");
            }
            Ok(())
        }
        Command::Version => {
            println!("lustre-operator {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
