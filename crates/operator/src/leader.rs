//! Running the controller: alone, or only while this replica holds the leader Lease (so
//! several replicas run with one active), with a grace period for in-flight reconciles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use kube::runtime::reflector::ObjectRef;
use lustre_api::LustreWorkspace;
use lustre_controller::Context;
use tokio::sync::{mpsc, watch};

use crate::Run;
use crate::health::Health;

type Wake = mpsc::UnboundedReceiver<ObjectRef<LustreWorkspace>>;

/// Runs the controller while this replica leads; returns an error when the lease was lost
/// (a fresh process should stand by).
pub async fn run_elected(
    args: &Run,
    ctx: Arc<Context>,
    wake: Wake,
    mut stop: watch::Receiver<bool>,
    health: &Health,
) -> anyhow::Result<()> {
    let namespace = lease_namespace(args.lease_namespace.clone());
    let identity = identity(args.identity.clone());
    let lease = format!("{namespace}/{}", args.lease_name);
    let duration = args.lease_duration_seconds.max(2);
    let manager =
        kube_lease_manager::LeaseManagerBuilder::new(ctx.client.clone(), &args.lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(duration)
            .with_grace(args.lease_renew_grace_seconds.clamp(1, duration - 1))
            .build()
            .await
            .with_context(|| format!("setting up leader election on Lease {lease}"))?;
    let (mut is_leader, lease_task) = manager.watch().await;
    tracing::info!(%lease, %identity, "waiting to become the leader");
    let elected = loop {
        if *is_leader.borrow_and_update() {
            break true;
        }
        tokio::select! {
            changed = is_leader.changed() => if changed.is_err() { break false },
            _ = stop.wait_for(|s| *s) => break false,
        }
    };
    let mut lost = false;
    if elected {
        health.leader.store(true, Ordering::Relaxed);
        health.metrics.leader.set(1);
        tracing::info!(%identity, "became the leader: starting the controller");
        let grace = Duration::from_secs(args.shutdown_grace_seconds);
        lost = run_controller(ctx, wake, stop.clone(), Some(is_leader), grace).await;
        health.leader.store(false, Ordering::Relaxed);
        health.metrics.leader.set(0);
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
        anyhow::bail!("lost the leader lease {lease}: exiting so that a fresh process stands by");
    }
    Ok(())
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

/// Runs the controller until a stop signal, or until leadership is lost (returns `true`
/// then). In-flight reconciles get `grace` to finish.
pub async fn run_controller(
    ctx: Arc<Context>,
    wake: Wake,
    mut stop: watch::Receiver<bool>,
    is_leader: Option<watch::Receiver<bool>>,
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
    let controller = lustre_controller::run(ctx, wake, shutdown);
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
