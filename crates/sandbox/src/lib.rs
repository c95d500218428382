//! The offline world the project's tests, demo and benchmark run in: a simulated AWS that
//! speaks the real FSx and EC2 wire protocols ([`aws`]) and an in-memory Kubernetes API server
//! that real kubectl and kube-rs talk to ([`kube`]).

pub mod aws;
pub mod kube;
