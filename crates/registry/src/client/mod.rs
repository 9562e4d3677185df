//! Registry client (work in progress).
