//! The LustreWorkspace controller: decides the next step from the spec and what was observed
//! ([`plan`]), builds the Kubernetes objects ([`builders`]), and computes the status to
//! write ([`status`]).

pub mod builders;
pub mod events;
pub mod metrics;
pub mod plan;
pub mod poller;
pub mod reconciler;
pub mod status;
