//! `lustre-operator`: runs the LustreWorkspace controller with a small HTTP server for
//! `/metrics`, `/healthz` and `/readyz`, stopping both on SIGTERM / SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use lustre_cloud::aws::{AwsCloud, AwsSettings, RetryMode};
use lustre_controller::metrics::Metrics;
use lustre_controller::poller::{PollIntervals, Poller};
use lustre_controller::reconciler::{self, CloudProvider, Context, ControllerConfig};

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
    /// Workspaces reconciled at once.
    #[arg(long, env = "LUSTRE_CONCURRENCY", default_value_t = 16)]
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

/// One AWS adapter per region, built on first use with the operator's settings (a class may
/// name a region other than the operator's own).
#[derive(Debug)]
struct RegionalClouds {
    settings: AwsSettings,
    metrics: Arc<Metrics>,
    clouds: tokio::sync::Mutex<std::collections::HashMap<Option<String>, Arc<AwsCloud>>>,
}

impl RegionalClouds {
    async fn regional(&self, region: Option<&str>) -> Arc<AwsCloud> {
        let key = region
            .map(str::to_string)
            .or_else(|| self.settings.region.clone());
        let mut clouds = self.clouds.lock().await;
        if let Some(c) = clouds.get(&key) {
            return c.clone();
        }
        let settings = AwsSettings {
            region: key.clone(),
            ..self.settings.clone()
        };
        let cloud = Arc::new(AwsCloud::new(&settings, Some(self.metrics.clone())).await);
        clouds.insert(key, cloud.clone());
        cloud
    }
}

#[async_trait::async_trait]
impl CloudProvider for RegionalClouds {
    async fn cloud(&self, region: Option<&str>) -> Arc<dyn lustre_cloud::Cloud> {
        self.regional(region).await
    }
}

#[derive(Clone)]
struct Health {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    leader: Arc<AtomicBool>,
    elected: bool,
}

async fn serve_metrics(State(h): State<Health>) -> String {
    h.metrics.render()
}

/// Ready once started. A standby replica is ready too: it is healthy and takes over when
/// the leader goes, and a Deployment's rolling update waits for readiness, so reporting
/// standbys unready would stall every rollout of a 2-replica install. The body says which.
async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    match (
        h.ready.load(Ordering::Relaxed),
        h.elected,
        h.leader.load(Ordering::Relaxed),
    ) {
        (false, _, _) => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
        (true, false, _) => (StatusCode::OK, "ready"),
        (true, true, true) => (StatusCode::OK, "ready (leader)"),
        (true, true, false) => (StatusCode::OK, "ready (standby)"),
    }
}

/// The Lease's namespace: the flag, POD_NAMESPACE, the service account's, or `default`.
fn lease_namespace(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

fn identity(flag: Option<String>) -> String {
    flag.filter(|s| !s.is_empty()).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "lustre-operator".into());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    })
}

async fn shutdown_signal(stop: tokio::sync::watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
}

/// Checks that the CRDs are installed and serve the version this operator uses, with a
/// clear error when not; warns when the installed schema differs from this build's (an
/// upgrade that did not update the CRDs: `helm upgrade` never touches `crds/`).
async fn check_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for ours in lustre_api::crd::crds() {
        let name = ours.metadata.name.clone().unwrap_or_default();
        let installed = crds
            .get_opt(&name)
            .await
            .with_context(|| format!("reading CustomResourceDefinition {name}"))?
            .with_context(|| format!("CustomResourceDefinition {name} is not installed: kubectl apply --server-side -f deploy/crds/ (or helm install)"))?;
        for version in &ours.spec.versions {
            let served = installed
                .spec
                .versions
                .iter()
                .find(|v| v.name == version.name && v.served);
            let Some(served) = served else {
                anyhow::bail!(
                    "CustomResourceDefinition {name} does not serve {}: the installed CRDs are older than this operator; apply this release's CRDs: kubectl apply --server-side -f deploy/crds/",
                    version.name
                );
            };
            let schema = |v: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion| {
                v.schema.as_ref().and_then(|s| s.open_api_v3_schema.clone())
            };
            if schema(served) != schema(version) {
                tracing::warn!(
                    crd = %name,
                    version = %version.name,
                    "the installed CRD's schema differs from this operator's: fields it does not know are dropped by the API server; apply this release's CRDs (kubectl apply --server-side -f deploy/crds/; helm upgrade does not update CRDs)"
                );
            }
        }
    }
    Ok(())
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
    let client = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?;
            kube::Client::try_from(config).context("building the Kubernetes client")?
        }
        None => kube::Client::try_default()
            .await
            .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?,
    };
    check_crds(&client).await?;
    let metrics = Arc::new(Metrics::new());
    let settings = AwsSettings {
        region: args.aws_region.clone(),
        endpoint_url: args.aws_endpoint_url.clone(),
        max_attempts: args.aws_max_attempts,
        cluster_id: args.cluster_id.clone(),
        retry_mode: if args.aws_adaptive_retry {
            RetryMode::Adaptive
        } else {
            RetryMode::Standard
        },
        ..AwsSettings::default()
    };
    let clouds = Arc::new(RegionalClouds {
        settings,
        metrics: metrics.clone(),
        clouds: Default::default(),
    });
    if args.skip_aws_preflight {
        tracing::warn!("skipping the AWS start-up check (--skip-aws-preflight)");
    } else {
        let cloud = clouds.regional(None).await;
        cloud.preflight().await.map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!("AWS reachable: region, credentials and read permissions checked");
    }
    let (poller, wake) = Poller::new();
    let config = ControllerConfig {
        intervals: PollIntervals {
            pending: Duration::from_secs_f64(args.poll_interval_seconds.max(0.05)),
            drift: Duration::from_secs_f64(args.drift_interval_seconds.max(1.0)),
        },
        concurrency: args.concurrency.max(1),
        max_backoff: Duration::from_secs_f64(args.max_backoff_seconds.max(1.0)),
        cluster_id: args.cluster_id.clone(),
        namespaces: args
            .watch_namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect(),
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        clouds,
        poller,
        metrics.clone(),
        config,
    ));

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let leader = Arc::new(AtomicBool::new(false));
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
        leader: leader.clone(),
        elected: args.leader_election,
    };
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics /healthz /readyz");
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });
    tokio::spawn(shutdown_signal(stop_tx));
    ready.store(true, Ordering::Relaxed);
    let grace = Duration::from_secs(args.shutdown_grace_seconds);

    if !args.leader_election {
        metrics.leader.set(1);
        run_controller(ctx, wake, stop_rx.clone(), None, grace).await;
        server.await??;
        tracing::info!("stopped");
        return Ok(());
    }

    let namespace = lease_namespace(args.lease_namespace.clone());
    let identity = identity(args.identity.clone());
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration_seconds.max(2))
        .with_grace(
            args.lease_renew_grace_seconds
                .clamp(1, args.lease_duration_seconds.max(2) - 1),
        )
        .build()
        .await
        .with_context(|| {
            format!(
                "setting up leader election on Lease {namespace}/{}",
                args.lease_name
            )
        })?;
    let (mut is_leader, lease_task) = manager.watch().await;
    tracing::info!(lease = %format!("{namespace}/{}", args.lease_name), %identity, "waiting to become the leader");
    let elected = loop {
        if *is_leader.borrow_and_update() {
            break true;
        }
        tokio::select! {
            changed = is_leader.changed() => if changed.is_err() { break false },
            _ = stop_rx.wait_for(|s| *s) => break false,
        }
    };
    let mut lost = false;
    if elected {
        leader.store(true, Ordering::Relaxed);
        metrics.leader.set(1);
        tracing::info!(%identity, "became the leader: starting the controller");
        lost = run_controller(ctx, wake, stop_rx.clone(), Some(is_leader), grace).await;
        leader.store(false, Ordering::Relaxed);
        metrics.leader.set(0);
    } else {
        drop(is_leader);
    }
    // The watch channel is closed: the lease manager releases the Lease (if held) and ends.
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!("released the leader lease"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the leader lease failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the lease manager task failed"),
        Err(_) => tracing::warn!("releasing the leader lease timed out"),
    }
    if lost {
        anyhow::bail!(
            "lost the leader lease {namespace}/{}: exiting so that a fresh process stands by",
            args.lease_name
        );
    }
    server.await??;
    tracing::info!("stopped");
    Ok(())
}

/// Runs the controller until a stop signal, or until leadership is lost (returns `true`
/// then). In-flight reconciles get `grace` to finish.
async fn run_controller(
    ctx: Arc<Context>,
    wake: tokio::sync::mpsc::UnboundedReceiver<
        kube::runtime::reflector::ObjectRef<lustre_api::LustreWorkspace>,
    >,
    mut stop: tokio::sync::watch::Receiver<bool>,
    is_leader: Option<tokio::sync::watch::Receiver<bool>>,
    grace: Duration,
) -> bool {
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = lost.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        match is_leader {
            Some(mut leader) => {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = leader.wait_for(|l| !*l) => {
                        tracing::error!("lost the leader lease: stopping the controller");
                        lost_flag.store(true, Ordering::Relaxed);
                    }
                }
            }
            None => {
                let _ = stop.wait_for(|s| *s).await;
            }
        }
        let _ = done_tx.send(());
    };
    let controller = reconciler::run(ctx, wake, shutdown);
    tokio::pin!(controller);
    tokio::select! {
        _ = &mut controller => {}
        _ = async {
            let _ = done_rx.await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("in-flight reconciles did not finish within {grace:?}; exiting anyway"),
    }
    lost.load(Ordering::Relaxed)
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
