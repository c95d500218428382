//! Errors of a reconcile: which step failed, and the Kubernetes or AWS error behind it. The
//! step is in the text, so the log line and the Warning Event of every failure say where it
//! happened; the metrics category comes from the cause.

use std::fmt;

use lustre_cloud::CloudError;

/// The part of a reconcile that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Reading the workspace's class.
    ReadClass,
    /// Reading the workspace's namespace (its labels decide the class's `allowedNamespaces`).
    ReadNamespace,
    /// Describing the workspace's security group.
    ObserveSecurityGroup,
    /// Describing the workspace's file system and its associations.
    ObserveFileSystem,
    /// Reading the StorageClass, PersistentVolume and claim.
    ObserveKubernetes,
    /// Carrying out a planned step (an [`crate::plan::Action::step`] name).
    Act(&'static str),
    /// Adding the cleanup finalizer.
    AddFinalizer,
    /// Removing the cleanup finalizer.
    RemoveFinalizer,
    /// Writing the workspace's status.
    WriteStatus,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadClass => "reading the class",
            Self::ReadNamespace => "reading the namespace",
            Self::ObserveSecurityGroup => "looking at the security group",
            Self::ObserveFileSystem => "looking at the file system",
            Self::ObserveKubernetes => "reading the StorageClass, volume and claim",
            Self::Act(step) => step,
            Self::AddFinalizer => "adding the finalizer",
            Self::RemoveFinalizer => "removing the finalizer",
            Self::WriteStatus => "writing status",
        })
    }
}

impl Step {
    /// Wraps a Kubernetes API error of this step (for `map_err`).
    pub fn kube(self) -> impl FnOnce(kube::Error) -> Error {
        move |e| Error::new(self, Cause::Kube(e))
    }

    /// Wraps an AWS error of this step (for `map_err`).
    pub fn cloud(self) -> impl FnOnce(CloudError) -> Error {
        move |e| Error::new(self, Cause::Cloud(e))
    }
}

/// What went wrong underneath.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Cloud(#[from] CloudError),
}

/// A failed reconcile: the step and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct Error {
    pub step: Step,
    #[source]
    pub cause: Cause,
}

impl Error {
    pub fn new(step: Step, cause: Cause) -> Self {
        Self { step, cause }
    }

    /// Bounded label for metrics: `kubernetes`, or the AWS error's category.
    pub fn category(&self) -> &'static str {
        match &self.cause {
            Cause::Kube(_) => "kubernetes",
            Cause::Cloud(e) => e.category(),
        }
    }

    /// The AWS error, when AWS failed.
    pub fn cloud(&self) -> Option<&CloudError> {
        match &self.cause {
            Cause::Cloud(e) => Some(e),
            Cause::Kube(_) => None,
        }
    }

    /// The API server refused a write because the object moved on (409).
    pub fn is_conflict(&self) -> bool {
        matches!(&self.cause, Cause::Kube(kube::Error::Api(s)) if s.is_conflict())
    }
}
