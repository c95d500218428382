//! The LustreWorkspace controller.
//!
//! A reconcile ([`reconcile`]) observes a workspace ([`observe`]), asks the plan for the
//! single next step ([`plan`]), carries it out ([`act`]) and repeats while the result is known
//! locally; it writes the status the observation calls for ([`status`]) and Events
//! ([`events`]). [`controller`] wires the watches and the AWS [`poller`]; [`context`] holds
//! what reconciles share, [`error`] names the step that failed. [`data_tasks`] is the
//! controller of `LustreDataTask`s beside it, [`backups`] the one of `LustreWorkspaceBackup`s,
//! both following AWS through a [`follow`] poller, and `shares` makes the claims of shares
//! other namespaces accept; [`pods`] counts the pods that use each claim
//! (the idle clock of an expiry).

/// `kube::Resource` for a type the watch caches keep in place of `$full` (slim volumes and
/// claims, the compact workspace store): the API coordinates of `$full`, its own metadata.
macro_rules! resource_as {
    ($kept:ty, $full:ty, $scope:ty) => {
        impl kube::Resource for $kept {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                <$full as kube::Resource>::kind(&())
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                <$full as kube::Resource>::group(&())
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                <$full as kube::Resource>::version(&())
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                <$full as kube::Resource>::plural(&())
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

mod act;
pub mod backups;
mod beside;
pub mod builders;
mod cache;
pub mod context;
pub mod controller;
pub mod data_tasks;
pub mod error;
pub mod events;
pub mod follow;
mod guarded;
pub mod kept;
pub mod memory;
pub mod metrics;
mod observe;
pub mod packed;
pub mod plan;
pub mod pods;
pub mod poller;
pub mod reconcile;
mod relist;
mod reported;
mod shares;
pub mod slim;
pub mod status;
#[cfg(test)]
mod testing;
mod work_write;
mod write;

pub use context::{CloudProvider, Context, ControllerConfig, SingleCloud};
pub use controller::run;
pub use error::Error;
