//! /networks/… (not served yet: every call falls through to the 404 handler).

use crate::router::{Call, Routed};
use crate::state::State;
use std::sync::Arc;

pub async fn route(_state: &Arc<State>, call: Call) -> Routed {
    Routed::Next(call)
}
