//! Layer archives (owned by the layer work in progress).
