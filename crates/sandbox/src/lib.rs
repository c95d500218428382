//! The offline world the project's tests, demo and benchmark run in: a simulated AWS that
//! speaks the real FSx and EC2 wire protocols ([`aws`]) and an in-memory Kubernetes API server
//! that real kubectl and kube-rs talk to ([`kube`]).

pub mod aws;
pub mod kube;

use std::net::SocketAddr;

/// Serves `router` on `addr` (port 0 picks a free one) until `shutdown`; returns the bound
/// address and the server task.
pub async fn serve_router(
    router: axum::Router,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}

/// A simulated AWS and a sandbox API server on free loopback ports: the world the reconcile
/// tests, the end-to-end suites and the benchmark start from. Both servers stop accepting
/// connections when this is dropped.
#[derive(Debug)]
pub struct World {
    pub sim: aws::SimAws,
    pub kube: kube::KubeSandbox,
    /// `http://127.0.0.1:<port>` of the simulated AWS (the adapter's endpoint).
    pub aws_url: String,
    /// `http://127.0.0.1:<port>` of the API server (kubeconfig's server).
    pub kube_url: String,
    _stop: tokio::sync::watch::Sender<()>,
}

impl World {
    pub async fn start(config: aws::SimConfig) -> std::io::Result<Self> {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let until_dropped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
            // Resolves once the sender (this World) is gone.
            while rx.changed().await.is_ok() {}
        };
        let sim = aws::SimAws::new(config);
        let (aws_addr, _) = sim
            .serve(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                until_dropped(stopped.clone()),
            )
            .await?;
        let kube = kube::KubeSandbox::new();
        let (kube_addr, _) = kube
            .serve(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                until_dropped(stopped),
            )
            .await?;
        Ok(Self {
            sim,
            kube,
            aws_url: format!("http://{aws_addr}"),
            kube_url: format!("http://{kube_addr}"),
            _stop: stop,
        })
    }
}
