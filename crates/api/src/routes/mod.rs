//! One module per area of the API; each matches `(method, path segments)` and passes what it
//! does not serve to the next (see `router.rs`).

pub mod build;
pub mod containers;
mod create;
pub mod exec;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;
