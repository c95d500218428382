//! `lustre-sandbox serve`: starts the in-memory Kubernetes API server and the simulated AWS on
//! 127.0.0.1, writes a kubeconfig, and prints where both listen.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use lustre_sandbox::aws::faults::Faults;
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};
use lustre_sandbox::kube::KubeSandbox;

#[derive(Parser, Debug)]
#[command(
    name = "lustre-sandbox",
    version,
    about = "The offline world: a simulated AWS (FSx + EC2 wire protocols) for tests, the demo and the benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the Kubernetes API and the simulated AWS until Ctrl-C / SIGTERM.
    Serve(Serve),
}

#[derive(Parser, Debug)]
struct Serve {
    /// Address of the Kubernetes API server (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    kube_addr: SocketAddr,
    /// Write a kubeconfig for the API server here.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Address of the simulated AWS endpoint (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    aws_addr: SocketAddr,
    /// Region the simulated account is in.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// How long a file system stays CREATING.
    #[arg(long, default_value_t = 2000)]
    create_delay_ms: u64,
    /// How long a file system stays UPDATING.
    #[arg(long, default_value_t = 1000)]
    update_delay_ms: u64,
    /// How long a file system stays DELETING.
    #[arg(long, default_value_t = 1000)]
    delete_delay_ms: u64,
    /// How long a data repository association stays CREATING / DELETING.
    #[arg(long, default_value_t = 500)]
    association_delay_ms: u64,
    /// How long a data repository task EXECUTES (it is PENDING, and CANCELING after a cancel,
    /// a quarter of that).
    #[arg(long, default_value_t = 2000)]
    task_delay_ms: u64,
    /// How long a backup takes from PENDING to AVAILABLE.
    #[arg(long, default_value_t = 3000)]
    backup_delay_ms: u64,
    /// Random stretch of every delay (0.2 = ±20 %).
    #[arg(long, default_value_t = 0.2)]
    jitter: f64,
    /// Fault rules `op:kind:rate[:limit]`, kind throttle | server-error | delay=MS, e.g.
    /// `*:throttle:0.3` or `CreateFileSystem:server-error:0.1`.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Seed for fault injection and jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest DescribeFileSystems page.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Write the endpoint URL to this file once listening (for scripts).
    #[arg(long)]
    url_file: Option<std::path::PathBuf>,
    /// Serve the simulated AWS only (beside a real Kubernetes control plane).
    #[arg(long)]
    aws_only: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let faults = args
        .faults
        .iter()
        .map(|f| Faults::parse_rule(f))
        .collect::<Result<Vec<_>, _>>()?;
    let sim = SimAws::new(SimConfig {
        region: args.region,
        timing: Timing {
            create_ms: args.create_delay_ms,
            update_ms: args.update_delay_ms,
            delete_ms: args.delete_delay_ms,
            association_create_ms: args.association_delay_ms,
            association_delete_ms: args.association_delay_ms,
            association_update_ms: args.association_delay_ms,
            task_pending_ms: args.task_delay_ms / 4,
            task_run_ms: args.task_delay_ms,
            task_cancel_ms: args.task_delay_ms / 4,
            backup_ms: args.backup_delay_ms,
            jitter: args.jitter,
        },
        faults,
        seed: args.seed,
        page_size: args.page_size,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let kube_task = if args.aws_only {
        None
    } else {
        let kube = KubeSandbox::new();
        let (kube_addr, kube_task) = kube.serve(args.kube_addr, stopped(stop_rx.clone())).await?;
        let kube_url = format!("http://{kube_addr}");
        println!("kubernetes API: {kube_url} (audit: {kube_url}/_sandbox/audit)");
        if let Some(path) = &args.kubeconfig {
            lustre_sandbox::kube::write_kubeconfig(path, &kube_url)?;
            println!("kubeconfig: {}", path.display());
        }
        Some(kube_task)
    };
    let (addr, task) = sim.serve(args.aws_addr, stopped(stop_rx)).await?;
    let url = format!("http://{addr}");
    println!("simulated AWS: {url} (state: {url}/_sim/state)");
    if let Some(path) = args.url_file {
        std::fs::write(path, &url)?;
    }
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    task.await??;
    if let Some(kube_task) = kube_task {
        kube_task.await??;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
