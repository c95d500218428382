//! The HTTP server beside the controller: `/metrics`, `/healthz`, `/readyz`, stopped with the
//! process; and the stop signal (SIGTERM, SIGINT).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lustre_controller::metrics::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the probes report.
#[derive(Clone, Debug)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Started (the server and the controller's set-up are done).
    pub ready: Arc<AtomicBool>,
    /// This replica holds the leader lease.
    pub leader: Arc<AtomicBool>,
    /// Leader election is on.
    pub elected: bool,
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

/// Serves the probes and metrics on `addr` until `stop` turns true.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics /healthz /readyz");
    Ok(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    }))
}

/// Turns `stop` true on SIGTERM or SIGINT.
pub async fn shutdown_signal(stop: watch::Sender<bool>) {
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
