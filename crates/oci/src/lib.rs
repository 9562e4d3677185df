//! berth-oci: the image formats berth speaks, with no state of its own.
//!
//! - [`digest`]: content digests (`sha256:<hex>`), validated so that one can be used as a path
//!   component without further checks.
//! - [`reference`]: image references, parsed and normalised exactly as Docker does
//!   (`busybox` = `docker.io/library/busybox:latest`).
//! - [`media`]: media type constants for Docker v2 schema 2 and OCI content.
//! - [`image`]: manifests, indexes, descriptors and the image configuration (Docker's superset of
//!   the OCI one, so nothing Docker writes is lost on a round trip).
//! - [`layer`]: layer archives: compression detection, hostile-archive-safe extraction with
//!   whiteouts converted to overlayfs form, and layer creation.

pub mod digest;
pub mod image;
pub mod layer;
pub mod media;
pub mod reference;

pub use digest::Digest;
pub use reference::Reference;
