//! The offline world the project's tests, demo and benchmark run in: a simulated AWS that
//! speaks the real FSx and EC2 wire protocols ([`aws`]).

pub mod aws;
