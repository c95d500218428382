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
    Run(Run),
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
    /// Workspaces reconciled at once.
    #[arg(long, env = "LUSTRE_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Log format.
    #[arg(long, env = "LUSTRE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
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

#[async_trait::async_trait]
impl CloudProvider for RegionalClouds {
    async fn cloud(&self, region: Option<&str>) -> Arc<dyn lustre_cloud::Cloud> {
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

#[derive(Clone)]
struct Health {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

async fn serve_metrics(State(h): State<Health>) -> String {
    h.metrics.render()
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
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

/// Checks that the CRDs are installed, with a clear error when not.
async fn check_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in lustre_api::crd::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.get_opt(&name)
            .await
            .with_context(|| format!("reading CustomResourceDefinition {name}"))?
            .with_context(|| format!("CustomResourceDefinition {name} is not installed: kubectl apply -f deploy/crds/ (or helm install)"))?;
    }
    Ok(())
}

async fn run(args: Run) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    check_crds(&client).await?;
    let metrics = Arc::new(Metrics::new());
    let settings = AwsSettings {
        region: args.aws_region.clone(),
        endpoint_url: args.aws_endpoint_url.clone(),
        max_attempts: args.aws_max_attempts,
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
    let (poller, wake) = Poller::new();
    let config = ControllerConfig {
        intervals: PollIntervals {
            pending: Duration::from_secs_f64(args.poll_interval_seconds.max(0.05)),
            drift: Duration::from_secs_f64(args.drift_interval_seconds.max(1.0)),
        },
        concurrency: args.concurrency.max(1),
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(Context::new(
        client,
        clouds,
        poller,
        metrics.clone(),
        config,
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
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
    let mut controller_stop = stop_rx;
    reconciler::run(ctx, wake, async move {
        let _ = controller_stop.wait_for(|s| *s).await;
    })
    .await;
    server.await??;
    tracing::info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli
        .command
        .unwrap_or(Command::Run(Run::parse_from(["lustre-operator"])))
    {
        Command::Run(args) => run(args).await,
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
