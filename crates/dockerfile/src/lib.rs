//! berth-dockerfile
