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
