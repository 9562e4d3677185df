//! `kube play`: run Kubernetes manifests locally.
//!
//! `parse` reads the YAML into typed objects ([`model`]), `plan` turns them into the pods to
//! run (engine create options, files, volumes) and the list of what cannot run locally, and
//! `run` carries the plan out. Nothing starts before the whole plan is made.

pub mod container;
pub mod model;
pub mod parse;
pub mod plan;
pub mod quantity;
mod run;
pub mod volumes;

pub use run::{DownReport, Manifest, PlayOptions, PlayReport, PodReport};
